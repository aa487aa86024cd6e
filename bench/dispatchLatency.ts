/**
 * Dispatch latency: "API request accepted → command process started", protocol v2 (push, our
 * runner) next to protocol v1 (polling every 2 s, like the Python runner), in one run on one
 * server.
 *
 * One real server (SQLite by default) with two projects: `shop` served by our runner process
 * (`djangocommand start`, warm start, the example Django project), and `legacy` served by the
 * V1Runner of test/support/v1Runner.ts (which behaves like the Python runner: polls pending/
 * every --v1-poll-ms, calls start/, then spawns `manage.py`). For each sample an execution of
 * `check` is created through POST /api/v1/projects/P/executions and followed through its
 * Server-Sent Events (no polling, which would load the server while it dispatches).
 *
 * The figure is `started_at - created_at` of the execution (both by the server's clock; for v2
 * `started_at` is the runner's time of the start, which the runner reports in `started`, same
 * machine). The client's own view (POST answered → `status` event saying it started) is
 * reported next to it.
 *
 * v2 samples run one at a time (each waits for the previous to end; the command's limit stays
 * 1). v1 samples start after a random wait of 0..poll interval after the previous one started,
 * so they arrive at a uniformly random point of the runner's polling cycle (without it every
 * sample would arrive just after a poll and wait the whole interval); they may overlap, so the
 * limit of `check` in `legacy` is raised.
 *
 *   node dist/bench/dispatchLatency.js [--samples 40] [--v1-poll-ms 2000] [--db postgres]
 */
import { V1Runner } from '../test/support/v1Runner.js';
import {
  PROJECT,
  TERMINAL_STATUSES,
  atCleanup,
  check,
  createExecution,
  createProject,
  followExecution,
  parseOptions,
  percentile,
  positiveInt,
  progress,
  raiseConcurrency,
  round,
  runBenchmark,
  sleep,
  startBenchServer,
  type BenchServer,
  type ExecutionView,
} from './common.js';
import { EXAMPLE_DIR, PYTHON, benchExample, startBenchRunner } from './runnerProcess.js';

const COMMAND = 'check';
const V1_PROJECT = 'legacy';
/** Samples of each protocol run first and thrown away (first fork, JIT, caches). */
const WARMUP = 2;

const options = parseOptions({
  samples: { default: '40', help: 'measured executions per protocol' },
  'v1-poll-ms': { default: '2000', help: "the v1 runner's polling interval (the Python runner's is 2000)" },
});
const samples = positiveInt('samples', options.samples);
const v1PollMs = positiveInt('v1-poll-ms', options['v1-poll-ms']);

interface Sample {
  /** started_at - created_at, by the server's clock. */
  serverMs: number;
  /** POST answered → the client heard it started. */
  clientMs: number;
  /** created_at → dispatched_at (v2 only: the server's share). */
  dispatchMs?: number;
}

const ms = (iso: string | null): number => {
  check(iso !== null, 'a timestamp is missing');
  return Date.parse(iso);
};

/**
 * Creates one execution and follows it. `started` resolves with the sample once the client hears
 * that it started; `ended` with its final view.
 */
function oneSample(bench: BenchServer, project: string): { started: Promise<Sample>; ended: Promise<ExecutionView> } {
  let resolveStarted!: (s: Sample) => void;
  let rejectStarted!: (err: unknown) => void;
  const started = new Promise<Sample>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  const ended = (async () => {
    const created = await createExecution(bench, COMMAND, [], project);
    const answeredAt = Date.now();
    let heard = false;
    const final = await followExecution(bench, created.id, (view, receivedAt) => {
      if (heard || view.started_at === null) return;
      heard = true;
      resolveStarted({
        serverMs: ms(view.started_at) - ms(view.created_at),
        clientMs: receivedAt - answeredAt,
        dispatchMs: view.dispatched_at === null ? undefined : ms(view.dispatched_at) - ms(view.created_at),
      });
    });
    check(final.status === 'succeeded', `execution ${final.id} of ${project} ended ${final.status}`);
    return final;
  })();
  ended.catch(rejectStarted);
  return { started, ended };
}

async function v2Samples(bench: BenchServer): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < WARMUP + samples; i++) {
    const { started, ended } = oneSample(bench, PROJECT);
    const s = await started;
    await ended;
    if (i >= WARMUP) out.push(s);
    // A little random spacing, so samples do not line up with the server's or runner's timers.
    await sleep(10 + Math.random() * 40);
  }
  return out;
}

async function v1Samples(bench: BenchServer): Promise<Sample[]> {
  const out: Sample[] = [];
  const running: Array<Promise<ExecutionView>> = [];
  for (let i = 0; i < WARMUP + samples; i++) {
    await sleep(Math.random() * v1PollMs);
    // The runner takes 4 at a time; never let a sample wait for a free slot.
    while (running.length >= 2) await running.shift();
    const { started, ended } = oneSample(bench, V1_PROJECT);
    running.push(ended);
    const s = await started;
    if (i >= WARMUP) out.push(s);
    if ((i + 1) % 10 === 0) progress(`  v1: ${i + 1 - WARMUP}/${samples}`);
  }
  await Promise.all(running);
  return out;
}

function summary(values: number[]): { p50: number; p99: number; max: number; mean: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50), 1),
    p99: round(percentile(sorted, 99), 1),
    max: round(sorted[sorted.length - 1], 1),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, 1),
  };
}

await runBenchmark({
  maxSeconds: 300,
  async main() {
    progress(`dispatch latency on ${options.db}: ${samples} samples per protocol (+${WARMUP} warm-up), v1 polls every ${v1PollMs} ms`);
    const bench = await startBenchServer(options.db, []);
    const example = benchExample();

    const runner = await startBenchRunner(bench.server.url, bench.key, example.env);
    const v1Key = await createProject(bench, V1_PROJECT);
    const v1 = new V1Runner({
      serverUrl: bench.server.url,
      apiKey: v1Key,
      projectDir: EXAMPLE_DIR,
      python: PYTHON,
      env: example.env,
      pollIntervalMs: v1PollMs,
      log: (level, message) => (level === 'warn' || level === 'error' ? progress(`v1 runner: ${message}`) : undefined),
    });
    atCleanup(() => v1.stop());
    await v1.start();
    // Both runners report their commands when they connect; wait until `check` is known to both.
    for (const project of [PROJECT, V1_PROJECT]) {
      for (let tries = 0; ; tries++) {
        const found = await bench.api('GET', `/api/v1/projects/${project}/commands/${COMMAND}`).then(() => true, () => false);
        if (found) break;
        check(tries < 200, `the runner of ${project} did not report ${COMMAND}`);
        await sleep(50);
      }
    }
    await raiseConcurrency(bench, COMMAND, 100, V1_PROJECT);

    progress('v2 (push, warm start)');
    const v2 = await v2Samples(bench);
    progress(`  v2 samples, created→started ms (created→dispatched): ${v2.map((s) => `${s.serverMs}(${s.dispatchMs})`).join(' ')}`);
    progress(`v1 (polling every ${v1PollMs} ms)`);
    const v1s = await v1Samples(bench);
    progress(`  v1 samples, created→started ms: ${v1s.map((s) => s.serverMs).join(' ')}`);
    check(/started \(warm/.test(runner.logs()), 'the v2 runner never started a command warm');
    check(!/started \(cold/.test(runner.logs()), 'the v2 runner started some commands cold: the warm process was not used for every sample');

    const statuses = await bench.api<{ items: ExecutionView[] }>('GET', `/api/v1/executions?limit=500`);
    check(statuses.items.every((e) => TERMINAL_STATUSES.has(e.status)), 'some executions did not end');

    return {
      benchmark: 'dispatch_latency',
      db: options.db,
      command: COMMAND,
      samples,
      v2_push_ms: summary(v2.map((s) => s.serverMs)),
      v1_poll_ms: summary(v1s.map((s) => s.serverMs)),
      v2_push_client_ms: summary(v2.map((s) => s.clientMs)),
      v1_poll_client_ms: summary(v1s.map((s) => s.clientMs)),
      v2_created_to_dispatched_ms: summary(v2.map((s) => s.dispatchMs ?? NaN)),
      v2_dispatched_to_started_ms: summary(v2.map((s) => s.serverMs - (s.dispatchMs ?? NaN))),
      v1_poll_interval_ms: v1PollMs,
    };
  },
});
