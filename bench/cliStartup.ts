/**
 * What a user of the CLI waits for: `djangocommand --version`, `djangocommand run check` through
 * a warm runner, against `python manage.py check` run cold in the project folder (what SSH
 * gives), with `node -e 0` as the floor any Node.js command pays. Then the cost of reading live
 * output through the CLI against curl reading the same stream.
 *
 * Startup: one real server (SQLite by default), our runner process (warm start) next to the
 * example Django project. Each round runs the four commands one after the other (interleaved,
 * so a busy minute weighs on all of them alike), each as a new process, timed from spawn to
 * exit. The first round is a warm-up, not counted. Every `run` must exit 0 with check's line
 * on its stdout, and the runner's log must show each one started warm.
 *
 * Streaming: a second project whose fake protocol-v1 runner (the Python runner's way) sends
 * `--stream-mb` MiB of 1 KiB log lines in 32 MiB output/ requests, which the server stores as
 * 8 MiB parts: each part is one Server-Sent Event of ~8 MiB, the case where a reader that scans
 * its whole buffer again on every network read takes time in the square of the event's size.
 * Then, interleaved, `--stream-samples` times each: `djangocommand logs --follow ID` against
 * `curl -N` on the same events URL, and `djangocommand logs ID` against curl on the same JSON
 * lines download (`/output?format=jsonl`), every one writing to a file whose size is checked.
 *
 *   node dist/bench/cliStartup.js [--samples 15] [--stream-mb 128] [--stream-samples 3] [--db postgres]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../test/support/databases.js';
import { V1Client } from '../test/support/v1Client.js';
import { PROJECT, atCleanup, check, createProject, parseOptions, percentile, positiveInt, progress, round, runBenchmark, sleep, startBenchServer, type BenchServer, type ExecutionView } from './common.js';
import { EXAMPLE_DIR, PYTHON, benchExample, startBenchRunner } from './runnerProcess.js';
import { CLI, REPO } from './serverProcess.js';

const COMMAND = 'check';
const CHECK_LINE = 'System check identified no issues';
const LEGACY = 'legacy';
const MIB = 1024 * 1024;
/** One output/ request of the fake v1 runner: the server cuts it into 8 MiB parts. */
const V1_CHUNK_BYTES = 32 * MIB;

const options = parseOptions({
  samples: { default: '15', help: 'measured rounds (each: --version, run, manage.py, node -e 0)' },
  'stream-mb': { default: '128', help: 'output streamed through the CLI and curl, in MiB (a multiple of 32)' },
  'stream-samples': { default: '3', help: 'reads of that output per reader' },
});
const samples = positiveInt('samples', options.samples);
const streamMb = positiveInt('stream-mb', options['stream-mb']);
const streamSamples = positiveInt('stream-samples', options['stream-samples']);
if ((streamMb * MIB) % V1_CHUNK_BYTES !== 0) throw new Error(`--stream-mb must be a multiple of ${V1_CHUNK_BYTES / MIB}`);
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns `argv`, resolves when it has exited: wall time from spawn, exit code and (with pipes) what it printed. */
function timed(argv: string[], opts: { cwd?: string; env?: Record<string, string>; stdoutFile?: string } = {}): Promise<Timed> {
  const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : 'pipe';
  const started = process.hrtime.bigint();
  const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', out, 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (typeof out === 'number') fs.closeSync(out);
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout, stderr });
    });
  });
}

function stats(values: number[]): { p50: number; p90: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50), 1), p90: round(percentile(sorted, 90), 1) };
}

// ---- startup ---------------------------------------------------------------------------------

async function startup(bench: BenchServer, exampleEnv: Record<string, string>) {
  /** created_at → finished_at of each run's execution, by the server's clock: the server's and runner's share. */
  const executionMs: number[] = [];
  const runner = await startBenchRunner(bench.server.url, bench.key, exampleEnv);
  try {
    for (let tries = 0; !(await bench.api('GET', `/api/v1/projects/${PROJECT}/commands/${COMMAND}`).then(() => true, () => false)); tries++) {
      check(tries < 200, `the runner did not report ${COMMAND}`);
      await sleep(50);
    }
    const cliEnv = { DJANGOCOMMAND_URL: bench.server.url, DJANGOCOMMAND_TOKEN: bench.token };
    const kinds = {
      node_floor_ms: () => timed([process.execPath, '-e', '0']),
      version_ms: async () => {
        const r = await timed([process.execPath, CLI, '--version']);
        check(r.code === 0 && r.stdout.trim() === VERSION, `--version printed ${JSON.stringify(r.stdout)} (exit ${r.code})`);
        return r;
      },
      remote_run_ms: async () => {
        const r = await timed([process.execPath, CLI, 'run', '--project', PROJECT, COMMAND], { env: cliEnv });
        check(r.code === 0 && r.stdout.includes(CHECK_LINE), `run ${COMMAND} exited ${r.code}: ${r.stdout}${r.stderr}`);
        const id = /queued on \S+ as (\S+)/.exec(r.stderr)?.[1];
        check(id, `run did not say which execution it created: ${r.stderr}`);
        const e = await bench.api<ExecutionView>('GET', `/api/v1/executions/${id}`);
        executionMs.push(Date.parse(e.finished_at!) - Date.parse(e.created_at));
        return r;
      },
      local_cold_ms: async () => {
        const r = await timed([PYTHON, 'manage.py', COMMAND], { cwd: EXAMPLE_DIR, env: exampleEnv });
        check(r.code === 0 && r.stdout.includes(CHECK_LINE), `manage.py ${COMMAND} exited ${r.code}: ${r.stderr}`);
        return r;
      },
    };
    const times: Record<keyof typeof kinds, number[]> = { node_floor_ms: [], version_ms: [], remote_run_ms: [], local_cold_ms: [] };
    for (let round = 0; round <= samples; round++) {
      for (const [kind, run] of Object.entries(kinds) as Array<[keyof typeof kinds, () => Promise<Timed>]>) {
        const r = await run();
        if (round > 0) times[kind].push(r.ms);
      }
      if (round > 0) progress(`round ${round}: ${Object.entries(times).map(([k, v]) => `${k} ${round_(v[v.length - 1])}`).join(', ')}`);
    }
    const started = [...runner.logs().matchAll(new RegExp(`${COMMAND}\\s+started \\((warm|cold)`, 'g'))].map((m) => m[1]);
    check(started.length === samples + 1 && started.every((w) => w === 'warm'), `expected every run started warm, the runner says: ${started.join(',')}`);
    return { ...times, remote_execution_ms: executionMs.slice(1) };
  } finally {
    await runner.stop();
  }
}

const round_ = (ms: number) => Math.round(ms);

// ---- streaming -------------------------------------------------------------------------------

/** An execution in the legacy project whose output (`--stream-mb` MiB) a fake v1 runner sent in 32 MiB requests. */
async function bigOutput(bench: BenchServer): Promise<{ id: string; bytes: number }> {
  const key = await createProject(bench, LEGACY);
  const v1 = new V1Client({ serverUrl: bench.server.url, apiKey: key, maxRetries: 0, timeoutMs: 300_000 });
  await v1.syncCommands([{ name: 'spew', app_label: 'demo', help_text: 'usage: manage.py spew' }]);
  const created = await bench.api<{ id: string }>('POST', `/api/v1/projects/${LEGACY}/executions`, { command: 'spew' });
  check((await v1.pending()).some((e) => e.id === created.id), 'the v1 runner was not offered the execution');
  await v1.start(created.id);
  const line = `2026-11-27 12:00:00,000 INFO shop.tasks: ${'a log line of a busy command, '.repeat(40)}`.slice(0, 1023) + '\n';
  const lines = V1_CHUNK_BYTES / line.length;
  check(Number.isInteger(lines), 'a chunk is not a whole number of lines');
  const segments = Buffer.from(JSON.stringify([{ timestamp: Date.now() / 1000, content: line.repeat(lines) }]));
  const chunks = (streamMb * MIB) / V1_CHUNK_BYTES;
  for (let n = 1; n <= chunks; n++) {
    const res = await v1.request('POST', `/api/runner/executions/${created.id}/output/`, {
      rawBody: Buffer.concat([Buffer.from(`{"chunk_number":${n},"is_stderr":false,"segments":`), segments, Buffer.from('}')]),
    });
    check(res.status === 200, `output chunk ${n} answered ${res.status}: ${res.text.slice(0, 300)}`);
  }
  await v1.complete(created.id, { exit_code: 0, status: 'success' });
  const view = await bench.api<{ status: string; output_bytes: number }>('GET', `/api/v1/executions/${created.id}`);
  check(view.status === 'succeeded' && view.output_bytes === streamMb * MIB, `the execution is ${view.status} with ${view.output_bytes} bytes`);
  return { id: created.id, bytes: view.output_bytes };
}

async function streaming(bench: BenchServer) {
  progress(`streaming: ${streamMb} MiB sent by a v1 runner in ${V1_CHUNK_BYTES / MIB} MiB requests`);
  const { id, bytes } = await bigOutput(bench);
  const folder = tempDir('dc-bench-stream-');
  atCleanup(() => fs.rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'out');
  const cliEnv = { DJANGOCOMMAND_URL: bench.server.url, DJANGOCOMMAND_TOKEN: bench.token };
  const curl = (url: string, accept: string) => ['curl', '-sS', '-N', '--fail', '-H', `authorization: Bearer ${bench.token}`, '-H', `accept: ${accept}`, bench.server.url + url];
  /** Each reader, and the least its output file must hold: the output itself (the CLI), or more (the events and JSON lines around it). */
  const readers = {
    cli_follow_ms: { argv: [process.execPath, CLI, 'logs', '--follow', id], exact: true },
    curl_events_ms: { argv: curl(`/api/v1/executions/${id}/events`, 'text/event-stream'), exact: false },
    cli_logs_ms: { argv: [process.execPath, CLI, 'logs', id], exact: true },
    curl_jsonl_ms: { argv: curl(`/api/v1/executions/${id}/output?format=jsonl`, 'application/x-ndjson'), exact: false },
  };
  const times: Record<keyof typeof readers, number[]> = { cli_follow_ms: [], curl_events_ms: [], cli_logs_ms: [], curl_jsonl_ms: [] };
  for (let i = 0; i < streamSamples; i++) {
    for (const [name, reader] of Object.entries(readers) as Array<[keyof typeof readers, { argv: string[]; exact: boolean }]>) {
      const r = await timed(reader.argv, { env: cliEnv, stdoutFile: file });
      const size = fs.statSync(file).size;
      check(r.code === 0 && (reader.exact ? size === bytes : size > bytes), `${name}: exit ${r.code}, ${size} bytes written for ${bytes} of output: ${r.stderr.slice(0, 300)}`);
      times[name].push(r.ms);
      progress(`  ${name} ${round_(r.ms)} ms`);
    }
  }
  return times;
}

await runBenchmark({
  maxSeconds: 300,
  async main() {
    progress(`CLI startup on ${options.db}: ${samples} rounds (+1 warm-up)`);
    const bench = await startBenchServer(options.db, []);
    const example = benchExample();
    const t = await startup(bench, example.env);
    const s = await streaming(bench);

    const version = stats(t.version_ms);
    const remote = stats(t.remote_run_ms);
    const local = stats(t.local_cold_ms);
    const follow = stats(s.cli_follow_ms);
    const curlEvents = stats(s.curl_events_ms);
    const logs = stats(s.cli_logs_ms);
    const curlJsonl = stats(s.curl_jsonl_ms);
    return {
      benchmark: 'cliStartup',
      db: options.db,
      samples,
      command: COMMAND,
      node_floor_ms: stats(t.node_floor_ms),
      version_ms: version,
      remote_run_ms: remote,
      remote_execution_ms: stats(t.remote_execution_ms),
      local_cold_ms: local,
      remote_to_local: round(remote.p50 / local.p50, 2),
      goals: { version_p50_le_100_ms: version.p50 <= 100, remote_to_local_le_0_5: remote.p50 / local.p50 <= 0.5 },
      stream: {
        mb: streamMb,
        samples: streamSamples,
        cli_follow_ms: follow,
        curl_events_ms: curlEvents,
        follow_to_curl: round(follow.p50 / curlEvents.p50, 2),
        cli_logs_ms: logs,
        curl_jsonl_ms: curlJsonl,
        logs_to_curl: round(logs.p50 / curlJsonl.p50, 2),
        goal_le_1_5: follow.p50 / curlEvents.p50 <= 1.5 && logs.p50 / curlJsonl.p50 <= 1.5,
      },
    };
  },
});
