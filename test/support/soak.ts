/**
 * The replica soak: several real server processes on one PostgreSQL database, real runners of
 * ours (`djangocommand start` next to the example Django project) spread over them, a steady
 * load of executions created through the REST API of random live replicas, and every
 * `killEveryS` seconds one replica killed with SIGKILL and started again on the same port (its
 * runners reconnect to it by themselves). At the end, once the load stopped and everything had
 * time to end (as long as executions keep ending, up to `settleS` seconds; a backlog left by a
 * machine slower than the rate drains meanwhile), the invariants a user relies on are checked:
 *  - no execution stuck (queued, dispatched or running),
 *  - none `lost` (every runner stayed healthy: any `lost` is a false one),
 *  - every one `succeeded`, with exactly the output its command prints (no byte lost or twice),
 *  - each started once, on one runner (from the runners' own logs).
 *
 * The commands are the example project's, with output known in advance: `spew --lines N`
 * (numbered lines, at once) and `slow --steps N --delay D` (a progress bar redrawn for seconds,
 * so executions are running, and sending output, while a replica dies).
 *
 * One engine, two callers: bench/soak.ts (10 minutes, prints the JSON) and
 * test/e2e/soak.test.ts (60 seconds, in the normal test command).
 */
import fs from 'node:fs';
import path from 'node:path';
import { freshDatabase, type FreshDatabase } from './databases.js';
import { exampleProject } from './example.js';
import { runnerEnv, startRunner, type RunnerHandle } from './runnerProcess.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from './serverProcess.js';

export interface SoakOptions {
  /** Seconds of load (and of kills). */
  durationS: number;
  /** A replica is killed and started again every this many seconds. */
  killEveryS: number;
  /** Executions created per second. */
  rate: number;
  replicas?: number;
  /** Runners, spread over the replicas round robin. */
  runners?: number;
  /** DJANGOCOMMAND_MAX_CONCURRENCY of each runner. */
  runnerConcurrency?: number;
  /** After the load: how long everything may take to end, at most, before what is left counts as stuck. */
  settleS?: number;
  /** After the load: no execution ended for this long, and what is left counts as stuck. */
  stallS?: number;
  /** Progress lines (stderr in the bench). */
  log?: (line: string) => void;
  /** Writes each runner's and replica's log there at the end (SOAK_LOG_DIR by default), to investigate a failure. */
  logDir?: string;
  /** Registers a stop-everything function for an interrupted run (the bench's atCleanup); returns its unregister. */
  atCleanup?: (fn: () => Promise<void>) => () => void;
}

export interface SoakResult {
  db: 'postgres';
  replicas: number;
  runners: number;
  duration_s: number;
  kill_every_s: number;
  rate_per_s: number;
  kills: number;
  /** Killed → listening again on the same port, in ms. */
  restart_ms: { p50: number; max: number };
  /** Runners welcomed again after a cut, from their logs (each kill cuts the runners of that replica). */
  runner_reconnects: number;
  /** Executions in the database at the end (including those whose create answer was cut by a kill). */
  executions: number;
  create_requests: number;
  /** Create requests that got no answer or an error (a replica died under them): not an invariant. */
  create_errors: number;
  by_status: Record<string, number>;
  stuck: number;
  lost: number;
  /** Ended otherwise than `succeeded` (lost and stuck included). */
  not_succeeded: number;
  /** Succeeded executions whose stored output differs from what the command printed. */
  output_mismatch: number;
  output_bytes_checked: number;
  /** Started on more than one runner, or more than once. */
  ran_twice: number;
  runners_alive: number;
  settle_s: number;
  /** The most executions not ended yet (queued, dispatched or running) seen during the load, sampled every 10 s: above ~rate × a few seconds, the machine did not keep up with the rate. */
  max_not_ended: number;
  executions_per_s: number;
  /** A few ids and reasons, to start an investigation from. */
  examples: string[];
  ok: boolean;
}

type Spec = { command: 'spew'; argv: string[] } | { command: 'slow'; argv: string[] };

const SPEW_WIDTH = 80;
const BAR_WIDTH = 20;
const NOT_ENDED = ['queued', 'awaiting_approval', 'dispatched', 'running'];
const CREATES_IN_FLIGHT = 50;
const DOWNLOADS_AT_ONCE = 6;

/** A command with output known in advance; about half print at once, half take 0.4–5 s. */
function randomSpec(): Spec {
  if (Math.random() < 0.5) return { command: 'spew', argv: ['--lines', String(1 + Math.floor(Math.random() * 2000)), '--width', String(SPEW_WIDTH)] };
  const steps = 2 + Math.floor(Math.random() * 9);
  const delay = (0.2 + Math.random() * 0.3).toFixed(2);
  return { command: 'slow', argv: ['--steps', String(steps), '--delay', delay] };
}

/** What the example project's `spew` and `slow` print for `argv` (see their management commands). */
export function expectedOutput(command: string, argv: string[]): string | undefined {
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  if (command === 'spew') {
    const lines = opt('--lines') ?? 1000;
    const width = opt('--width') ?? 80;
    if (argv.includes('--bytes') || argv.includes('--stderr-every') || lines >= 1_000_000) return undefined;
    let out = '';
    for (let n = 1; n <= lines; n++) out += String(n).padStart(6, '0') + ' ' + 'x'.repeat(width - 7) + '\n';
    return out;
  }
  if (command === 'slow') {
    const steps = Math.max(0, opt('--steps') ?? 10);
    let out = '';
    for (let step = 0; step <= steps; step++) {
      const fraction = steps ? step / steps : 1;
      const filled = Math.trunc(BAR_WIDTH * fraction);
      out += `\r[${'#'.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}] ${String(Math.trunc(fraction * 100)).padStart(3)}%`;
    }
    return out + '\ndone\n';
  }
  return undefined;
}

interface ExecutionRow {
  id: string;
  command: string;
  argv: string[];
  status: string;
  output_bytes: number;
  runner_id: string | null;
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? (() => undefined);
  const replicaCount = opts.replicas ?? 3;
  const runnerCount = opts.runners ?? replicaCount;
  const settleS = opts.settleS ?? 60;
  const stallS = opts.stallS ?? 30;
  // One replica is down at a time: the others must take the load meanwhile.
  if (replicaCount < 2) throw new Error(`a soak needs at least 2 replicas, not ${replicaCount}`);
  let db: FreshDatabase | undefined;
  const servers: ServerHandle[] = [];
  const runners: RunnerHandle[] = [];
  let exampleFolder: string | undefined;
  let stopped = false;
  /** A replica being killed and started again: waited for before stopping, or it would outlive the soak. */
  let restarting: Promise<void> | undefined;
  const logDir = opts.logDir ?? process.env.SOAK_LOG_DIR;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    await restarting?.catch(() => undefined);
    await Promise.allSettled(runners.map((r) => r.stop()));
    await Promise.allSettled(servers.map((s) => s.stop()));
    if (logDir) {
      fs.mkdirSync(logDir, { recursive: true });
      runners.forEach((r, i) => fs.writeFileSync(path.join(logDir, `runner-${i}.log`), r.logs()));
      servers.forEach((s, i) => fs.writeFileSync(path.join(logDir, `replica-${i}.log`), s.logs()));
      log(`logs written to ${logDir}`);
    }
    for (const r of runners) fs.rmSync(r.stateDir, { recursive: true, force: true });
    if (exampleFolder) fs.rmSync(exampleFolder, { recursive: true, force: true });
    await db?.drop();
  };
  const unregister = opts.atCleanup?.(stopAll);
  try {
    db = await freshDatabase('postgres');
    // The first replica migrates the database; the others find it done.
    servers.push(await startServer(db));
    servers.push(...(await Promise.all(Array.from({ length: replicaCount - 1 }, () => startServer(db!)))));
    log(`${replicaCount} replicas on ${servers.map((s) => s.port).join(', ')}`);
    const { key, token } = await setUpProject(servers[0]);
    const example = exampleProject();
    exampleFolder = path.dirname(example.env.EXAMPLE_DB_PATH);
    for (let i = 0; i < runnerCount; i++) {
      const env = runnerEnv(servers[i % replicaCount].url, key, example.env, { DJANGOCOMMAND_MAX_CONCURRENCY: String(opts.runnerConcurrency ?? 8) });
      runners.push(await startRunner(env));
    }
    log(`${runnerCount} runners connected`);

    const up = new Set(servers.map((_, i) => i));
    const api = async <T>(replica: number, method: string, urlPath: string, body?: unknown): Promise<T> => {
      const res = await fetch(servers[replica].url + urlPath, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${urlPath} answered ${res.status}: ${text.slice(0, 300)}`);
      return JSON.parse(text) as T;
    };
    const anyUp = () => [...up][Math.floor(Math.random() * up.size)];
    /** A read through any live replica, tried again on another if one dies under it. */
    const read = async <T>(urlPath: string): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await api<T>(anyUp(), 'GET', urlPath);
        } catch (err) {
          if (attempt >= 10) throw err;
          await sleep(200);
        }
      }
    };
    // The runners' catalogue is in: let many executions of each command run at once.
    for (const command of ['spew', 'slow']) {
      await waitFor(`${command} in the catalogue`, () => api(0, 'PATCH', `/api/v1/projects/shop/commands/${command}`, { max_concurrency: 1000 }).then(() => true), 30_000, 200);
    }

    // ---- load and kills
    log(`load: ${opts.rate} executions/s for ${opts.durationS} s, a replica killed every ${opts.killEveryS} s`);
    const t0 = Date.now();
    const endAt = t0 + opts.durationS * 1000;
    let createRequests = 0;
    let createErrors = 0;
    const creates = new Set<Promise<void>>();
    const load = (async () => {
      for (let i = 0; ; i++) {
        const due = t0 + (i * 1000) / opts.rate;
        if (due >= endAt || stopped) return;
        if (due > Date.now()) await sleep(due - Date.now());
        // The servers do not keep up: wait for an answer rather than pile up requests.
        while (creates.size >= CREATES_IN_FLIGHT) await Promise.race(creates);
        const spec = randomSpec();
        createRequests++;
        const p = api(anyUp(), 'POST', '/api/v1/projects/shop/executions', spec).then(
          () => undefined,
          () => void createErrors++,
        );
        creates.add(p);
        void p.finally(() => creates.delete(p));
      }
    })();
    const restartMs: number[] = [];
    const kills = (async () => {
      for (let k = 1; t0 + k * opts.killEveryS * 1000 < endAt; k++) {
        await sleep(t0 + k * opts.killEveryS * 1000 - Date.now());
        if (stopped) return;
        const victim = (k - 1) % replicaCount;
        up.delete(victim);
        const started = Date.now();
        restarting = servers[victim].restart('SIGKILL');
        await restarting;
        restarting = undefined;
        restartMs.push(Date.now() - started);
        up.add(victim);
        log(`killed replica ${victim} (port ${servers[victim].port}) at ${((started - t0) / 1000).toFixed(0)} s; listening again after ${Date.now() - started} ms`);
      }
    })();
    /** How many executions have not ended, page by page. */
    const countNotEnded = async () => {
      let n = 0;
      for (let cursor: string | null = null; ; ) {
        const page: { items: unknown[]; next_cursor: string | null } = await read(`/api/v1/executions?project=shop&status=${NOT_ENDED.join(',')}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        n += page.items.length;
        if (!page.next_cursor) return n;
        cursor = page.next_cursor;
      }
    };
    let maxNotEnded = 0;
    const sampling = (async () => {
      while (Date.now() < endAt && !stopped) {
        await sleep(Math.min(10_000, endAt - Date.now()));
        maxNotEnded = Math.max(maxNotEnded, await countNotEnded().catch(() => 0));
      }
    })();
    await Promise.all([load, kills, sampling]);
    await Promise.allSettled([...creates]);
    const loadSeconds = (Date.now() - t0) / 1000;

    // ---- let everything end, bounded
    log(`load over; waiting for every execution to end (while some keep ending, up to ${settleS} s)`);
    const settleStart = Date.now();
    let fewest = Infinity;
    let lastProgress = Date.now();
    let lastLog = Date.now();
    for (;;) {
      const left = await countNotEnded();
      if (left === 0) break;
      if (left < fewest) {
        fewest = left;
        lastProgress = Date.now();
      }
      if (Date.now() - lastLog >= 15_000) {
        lastLog = Date.now();
        log(`${left} executions not ended yet`);
      }
      if (Date.now() - lastProgress > stallS * 1000 || Date.now() - settleStart > settleS * 1000) break;
      await sleep(1000);
    }
    const settledIn = (Date.now() - settleStart) / 1000;

    // ---- check
    const all: ExecutionRow[] = [];
    for (let cursor: string | null = null; ; ) {
      const page: { items: ExecutionRow[]; next_cursor: string | null } = await read(`/api/v1/executions?project=shop&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      all.push(...page.items);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    const byStatus: Record<string, number> = {};
    for (const e of all) byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
    const examples: string[] = [];
    const note = (line: string) => void (examples.length < 12 && examples.push(line));
    for (const e of all) if (e.status !== 'succeeded') note(`${e.id} ${e.command} ${e.argv.join(' ')}: ${e.status} (runner ${e.runner_id ?? 'none'})`);

    let mismatches = 0;
    let bytesChecked = 0;
    const succeeded = all.filter((e) => e.status === 'succeeded');
    let next = 0;
    const checkOne = async () => {
      while (next < succeeded.length) {
        const e = succeeded[next++];
        const want = expectedOutput(e.command, e.argv);
        if (want === undefined) throw new Error(`no expected output for ${e.command} ${e.argv.join(' ')}`);
        const res = await fetch(`${servers[anyUp()].url}/api/v1/executions/${e.id}/output`, { headers: { authorization: `Bearer ${token}` } });
        const got = await res.text();
        bytesChecked += Buffer.byteLength(got);
        if (!res.ok || got !== want || e.output_bytes !== Buffer.byteLength(want)) {
          mismatches++;
          note(`${e.id} ${e.command} ${e.argv.join(' ')}: output ${Buffer.byteLength(got)} bytes (stored ${e.output_bytes}), expected ${Buffer.byteLength(want)}${got.length === want.length ? ', same length, different bytes' : ''}`);
        }
      }
    };
    await Promise.all(Array.from({ length: DOWNLOADS_AT_ONCE }, checkOne));

    // Each execution started once, on one runner: every start is in its runner's log.
    const starts = new Map<string, number>();
    for (const r of runners) for (const m of r.logs().matchAll(/execution ([0-9a-f-]{36}): \S+ .*started \(/g)) starts.set(m[1], (starts.get(m[1]) ?? 0) + 1);
    const ranTwice = [...starts].filter(([, n]) => n > 1);
    for (const [id, n] of ranTwice) note(`${id}: started ${n} times`);
    const reconnects = runners.reduce((n, r) => n + Math.max(0, (r.logs().match(/connected to .* as runner/g)?.length ?? 0) - 1), 0);
    const runnersAlive = runners.filter((r) => r.process.exitCode === null && r.process.signalCode === null).length;

    const stuck = all.filter((e) => NOT_ENDED.includes(e.status)).length;
    const lost = byStatus.lost ?? 0;
    const sortedRestarts = [...restartMs].sort((a, b) => a - b);
    const result: SoakResult = {
      db: 'postgres',
      replicas: replicaCount,
      runners: runnerCount,
      duration_s: Math.round(loadSeconds),
      kill_every_s: opts.killEveryS,
      rate_per_s: opts.rate,
      kills: restartMs.length,
      restart_ms: { p50: sortedRestarts[Math.floor((sortedRestarts.length - 1) / 2)] ?? 0, max: sortedRestarts[sortedRestarts.length - 1] ?? 0 },
      runner_reconnects: reconnects,
      executions: all.length,
      create_requests: createRequests,
      create_errors: createErrors,
      by_status: byStatus,
      stuck,
      lost,
      not_succeeded: all.length - succeeded.length,
      output_mismatch: mismatches,
      output_bytes_checked: bytesChecked,
      ran_twice: ranTwice.length,
      runners_alive: runnersAlive,
      settle_s: Math.round(settledIn * 10) / 10,
      max_not_ended: maxNotEnded,
      executions_per_s: Math.round((succeeded.length / loadSeconds) * 100) / 100,
      examples,
      ok: false,
    };
    result.ok = soakFailures(result).length === 0;
    return result;
  } finally {
    unregister?.();
    await stopAll();
  }
}

/** The invariants, in words; empty when the soak passed. */
export function soakFailures(r: SoakResult): string[] {
  const failures: string[] = [];
  if (r.executions === 0) failures.push('no execution was created');
  if (r.stuck > 0) failures.push(`${r.stuck} executions stuck (not ended ${r.settle_s} s after the load)`);
  if (r.lost > 0) failures.push(`${r.lost} executions lost while every runner was healthy`);
  if (r.not_succeeded > 0) failures.push(`${r.not_succeeded} executions did not succeed: ${JSON.stringify(r.by_status)}`);
  if (r.output_mismatch > 0) failures.push(`${r.output_mismatch} outputs differ from what the command printed`);
  if (r.ran_twice > 0) failures.push(`${r.ran_twice} executions started more than once`);
  if (r.runners_alive !== r.runners) failures.push(`${r.runners - r.runners_alive} runners died`);
  return failures;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
