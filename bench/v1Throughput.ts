/**
 * Executions created and completed per second through runner protocol v1.
 *
 * A real server process on a fresh database (SQLite, or PostgreSQL with --db postgres). Creator
 * loops POST executions through the REST API with an admin token, as the CLI does; K fake
 * runners (one loop and one runner key each) speak protocol v1 with the V1Client, the way the
 * Python runner does: pending/, start/, one small output chunk, complete/. No Django process is started, so the figure is
 * the server's own cost per execution (HTTP, authentication, replay protection, state
 * changes, audit log), not Python's start-up time.
 *
 *   node dist/bench/v1Throughput.js [--db postgres] [--count 2000] [--runners 8] [--creators 2] [--backlog 50]
 */
import { V1Client, V1HttpError } from '../test/support/v1Client.js';
import type { PendingExecution } from '../src/shared/protocolV1.js';
import {
  PROJECT,
  check,
  elapsedMs,
  now,
  parseOptions,
  percentile,
  positiveInt,
  processMemory,
  progress,
  raiseConcurrency,
  round,
  runBenchmark,
  serverPid,
  startBenchServer,
  type BenchServer,
} from './common.js';

const COMMAND = 'check';
/** What `manage.py check` prints; the one output chunk each execution sends. */
const OUTPUT_LINE = 'System check identified no issues (0 silenced).\n';
/** A runner loop that found nothing to start waits this long before polling again. */
const IDLE_POLL_MS = 50;
/** The command's limit is raised to this; the backlog must stay below it or creates get 409. */
const MAX_CONCURRENCY = 1000;

const options = parseOptions({
  count: { default: '2000', help: 'executions to create and complete' },
  runners: { default: '8', help: 'concurrent fake runner loops' },
  creators: { default: '2', help: 'concurrent creator loops' },
  backlog: { default: '50', help: 'at most this many executions created but not yet completed' },
});
const count = positiveInt('count', options.count);
const runners = positiveInt('runners', options.runners);
const creators = positiveInt('creators', options.creators);
const backlog = positiveInt('backlog', options.backlog);
if (backlog >= MAX_CONCURRENCY) throw new Error(`--backlog must be below ${MAX_CONCURRENCY} (the command's concurrency limit)`);

/**
 * The shared progress of creators and runners. Creators claim a number before creating, and
 * wait while the backlog (claimed but not completed) is full: an unbounded queue would measure
 * how the server copes with a growing queue, not its steady throughput. The backlog is kept
 * small on purpose: creating costs more the more executions of the command are active (see
 * bench/README.md), so a long queue would slow every create down.
 */
class Pipeline {
  claimed = 0;
  completed = 0;
  finishedAt: bigint | undefined;
  private aborted = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly total: number,
    private readonly maxBacklog: number,
  ) {}

  get finished(): boolean {
    return this.aborted || this.completed >= this.total;
  }

  /** Claims the next execution to create; false when all are claimed. */
  async claim(): Promise<boolean> {
    while (!this.aborted && this.claimed - this.completed >= this.maxBacklog) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.aborted || this.claimed >= this.total) return false;
    this.claimed++;
    return true;
  }

  complete(): void {
    this.completed++;
    if (this.finished) this.finishedAt ??= now();
    this.wakeCreators();
  }

  /** One loop failed: the others stop at their next step instead of waiting for ever. */
  abort(): void {
    this.aborted = true;
    this.wakeCreators();
  }

  private wakeCreators(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

interface RunnerStats {
  polls: number;
  emptyPolls: number;
  /** start/ answered 409: another loop started that execution first. */
  startConflicts: number;
}

async function creatorLoop(bench: BenchServer, pipeline: Pipeline, latenciesMs: number[]): Promise<void> {
  while (await pipeline.claim()) {
    const started = now();
    await bench.api('POST', `/api/v1/projects/${PROJECT}/executions`, { command: COMMAND });
    latenciesMs.push(elapsedMs(started));
  }
}

async function runnerLoop(client: V1Client, index: number, pipeline: Pipeline, stats: RunnerStats): Promise<void> {
  while (!pipeline.finished) {
    stats.polls++;
    const id = await startOne(client, rotate(await client.pending(), index), stats);
    if (id === undefined) {
      stats.emptyPolls++;
      await new Promise((resolve) => setTimeout(resolve, IDLE_POLL_MS));
      continue;
    }
    await client.output(id, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: Date.now() / 1000, content: OUTPUT_LINE }] });
    await client.complete(id, { exit_code: 0, status: 'success' });
    pipeline.complete();
  }
}

/**
 * Every runner of a project is offered the same oldest executions. Each loop starts looking at
 * a different place in the list, so the loops mostly take different ones instead of all racing
 * for the first; the races that remain are counted, not hidden.
 */
function rotate(offered: PendingExecution[], index: number): PendingExecution[] {
  if (offered.length === 0) return offered;
  const at = index % offered.length;
  return [...offered.slice(at), ...offered.slice(0, at)];
}

/** Starts the first offered execution no other loop got first; undefined if none. */
async function startOne(client: V1Client, offered: PendingExecution[], stats: RunnerStats): Promise<string | undefined> {
  for (const e of offered) {
    try {
      await client.start(e.id);
      return e.id;
    } catch (err) {
      if (err instanceof V1HttpError && err.status === 409) {
        stats.startConflicts++;
        continue;
      }
      throw err;
    }
  }
  return undefined;
}

/**
 * One v1 client per runner loop, each with its own runner key. The server tells runners apart
 * by key and address, and every loop here calls from 127.0.0.1: loops sharing a key would be
 * one runner to the server, which then takes a second loop's start/ of an execution the first
 * one started as a retry and answers 200, and both would run it (see bench/README.md).
 */
async function runnerClients(bench: BenchServer, n: number): Promise<V1Client[]> {
  const clients = [bench.v1];
  for (let i = 1; i < n; i++) {
    const { key } = await bench.api<{ key: string }>('POST', `/api/v1/projects/${PROJECT}/keys`, { name: `bench runner ${i + 1}` });
    clients.push(new V1Client({ serverUrl: bench.server.url, apiKey: key, maxRetries: 0 }));
  }
  return clients;
}

/** Every execution of the project, page by page, must have succeeded with its one output line. */
async function verify(bench: BenchServer, expected: number): Promise<void> {
  const statuses = new Map<string, number>();
  const outputSizes = new Map<number, number>();
  let seen = 0;
  let cursor: string | null = null;
  do {
    const page: { items: Array<{ status: string; output_bytes: number }>; next_cursor: string | null } = await bench.api(
      'GET',
      `/api/v1/executions?project=${PROJECT}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    for (const e of page.items) {
      seen++;
      statuses.set(e.status, (statuses.get(e.status) ?? 0) + 1);
      outputSizes.set(e.output_bytes, (outputSizes.get(e.output_bytes) ?? 0) + 1);
    }
    cursor = page.next_cursor;
  } while (cursor);
  const found = `statuses ${JSON.stringify(Object.fromEntries(statuses))}, output sizes ${JSON.stringify(Object.fromEntries(outputSizes))}`;
  check(seen === expected && statuses.get('succeeded') === expected, `expected ${expected} succeeded executions; found ${found}`);
  check(outputSizes.get(Buffer.byteLength(OUTPUT_LINE)) === expected, `expected each execution to hold its output line; found ${found}`);
}

await runBenchmark({
  maxSeconds: 300,
  async main() {
    progress(`v1 throughput on ${options.db}: ${count} executions, ${runners} runner loops, ${creators} creator loop(s), backlog ${backlog}`);
    // runBenchmark stops the server and drops its database when this returns or fails.
    const bench = await startBenchServer(options.db, [COMMAND]);
    await raiseConcurrency(bench, COMMAND, MAX_CONCURRENCY);

    const pipeline = new Pipeline(count, backlog);
    const latenciesMs: number[] = [];
    const stats: RunnerStats = { polls: 0, emptyPolls: 0, startConflicts: 0 };
    const clients = await runnerClients(bench, runners);
    const started = now();
    const loops = [
      ...Array.from({ length: creators }, () => creatorLoop(bench, pipeline, latenciesMs)),
      ...clients.map((client, i) => runnerLoop(client, i, pipeline, stats)),
    ];
    const stopOthersOnFailure = (loop: Promise<void>) =>
      loop.catch((err) => {
        pipeline.abort();
        throw err;
      });
    await Promise.all(loops.map(stopOthersOnFailure));
    const seconds = Number(pipeline.finishedAt! - started) / 1e9;
    const memory = processMemory(serverPid(bench));

    await verify(bench, count);
    latenciesMs.sort((a, b) => a - b);
    return {
      benchmark: 'v1_throughput',
      db: options.db,
      executions: count,
      runners,
      creators,
      seconds: round(seconds, 3),
      executions_per_second: round(count / seconds, 1),
      create_latency_ms: { p50: round(percentile(latenciesMs, 50)), p99: round(percentile(latenciesMs, 99)) },
      server_peak_rss_mb: memory.peakRssMb,
      pending_polls: stats.polls,
      empty_polls: stats.emptyPolls,
      start_conflicts: stats.startConflicts,
    };
  },
});
