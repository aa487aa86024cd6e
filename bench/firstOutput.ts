/**
 * Time to first output: from the API request to the first output line of `manage.py check`,
 * through our runner started cold (`--no-warm`: `python manage.py check` per command) and warm
 * (the default: a pre-loaded Django process forks the command).
 *
 * One real server (SQLite by default) and the example Django project. Our runner process is
 * started with warm start, measured, stopped, then started with --no-warm and measured. Each
 * sample: note the time, POST /api/v1/projects/shop/executions {"command": "check"}, poll
 * GET /api/v1/executions/ID/output/chunks every 5 ms until the first chunk exists, then wait
 * for the execution to succeed before the next sample (the command's limit is 1).
 *
 * The figure is the first chunk's `line_times[0][1]` (the unix ms at which the runner read the
 * first line, by its clock; same machine) minus the time just before the POST. The client's own
 * view (POST sent → first chunk seen) is reported next to it: it adds the runner's output flush
 * interval (100 ms, or the process exit) and the polling. For reference, the same for
 * `python manage.py check` run directly (what a person with SSH gets), without any server.
 *
 *   node dist/bench/firstOutput.js [--samples 15] [--poll-ms 5] [--db postgres]
 */
import type { OutputChunkView } from '../src/shared/api.js';
import { spawn } from 'node:child_process';
import {
  PROJECT,
  check,
  createExecution,
  parseOptions,
  percentile,
  pollExecution,
  positiveInt,
  progress,
  round,
  runBenchmark,
  sleep,
  startBenchServer,
  type BenchServer,
} from './common.js';
import { EXAMPLE_DIR, PYTHON, benchExample, startBenchRunner } from './runnerProcess.js';

const COMMAND = 'check';
const FIRST_LINE = 'System check identified no issues';
/** Samples run first in each mode and thrown away. */
const WARMUP = 1;
const DIRECT_SAMPLES = 5;

const options = parseOptions({
  samples: { default: '15', help: 'measured executions per mode (cold, warm)' },
  'poll-ms': { default: '5', help: 'how often the client asks for the first output chunk' },
});
const samples = positiveInt('samples', options.samples);
const POLL_MS = positiveInt('poll-ms', options['poll-ms']);

interface Sample {
  /** Before the POST → the runner read the first line (runner clock). */
  lineMs: number;
  /** Before the POST → the client saw the first chunk. */
  clientMs: number;
  /** created_at → started_at: the process start as the server recorded it. */
  startMs: number;
}

/** The REST API's own type: bench and server agree on one definition. */
type Chunk = OutputChunkView;

async function oneSample(bench: BenchServer): Promise<Sample> {
  const before = Date.now();
  const created = await createExecution(bench, COMMAND);
  let first: Chunk | undefined;
  const deadline = Date.now() + 60_000;
  while (!first) {
    const page = await bench.api<{ items: Chunk[] }>('GET', `/api/v1/executions/${created.id}/output/chunks?limit=1`);
    first = page.items[0];
    if (!first) {
      check(Date.now() < deadline, `no output from execution ${created.id} within 60 s`);
      await sleep(POLL_MS);
    }
  }
  const seenAt = Date.now();
  check(first.data.includes(FIRST_LINE), `the first chunk is not check's output: ${JSON.stringify(first.data.slice(0, 200))}`);
  check(first.line_times.length > 0 && first.line_times[0][0] === 0, 'the first chunk has no time for its first line');
  const final = await pollExecution(bench, created.id, (e) => e.status !== 'queued' && e.status !== 'dispatched' && e.status !== 'running', { everyMs: 20 });
  check(final.status === 'succeeded', `execution ${created.id} ended ${final.status}`);
  return {
    lineMs: first.line_times[0][1] - before,
    clientMs: seenAt - before,
    startMs: Date.parse(final.started_at!) - Date.parse(final.created_at),
  };
}

async function mode(bench: BenchServer, env: Record<string, string>, warm: boolean): Promise<Sample[]> {
  progress(`${warm ? 'warm' : 'cold (--no-warm)'}: starting the runner`);
  const runner = await startBenchRunner(bench.server.url, bench.key, env, warm ? [] : ['--no-warm']);
  try {
    for (let tries = 0; ; tries++) {
      const found = await bench.api('GET', `/api/v1/projects/${PROJECT}/commands/${COMMAND}`).then(() => true, () => false);
      if (found) break;
      check(tries < 200, `the runner did not report ${COMMAND}`);
      await sleep(50);
    }
    const out: Sample[] = [];
    for (let i = 0; i < WARMUP + samples; i++) {
      const s = await oneSample(bench);
      if (i >= WARMUP) out.push(s);
      await sleep(10 + Math.random() * 40);
    }
    const started = [...runner.logs().matchAll(/check\s+started \((warm|cold)/g)].map((m) => m[1]);
    check(started.length === WARMUP + samples && started.every((w) => w === (warm ? 'warm' : 'cold')), `expected every start ${warm ? 'warm' : 'cold'}, the runner says: ${started.join(',')}`);
    return out;
  } finally {
    await runner.stop();
  }
}

/** `python manage.py check` run directly: ms from spawn to its first stdout bytes. */
async function directSample(env: Record<string, string>): Promise<number> {
  const before = Date.now();
  const child = spawn(PYTHON, ['manage.py', COMMAND], { cwd: EXAMPLE_DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let firstAt: number | undefined;
  child.stdout.on('data', () => (firstAt ??= Date.now()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  check(code === 0 && firstAt !== undefined, `manage.py check exited ${code}`);
  return firstAt - before;
}

function stats(values: number[]): { p50: number; p90: number; mean: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50), 1), p90: round(percentile(sorted, 90), 1), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, 1) };
}

await runBenchmark({
  maxSeconds: 300,
  async main() {
    progress(`first output of ${COMMAND} on ${options.db}: ${samples} samples per mode (+${WARMUP} warm-up)`);
    const bench = await startBenchServer(options.db, []);
    const example = benchExample();
    const warm = await mode(bench, example.env, true);
    const cold = await mode(bench, example.env, false);
    const direct: number[] = [];
    for (let i = 0; i < DIRECT_SAMPLES; i++) direct.push(await directSample(example.env));

    const coldMs = stats(cold.map((s) => s.lineMs));
    const warmMs = stats(warm.map((s) => s.lineMs));
    return {
      benchmark: 'first_output',
      db: options.db,
      command: COMMAND,
      samples,
      poll_ms: POLL_MS,
      cold_ms: coldMs,
      warm_ms: warmMs,
      speedup: round(coldMs.p50 / warmMs.p50, 1),
      cold_client_ms: stats(cold.map((s) => s.clientMs)),
      warm_client_ms: stats(warm.map((s) => s.clientMs)),
      cold_created_to_started_ms: stats(cold.map((s) => s.startMs)),
      warm_created_to_started_ms: stats(warm.map((s) => s.startMs)),
      direct_manage_py_ms: stats(direct),
    };
  },
});
