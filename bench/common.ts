/**
 * What the benchmarks share: command-line options, a real server process on a fresh database
 * with a project and an admin token, REST calls, the server's memory from /proc, percentiles,
 * and a watchdog so a benchmark always stops by itself.
 *
 * The benchmarks reuse the test helpers (fresh databases, the v1 client): they measure the same
 * server the end-to-end tests run, started the same way (see serverProcess.ts for why the
 * process itself is started here).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { freshDatabase, type DbKind, type FreshDatabase } from '../test/support/databases.js';
import { startServerProcess, type ServerProcess } from './serverProcess.js';
import { V1Client } from '../test/support/v1Client.js';
import type { SyncedCommand } from '../src/shared/protocolV1.js';

export const PROJECT = 'shop';
const MIB = 1024 * 1024;

// ---- options --------------------------------------------------------------------------------

export type OptionSpec = Record<string, { default: string; help: string }>;

/**
 * Parses `--name value` options (all given as strings, with defaults) plus `--db` and `--help`.
 * Unknown options are refused, so a typo never silently runs the default benchmark.
 */
export function parseOptions<T extends OptionSpec>(specs: T): { db: DbKind } & Record<keyof T, string> {
  const all: OptionSpec = { db: { default: 'sqlite', help: 'sqlite or postgres' }, ...specs };
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean' },
      ...Object.fromEntries(Object.entries(all).map(([name, s]) => [name, { type: 'string' as const, default: s.default }])),
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(Object.entries(all).map(([name, s]) => `  --${name} (default ${s.default}): ${s.help}\n`).join(''));
    process.exit(0);
  }
  const parsed = values as { db: string } & Record<keyof T, string>;
  if (parsed.db !== 'sqlite' && parsed.db !== 'postgres') throw new Error(`--db must be sqlite or postgres, not ${parsed.db}`);
  return parsed as { db: DbKind } & Record<keyof T, string>;
}

export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1, not ${value}`);
  return n;
}

// ---- the server under test ------------------------------------------------------------------

export interface BenchServer {
  server: ServerProcess;
  db: FreshDatabase;
  /** The project's runner key (dc_...) and an admin API token (dct_...). */
  key: string;
  token: string;
  /** A v1 client for the project's key. Retries are off: a benchmark must see every failure. */
  v1: V1Client;
  /** A REST call with the admin token; throws unless the status is 2xx. */
  api<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/** Servers started and not yet stopped: runBenchmark stops them if the benchmark fails or is interrupted. */
const liveServers = new Set<BenchServer>();

/** Other things to stop on every way out (runners, temporary folders), run before the servers stop. */
const cleanups = new Set<() => Promise<void> | void>();

/** Registers `fn` to run when the benchmark ends, fails or is interrupted; the returned function unregisters it. */
export function atCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

/**
 * Starts `djangocommand server` on a fresh database, creates the project and a token through
 * the admin CLI, and syncs `commands` through protocol v1 as a runner does when it starts
 * (nothing when `commands` is empty: a real runner started afterwards syncs its own).
 */
export async function startBenchServer(kind: DbKind, commands: string[], opts: { env?: Record<string, string> } = {}): Promise<BenchServer> {
  const db = await freshDatabase(kind);
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(db, opts.env);
    const { key } = JSON.parse(await server.admin(['create-project', PROJECT, '--json']));
    const { token } = JSON.parse(await server.admin(['create-token', '--json']));
    const v1 = new V1Client({ serverUrl: server.url, apiKey: key, maxRetries: 0, timeoutMs: 120_000 });
    // No commands: a real runner started next reports its own (and nothing poses as a v1 runner).
    if (commands.length > 0) await v1.syncCommands(commands.map(syncedCommand));
    const handle: BenchServer = {
      server,
      db,
      key,
      token,
      v1,
      api: (method, path, body) => apiCall(server!.url, token, method, path, body),
      stop: async () => {
        liveServers.delete(handle);
        await server!.stop();
        await db.drop();
      },
    };
    liveServers.add(handle);
    return handle;
  } catch (err) {
    await server?.stop();
    await db.drop();
    throw err;
  }
}

function syncedCommand(name: string): SyncedCommand {
  return { name, app_label: 'django.core', help_text: `usage: manage.py ${name} [-h]` };
}

/** A REST call to `baseUrl` with `token`; throws unless the status is 2xx. */
export async function apiCall(baseUrl: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return text === '' ? undefined : JSON.parse(text);
}

/** Lifts the command's limit (1 by default) so many executions can be queued at once. */
export async function raiseConcurrency(bench: BenchServer, command: string, max: number, project = PROJECT): Promise<void> {
  await bench.api('PATCH', `/api/v1/projects/${project}/commands/${command}`, { max_concurrency: max });
}

/** Another project on the same server, through the admin CLI; resolves with its runner key (dc_...). */
export async function createProject(bench: BenchServer, name: string): Promise<string> {
  return (JSON.parse(await bench.server.admin(['create-project', name, '--json'])) as { key: string }).key;
}

/** What GET /api/v1/executions/ID answers (the fields the benchmarks read). */
export interface ExecutionView {
  id: string;
  status: string;
  exit_code: number | null;
  created_at: string;
  dispatched_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  output_bytes: number;
}

export const TERMINAL_STATUSES = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'lost']);

/** POST /api/v1/projects/P/executions with the admin token, as the CLI does. */
export function createExecution(bench: BenchServer, command: string, argv: string[] = [], project = PROJECT): Promise<ExecutionView> {
  return bench.api<ExecutionView>('POST', `/api/v1/projects/${project}/executions`, { command, argv });
}

/** Polls GET /api/v1/executions/ID every `everyMs` until `done` says so; fails after `timeoutMs`. */
export async function pollExecution(
  bench: BenchServer,
  id: string,
  done: (e: ExecutionView) => boolean,
  opts: { everyMs?: number; timeoutMs?: number } = {},
): Promise<ExecutionView> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const e = await bench.api<ExecutionView>('GET', `/api/v1/executions/${id}`);
    if (done(e)) return e;
    if (Date.now() > deadline) throw new Error(`execution ${id} is still ${e.status} after ${opts.timeoutMs ?? 60_000} ms`);
    await sleep(opts.everyMs ?? 50);
  }
}

/**
 * Follows an execution through its Server-Sent Events (GET /api/v1/executions/ID/events): the
 * server pushes a `status` event on every change, so the client learns of the start without
 * polling (polling would load the server while it dispatches). Resolves with the final view.
 * `onStatus` is called with each status view and the client's Date.now() when it arrived.
 */
export async function followExecution(
  bench: BenchServer,
  id: string,
  onStatus: (e: ExecutionView, receivedAtMs: number) => void = () => undefined,
  timeoutMs = 120_000,
): Promise<ExecutionView> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(`${bench.server.url}/api/v1/executions/${id}/events`, {
      headers: { authorization: `Bearer ${bench.token}`, accept: 'text/event-stream' },
      signal: abort.signal,
    });
    check(res.ok && res.body, `GET events of ${id} answered ${res.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
      const receivedAt = Date.now();
      buffer += decoder.decode(piece, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data || (name !== 'status' && name !== 'end')) continue;
        const view = JSON.parse(data) as ExecutionView;
        onStatus(view, receivedAt);
        if (name === 'end') return view;
      }
    }
    throw new Error(`the events of ${id} ended without an end event`);
  } catch (err) {
    if (abort.signal.aborted) throw new Error(`execution ${id} did not end within ${timeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- measurements ---------------------------------------------------------------------------

export interface ProcessMemory {
  /** Resident set size now. */
  rssMb: number;
  /** The highest resident set size since the process started (the kernel's high-water mark). */
  peakRssMb: number;
}

/** Reads VmRSS and VmHWM of a process from /proc (Linux). */
export function processMemory(pid: number): ProcessMemory {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssMb: round(kib('VmRSS') / 1024, 1), peakRssMb: round(kib('VmHWM') / 1024, 1) };
}

export function serverPid(bench: BenchServer): number {
  const pid = bench.server.process.pid;
  if (pid === undefined) throw new Error('the server process has no pid');
  return pid;
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(sortedAscending: number[], p: number): number {
  if (sortedAscending.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[Math.min(sortedAscending.length, Math.max(1, rank)) - 1];
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function mbPerSecond(bytes: number, ms: number): number {
  return round(bytes / MIB / (ms / 1000), 1);
}

export const elapsedMs = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;
export const now = (): bigint => process.hrtime.bigint();

// ---- running a benchmark --------------------------------------------------------------------

/**
 * Runs a benchmark's main function and prints its result as one JSON line on stdout. Progress
 * goes to stderr, so stdout stays machine-readable. A watchdog ends the process (with the
 * reason, exit code 1) if the benchmark hangs; servers still running are stopped and their
 * databases dropped on every way out, so nothing is left behind.
 */
export async function runBenchmark(opts: { maxSeconds: number; main(): Promise<object> }): Promise<void> {
  const cleanup = async () => {
    for (const fn of [...cleanups].reverse()) {
      cleanups.delete(fn);
      await Promise.resolve()
        .then(fn)
        .catch((err) => progress(`cleanup failed: ${String(err)}`));
    }
    for (const bench of [...liveServers]) await bench.stop().catch((err) => progress(`cleanup failed: ${String(err)}`));
  };
  const giveUp = (why: string, exitCode: number) => {
    progress(why);
    void cleanup().finally(() => process.exit(exitCode));
  };
  const watchdog = setTimeout(() => giveUp(`benchmark still running after ${opts.maxSeconds} s: giving up`, 1), opts.maxSeconds * 1000);
  // Ctrl-C: still stop the server and drop the database, so nothing is left behind.
  process.once('SIGINT', () => giveUp('interrupted', 130));
  try {
    await refuseBusyMachine();
    const result = await opts.main();
    process.stdout.write(JSON.stringify(result) + '\n');
  } catch (err) {
    progress(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

/** Above this share of all cores in use by other processes, a benchmark would measure the sharing. */
const BUSY_MACHINE_PCT = 25;

/**
 * Refuses to start while other processes keep the machine busy (a test run, another benchmark):
 * the server and the simulated clients need the cores to themselves, or the figures say more
 * about the neighbours than about the server. BENCH_ALLOW_BUSY=1 runs anyway.
 */
async function refuseBusyMachine(): Promise<void> {
  if (process.env.BENCH_ALLOW_BUSY === '1' || !fs.existsSync('/proc/stat')) return;
  const sample = () => {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return { idle: cpu[3] + cpu[4], total: cpu.slice(0, 8).reduce((a, b) => a + b, 0) };
  };
  const a = sample();
  await sleep(1000);
  const b = sample();
  const busyPct = b.total > a.total ? (1 - (b.idle - a.idle) / (b.total - a.total)) * 100 : 0;
  if (busyPct > BUSY_MACHINE_PCT) {
    throw new Error(`the machine is busy (${busyPct.toFixed(0)} % of all cores in use by other processes): the figures would be wrong. Wait, or set BENCH_ALLOW_BUSY=1.`);
  }
}

export function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** Fails the benchmark: a number measured on a wrong result is worse than no number. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`verification failed: ${message}`);
}
