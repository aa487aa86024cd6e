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
 *   node dist/bench/executionThroughput.js [--count 5000] [--runners 4] [--clients 32] [--db postgres]
 */
import { randomUUID } from 'node:crypto';
import { PROJECT, check, parseOptions, percentile, positiveInt, processMemory, progress, raiseConcurrency, round, runBenchmark, serverPid, sleep, startBenchServer } from './common.js';
import { COMMAND, connectRunner, cpuSeconds } from './simRunner.js';

const opts = parseOptions({
  count: { default: '5000', help: 'executions to run' },
  runners: { default: '4', help: 'simulated v2 runners in the project' },
  clients: { default: '32', help: 'REST clients creating executions at once' },
  backlog: { default: '500', help: 'clients wait while this many executions are created and not yet ended' },
});
const COUNT = positiveInt('count', opts.count);
const RUNNERS = positiveInt('runners', opts.runners);
const CLIENTS = positiveInt('clients', opts.clients);
const BACKLOG = positiveInt('backlog', opts.backlog);

async function main(): Promise<object> {
  const bench = await startBenchServer(opts.db, []);
  const pid = serverPid(bench);
  const executed = new Set<string>();
  const runners = [];
  let ended = 0;
  for (let i = 0; i < RUNNERS; i++) {
    const r = await connectRunner(bench.server.url, { name: PROJECT, key: bench.key }, randomUUID(), (id) => void executed.add(id), 1000);
    // The server acknowledges a `finished` once the end is stored.
    r.ws.on('message', (data, isBinary) => void (!isBinary && String(data).includes('"finished_ack"') && ended++));
    runners.push(r);
  }
  await raiseConcurrency(bench, COMMAND.name, 1000);
  await sleep(1000);

  progress(`${COUNT} executions, ${CLIENTS} clients, ${RUNNERS} runners`);
  const createMs: number[] = [];
  const ids: string[] = [];
  let next = 0;
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  const client = async () => {
    while (next < COUNT) {
      if (next - ended >= BACKLOG) {
        await sleep(5);
        continue;
      }
      next++;
      const sent = Date.now();
      const e = await bench.api<{ id: string }>('POST', `/api/v1/projects/${PROJECT}/executions`, { command: COMMAND.name });
      createMs.push(Date.now() - sent);
      ids.push(e.id);
      if (ids.length % 1000 === 0) progress(`${ids.length} created after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const createdS = (Date.now() - t0) / 1000;
  // Done when the server has stored every end: nothing left queued, dispatched or running.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const open = await bench.api<{ items: unknown[] }>('GET', `/api/v1/executions?project=${PROJECT}&status=queued,dispatched,running&limit=1`);
    if (open.items.length === 0 || Date.now() > deadline) break;
    await sleep(20);
  }
  const totalS = (Date.now() - t0) / 1000;
  const cpuPct = round(((cpuSeconds(pid) - cpu0) / totalS) * 100, 1);
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
  return {
    benchmark: 'execution_throughput',
    db: opts.db,
    executions: COUNT,
    runners: RUNNERS,
    clients: CLIENTS,
    executions_per_s: round(COUNT / totalS, 1),
    created_per_s: round(COUNT / createdS, 1),
    create_p50_ms: percentile(createMs, 50),
    create_p99_ms: percentile(createMs, 99),
    server_cpu_pct_of_core: cpuPct,
    server_peak_rss_mb: processMemory(pid).peakRssMb,
  };
}

void runBenchmark({ maxSeconds: 600, main });
