/**
 * Fleet: what one server process pays for many runners, idle and under a steady trickle of work.
 *
 * One real server (SQLite by default; `--db postgres`) and `--runners` simulated runners in this
 * process, in one project (`--projects one`) or one project each (`--projects each`):
 *
 * - protocol v2 (default): each runner opens a WebSocket like ours does (key, timestamp, nonce),
 *   says hello with the commands hash of its one command (`noop`), sends the catalogue when the
 *   server says it is out of sync, answers pings (the ws library does), and answers each
 *   `execute` with `started` and `finished` at once. Reported: time until every runner is
 *   welcomed the first time (all new to the server: recorded, audited, catalogues sent), and
 *   again after all were cut off at once (a server restart: known runners, catalogues in sync); then the server's RSS and CPU (from /proc) over `--idle` seconds of nothing; then
 *   `--rate` executions a second for `--steady` seconds, each created through the REST API in a
 *   project (round robin), with the dispatch latency (POST sent → `execute` received by its runner) and
 *   the server's CPU meanwhile.
 * - protocol v1 (`--protocol v1`): each runner polls `pending/` every `--poll` seconds (signed
 *   requests with fresh nonces, as the Python runner does). Reported: the server's CPU and the
 *   poll latency.
 *
 *   node dist/bench/fleet.js [--runners 10000] [--projects each|one] [--protocol v2|v1] [--rate 50] [--db postgres]
 */
import { randomUUID } from 'node:crypto';
import { V1Client } from '../test/support/v1Client.js';
import { COMMAND, connectRunner, cpuOver, type SimRunner } from './simRunner.js';
import { PROJECT, check, parseOptions, percentile, positiveInt, processMemory, progress, raiseConcurrency, round, runBenchmark, serverPid, sleep, startBenchServer, type BenchServer } from './common.js';

const opts = parseOptions({
  runners: { default: '10000', help: 'simulated runners' },
  projects: { default: 'each', help: 'each (one project per runner) or one (all runners in one project)' },
  protocol: { default: 'v2', help: 'v2 (WebSocket) or v1 (polling)' },
  rate: { default: '50', help: 'v2: executions created per second in the steady phase' },
  idle: { default: '15', help: 'seconds measured with nothing to do' },
  steady: { default: '20', help: 'v2: seconds of steady executions' },
  poll: { default: '2', help: 'v1: seconds between polls of one runner' },
});
const RUNNERS = positiveInt('runners', opts.runners);
const RATE = positiveInt('rate', opts.rate);
const IDLE_S = positiveInt('idle', opts.idle);
const STEADY_S = positiveInt('steady', opts.steady);
const POLL_S = positiveInt('poll', opts.poll);
if (opts.projects !== 'each' && opts.projects !== 'one') throw new Error(`--projects must be each or one, not ${opts.projects}`);
if (opts.protocol !== 'v2' && opts.protocol !== 'v1') throw new Error(`--protocol must be v2 or v1, not ${opts.protocol}`);
/** Handshakes in flight at once, as a fleet restarting behind a load balancer would come back. */
const CONNECTING_AT_ONCE = 200;

/** Projects for the runners: `shop` (made with the server) and, with --projects each, one more per runner. */
async function makeProjects(bench: BenchServer, n: number): Promise<Array<{ name: string; key: string }>> {
  const projects = [{ name: PROJECT, key: bench.key }];
  let next = 1;
  const lane = async () => {
    while (next < n) {
      const name = `p${next++}`;
      const made = await bench.api<{ runner_key: { key: string } }>('POST', '/api/v1/projects', { name });
      projects.push({ name, key: made.runner_key.key });
      if (projects.length % 1000 === 0) progress(`${projects.length} projects`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  return projects;
}


async function fleetV2(bench: BenchServer, projects: Array<{ name: string; key: string }>): Promise<object> {
  const pid = serverPid(bench);
  const executed = new Map<string, number>();
  const runnerIds = Array.from({ length: RUNNERS }, () => randomUUID());
  let runners: SimRunner[] = [];
  /** Connects the whole fleet, CONNECTING_AT_ONCE handshakes at a time; seconds until all are welcomed. */
  const connectAll = async (what: string): Promise<number> => {
    progress(`${what}: ${RUNNERS} v2 runners`);
    runners = [];
    const t0 = Date.now();
    let next = 0;
    const lane = async () => {
      while (next < RUNNERS) {
        const i = next++;
        runners.push(await connectRunner(bench.server.url, projects[i % projects.length], runnerIds[i], (id, at) => executed.set(id, at)));
        if (runners.length % 2000 === 0) progress(`${runners.length} runners connected after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    };
    await Promise.all(Array.from({ length: CONNECTING_AT_ONCE }, lane));
    return round((Date.now() - t0) / 1000, 1);
  };
  // The first time: every runner is new to the server (recorded, audited) and sends its catalogue.
  const firstConnectSeconds = await connectAll('first connection');
  await sleep(3000);
  // What a server restart or a network cut means for a fleet: all known runners come back at once, catalogues in sync.
  for (const r of runners) r.ws.terminate();
  await sleep(2000);
  const connectSeconds = await connectAll('reconnection');
  // Let the catalogues settle before measuring idle.
  await sleep(3000);
  progress(`idle for ${IDLE_S} s`);
  const idleCpu = await cpuOver(pid, IDLE_S);
  const idleMemory = processMemory(pid);

  progress(`steady: ${RATE} executions a second for ${STEADY_S} s`);
  const sentAt = new Map<string, number>();
  const cpu = cpuOver(pid, STEADY_S);
  const creates: Array<Promise<void>> = [];
  const steadyStart = Date.now();
  const offset = Math.floor(Math.random() * projects.length);
  for (let i = 0; i < RATE * STEADY_S; i++) {
    const due = steadyStart + (i * 1000) / RATE;
    if (due > Date.now()) await sleep(due - Date.now());
    // Round robin from a random start: a project's one-at-a-time limit never refuses a run here.
    const project = projects[(offset + i) % projects.length].name;
    const sent = Date.now();
    creates.push(
      bench.api<{ id: string }>('POST', `/api/v1/projects/${project}/executions`, { command: COMMAND.name }).then((e) => void sentAt.set(e.id, sent)),
    );
  }
  await Promise.all(creates);
  const steadyCpu = await cpu;
  const deadline = Date.now() + 30_000;
  while ([...sentAt.keys()].some((id) => !executed.has(id)) && Date.now() < deadline) await sleep(100);
  const lates = [...sentAt].filter(([id]) => executed.has(id)).map(([id, sent]) => executed.get(id)! - sent).sort((a, b) => a - b);
  const notDispatched = sentAt.size - lates.length;
  for (const r of runners) r.ws.terminate();
  check(notDispatched === 0, `${notDispatched} executions never reached a runner within 30 s`);
  return {
    first_connect_all_s: firstConnectSeconds,
    reconnect_all_s: connectSeconds,
    idle: { rss_mb: idleMemory.rssMb, cpu_pct_of_core: idleCpu.server, bench_cpu_pct_of_core: idleCpu.bench },
    steady: {
      executions_per_s: RATE,
      executions: lates.length,
      cpu_pct_of_core: steadyCpu.server,
      bench_cpu_pct_of_core: steadyCpu.bench,
      dispatch_p50_ms: percentile(lates, 50),
      dispatch_p99_ms: percentile(lates, 99),
      dispatch_max_ms: lates[lates.length - 1],
    },
    peak_rss_mb: processMemory(pid).peakRssMb,
  };
}

async function fleetV1(bench: BenchServer, projects: Array<{ name: string; key: string }>): Promise<object> {
  const pid = serverPid(bench);
  const clients = Array.from({ length: RUNNERS }, (_, i) => new V1Client({ serverUrl: bench.server.url, apiKey: projects[i % projects.length].key, maxRetries: 0, timeoutMs: 30_000 }));
  progress(`${RUNNERS} v1 runners sync their commands and poll every ${POLL_S} s`);
  for (let i = 0; i < projects.length; i += 50) {
    await Promise.all(clients.slice(i, Math.min(i + 50, projects.length)).map((c) => c.syncCommands([{ name: COMMAND.name, app_label: COMMAND.app_label, help_text: COMMAND.help_text }])));
  }
  const latencies: number[] = [];
  let failures = 0;
  let measuring = false;
  let stopped = false;
  const pollers = clients.map(async (c, i) => {
    // Spread over the poll period, as runners started at different times are.
    await sleep((i / RUNNERS) * POLL_S * 1000);
    while (!stopped) {
      const t = Date.now();
      try {
        await c.pending();
        if (measuring) latencies.push(Date.now() - t);
      } catch {
        if (measuring) failures++;
      }
      await sleep(Math.max(0, POLL_S * 1000 - (Date.now() - t)));
    }
  });
  await sleep(POLL_S * 2000);
  progress(`measuring for ${IDLE_S} s`);
  measuring = true;
  const cpu = await cpuOver(pid, IDLE_S);
  measuring = false;
  stopped = true;
  await Promise.all(pollers);
  latencies.sort((a, b) => a - b);
  check(failures === 0, `${failures} polls failed`);
  return {
    polls: latencies.length,
    polls_per_s: round(latencies.length / IDLE_S, 1),
    cpu_pct_of_core: cpu.server,
    bench_cpu_pct_of_core: cpu.bench,
    poll_p50_ms: percentile(latencies, 50),
    poll_p99_ms: percentile(latencies, 99),
    rss_mb: processMemory(pid).rssMb,
  };
}

async function main(): Promise<object> {
  const bench = await startBenchServer(opts.db, [], {
    // A fleet behind one address (this machine): the per-address connection cap would refuse it.
    env: { DJANGOCOMMAND_MAX_CONNECTIONS_PER_ADDRESS: '0', DJANGOCOMMAND_LOG_LEVEL: 'warn' },
  });
  try {
    const nProjects = opts.projects === 'each' ? RUNNERS : 1;
    progress(`creating ${nProjects} project(s)`);
    const projects = await makeProjects(bench, nProjects);
    if (nProjects === 1) {
      // All runners' executions of one command in one project: lift the limit of one at a time (to the most allowed).
      await new V1Client({ serverUrl: bench.server.url, apiKey: bench.key, maxRetries: 0 }).syncCommands([{ name: COMMAND.name, app_label: COMMAND.app_label, help_text: COMMAND.help_text }]);
      await raiseConcurrency(bench, COMMAND.name, 1000);
    }
    const result = opts.protocol === 'v2' ? await fleetV2(bench, projects) : await fleetV1(bench, projects);
    return { benchmark: 'fleet', db: opts.db, protocol: opts.protocol, runners: RUNNERS, projects: nProjects, ...result };
  } finally {
    await bench.stop();
  }
}

void runBenchmark({ maxSeconds: 900, main });
