/**
 * Executions a second, end to end, through protocol v2: created through the REST API, dispatched
 * to a runner, started and finished (trivial commands: the simulated runners of simRunner.ts
 * answer `execute` with `started` and `finished` at once), until the server has stored every end.
 *
 * One real server (SQLite by default; `--db postgres`), `--runners` simulated v2 runners in one
 * project, `--clients` REST clients creating `--count` executions as fast as the server takes
 * them. Reported: executions per second (first request → last end stored), the creation
 * latency, and the server's CPU meanwhile. Every execution must end `succeeded`.
 *
 * `--replicas 1,2,3` (PostgreSQL) runs it once per number of server processes, each time on a
 * fresh database: runners and clients are spread over the replicas round robin, so the same run
 * shows whether throughput grows with replicas.
 *
 *   node dist/bench/executionThroughput.js [--count 5000] [--runners 4] [--clients 32] [--db postgres] [--replicas 1,2,3]
 */
import { randomUUID } from 'node:crypto';
import {
  PROJECT,
  apiCall,
  atCleanup,
  check,
  parseOptions,
  percentile,
  positiveInt,
  processMemory,
  progress,
  raiseConcurrency,
  round,
  runBenchmark,
  serverPid,
  sleep,
  startBenchServer,
} from './common.js';
import { startServerProcess, type ServerProcess } from './serverProcess.js';
import { COMMAND, connectRunner, cpuSeconds } from './simRunner.js';

const opts = parseOptions({
  count: { default: '5000', help: 'executions to run' },
  runners: { default: '4', help: 'simulated v2 runners in the project' },
  clients: { default: '32', help: 'REST clients creating executions at once' },
  backlog: { default: '500', help: 'clients wait while this many executions are created and not yet ended' },
  replicas: { default: '1', help: 'server processes on one database (PostgreSQL above 1); a list such as 1,2,3 runs each in turn' },
});
const COUNT = positiveInt('count', opts.count);
const RUNNERS = positiveInt('runners', opts.runners);
const CLIENTS = positiveInt('clients', opts.clients);
const BACKLOG = positiveInt('backlog', opts.backlog);
const REPLICAS = opts.replicas.split(',').map((n) => positiveInt('replicas', n.trim()));
if (REPLICAS.some((n) => n > 1) && opts.db !== 'postgres') throw new Error('--replicas above 1 needs --db postgres: replicas share one PostgreSQL database');
if (REPLICAS.some((n) => n > RUNNERS)) throw new Error('--runners must be at least --replicas: each replica needs a runner');

/** One run on a fresh database with `replicas` server processes; what it measured. */
async function runOnce(replicas: number) {
  const bench = await startBenchServer(opts.db, []);
  const servers: ServerProcess[] = [bench.server];
  const stopReplicas: Array<() => void> = [];
  for (let i = 1; i < replicas; i++) {
    const replica = await startServerProcess(bench.db);
    stopReplicas.push(atCleanup(() => replica.stop()));
    servers.push(replica);
  }
  const pids = [serverPid(bench), ...servers.slice(1).map((s) => s.process.pid!)];
  const urlOf = (i: number) => servers[i % servers.length].url;
  const executed = new Set<string>();
  const runners = [];
  let ended = 0;
  for (let i = 0; i < RUNNERS; i++) {
    const r = await connectRunner(urlOf(i), { name: PROJECT, key: bench.key }, randomUUID(), (id) => void executed.add(id), 1000);
    // The server acknowledges a `finished` once the end is stored.
    r.ws.on('message', (data, isBinary) => void (!isBinary && String(data).includes('"finished_ack"') && ended++));
    runners.push(r);
  }
  await raiseConcurrency(bench, COMMAND.name, 1000);
  await sleep(1000);

  progress(`${COUNT} executions, ${CLIENTS} clients, ${RUNNERS} runners, ${replicas} server process${replicas > 1 ? 'es' : ''}`);
  const createMs: number[] = [];
  const ids: string[] = [];
  let next = 0;
  const cpu0 = pids.map(cpuSeconds);
  const ownCpu0 = process.cpuUsage();
  const t0 = Date.now();
  const client = async (c: number) => {
    const url = urlOf(c);
    while (next < COUNT) {
      if (next - ended >= BACKLOG) {
        await sleep(5);
        continue;
      }
      next++;
      const sent = Date.now();
      const e = await apiCall(url, bench.token, 'POST', `/api/v1/projects/${PROJECT}/executions`, { command: COMMAND.name });
      createMs.push(Date.now() - sent);
      ids.push(e.id);
      if (ids.length % 1000 === 0) progress(`${ids.length} created after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  const createdS = (Date.now() - t0) / 1000;
  // Done when the servers have stored every end: nothing left queued, dispatched or running.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const open = await bench.api<{ items: unknown[] }>('GET', `/api/v1/executions?project=${PROJECT}&status=queued,dispatched,running&limit=1`);
    if (open.items.length === 0 || Date.now() > deadline) break;
    await sleep(20);
  }
  const totalS = (Date.now() - t0) / 1000;
  const cpuPcts = pids.map((pid, i) => round(((cpuSeconds(pid) - cpu0[i]) / totalS) * 100, 1));
  const ownCpu = process.cpuUsage(ownCpu0);
  for (const r of runners) r.ws.terminate();
  let succeeded = 0;
  let cursor: string | null = null;
  do {
    const page: { items: Array<{ status: string }>; next_cursor: string | null } = await bench.api('GET', `/api/v1/executions?project=${PROJECT}&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    succeeded += page.items.filter((e) => e.status === 'succeeded').length;
    cursor = page.next_cursor;
  } while (cursor);
  check(executed.size === COUNT, `${COUNT - executed.size} executions never reached a runner`);
  check(succeeded === COUNT, `${COUNT - succeeded} executions did not end succeeded`);
  createMs.sort((a, b) => a - b);
  const peakRss = Math.max(...pids.map((pid) => processMemory(pid).peakRssMb));
  for (const [i, stop] of stopReplicas.entries()) {
    stop();
    await servers[i + 1].stop();
  }
  await bench.stop();
  const perS = round(COUNT / totalS, 1);
  progress(`  ${perS} executions/s with ${replicas} server process${replicas > 1 ? 'es' : ''}`);
  return {
    replicas,
    executions_per_s: perS,
    created_per_s: round(COUNT / createdS, 1),
    create_p50_ms: percentile(createMs, 50),
    create_p99_ms: percentile(createMs, 99),
    server_cpu_pct_of_core: round(cpuPcts.reduce((a, b) => a + b, 0), 1),
    ...(replicas > 1 ? { server_cpu_pct_by_replica: cpuPcts } : {}),
    bench_cpu_pct_of_core: round(((ownCpu.user + ownCpu.system) / 1e6 / totalS) * 100, 1),
    server_peak_rss_mb: peakRss,
  };
}

async function main(): Promise<object> {
  const runs = [];
  for (const replicas of REPLICAS) runs.push(await runOnce(replicas));
  return {
    benchmark: 'execution_throughput',
    db: opts.db,
    executions: COUNT,
    runners: RUNNERS,
    clients: CLIENTS,
    // The first run's figures, then every run's when there were several.
    ...runs[0],
    ...(runs.length > 1 ? { by_replicas: runs } : {}),
  };
}

void runBenchmark({ maxSeconds: 600 * REPLICAS.length, main });
