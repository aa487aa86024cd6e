/**
 * A stand-in for the published Python runner (protocol v1), for tests and benchmarks: it
 * discovers a real Django project's commands, heartbeats, syncs, polls for work, runs
 * `manage.py <command>` as a real process and streams its output, the way `runner.py` and
 * `executor.py` of `djangocommand-runner` do.
 *
 * Life of the runner:
 *   start(): discover commands → heartbeat loop (every heartbeatIntervalMs; syncs when the
 *   server says commands_in_sync=false) + poll loop (every pollIntervalMs, only while the key is
 *   known good and the runner is not suspended) → stop() / kill().
 *
 * Auth state (copied from the Python runner): 'unknown' until a heartbeat succeeds, 'valid'
 * after, 'backoff' after any 401/403. In backoff nothing is polled, no output or completion is
 * sent (it is dropped, a v1 limit), and the next heartbeat waits for the backoff schedule.
 *
 * Life of one execution:
 *   refused by policy → start/, one stderr chunk explaining why, complete/(-1, failed).
 *   allowed → start/ (on failure: abandoned) → [metadata-only: two placeholder chunks] →
 *   spawn manage.py in its own process group → output chunks every flushIntervalMs while
 *   cancel-status/ is polled and the timeout runs → final flush → complete/.
 *
 * Deliberate differences from the Python runner are marked "Unlike Python".
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type {
  CompleteRequest,
  HeartbeatResponse,
  OutputRequest,
  OutputSegment,
  PendingExecution,
  SyncedCommand,
  V1CompletionStatus,
} from '../../src/shared/protocolV1.js';
import { commandsHash } from '../../src/domain/commandsHash.js';
import { splitShellWords } from '../../src/domain/shellWords.js';
import { V1Client, V1HttpError, abortableSleep } from './v1Client.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export type V1RunnerLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type V1RunnerLog = (level: V1RunnerLogLevel, message: string) => void;

export interface V1RunnerOptions {
  serverUrl: string;
  apiKey: string;
  /** Folder holding manage.py. */
  projectDir: string;
  python?: string;
  /** DJANGO_SETTINGS_MODULE for discovery (manage.py sets its own). env.DJANGO_SETTINGS_MODULE wins. */
  settingsModule?: string;
  /** Extra environment for manage.py and discovery (e.g. EXAMPLE_DB_PATH). */
  env?: Record<string, string>;
  heartbeatIntervalMs?: number;
  pollIntervalMs?: number;
  cancelPollIntervalMs?: number;
  flushIntervalMs?: number;
  maxConcurrent?: number;
  /** DJANGOCOMMAND_ALLOWED_COMMANDS. Omitted: every command may run (blocklist mode, empty list). */
  allowedCommands?: readonly string[];
  /** DJANGOCOMMAND_METADATAONLY_COMMANDS. */
  metadataOnlyCommands?: readonly string[];
  /** Skip discovery and report these (still filtered by allowedCommands). */
  commands?: readonly SyncedCommand[];
  /** Time between SIGTERM and SIGKILL on cancel and timeout. */
  killGraceMs?: number;
  /** The HTTP client's backoff factor (1000 = Python's 1 s, 2 s, 4 s between retries). */
  retryBackoffMs?: number;
  maxRetries?: number;
  requestTimeoutMs?: number;
  /** Waits after consecutive 401/403, the last one repeating. Python: 1s,2s,5s,10s,30s,2min,5min. */
  authBackoffMs?: readonly number[];
  /** Buffered output per stream above which it is flushed early and the child is paused. */
  maxBufferedBytes?: number;
  /**
   * Translate "\r\n" and a lone "\r" to "\n", as Python's text-mode pipes do (default true).
   * False sends the bytes as the command wrote them.
   */
  universalNewlines?: boolean;
  runnerVersion?: string;
  /** Reported in heartbeats when discovery is skipped (discovery reports the real ones). */
  pythonVersion?: string;
  djangoVersion?: string;
  /** Called for every execution event; a throwing listener is logged, never fatal. */
  onEvent?: (event: V1RunnerEvent) => void;
  log?: V1RunnerLog;
}

export type V1RunnerEvent =
  | { type: 'started'; id: string; command: string; args: string; pid: number | undefined }
  | { type: 'rejected'; id: string; command: string; reason: string }
  | {
      type: 'completed';
      id: string;
      command: string;
      exitCode: number;
      status: V1CompletionStatus;
      /** False when complete/ could not be delivered (error, or key in backoff). */
      reported: boolean;
    }
  /** start/ failed, or the runner was killed: the server hears nothing more about it. */
  | { type: 'abandoned'; id: string; command: string; reason: string };

export interface V1RunnerStats {
  heartbeats: number;
  heartbeatFailures: number;
  syncs: number;
  polls: number;
  cancelPolls: number;
  started: number;
  completed: number;
  rejected: number;
  chunksSent: number;
  /** Chunks given up on: send failed, key in backoff, or runner killed. Their numbers are skipped. */
  chunksDropped: number;
  /** UTF-8 bytes of segment content delivered (not HTTP bytes). */
  bytesSent: number;
  /** The content bytes of the largest chunk delivered. */
  largestChunkBytes: number;
}

export type V1AuthState = 'unknown' | 'valid' | 'backoff';

export interface DiscoveredProject {
  pythonVersion: string;
  djangoVersion: string;
  commands: SyncedCommand[];
}

// ---------------------------------------------------------------------------------------------
// Constants copied from the Python runner
// ---------------------------------------------------------------------------------------------

const PYTHON_AUTH_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 120_000, 300_000];
/** The runner never offers its own command (it would recurse). */
const EXCLUDED_COMMANDS = new Set(['djangocommand']);
const NOT_ALLOWLISTED = 'not in DJANGOCOMMAND_ALLOWED_COMMANDS allowlist';
const METADATA_ONLY_MESSAGE = '(metadata-only mode, no output captured)\n';
/** Python joins its reader threads for 2 s after the process exits; a grandchild may hold the pipes. */
const STREAM_CLOSE_GRACE_MS = 2_000;
const DEFAULT_TIMEOUT_SECONDS = 300;

function rejectionMessage(command: string, reason: string): string {
  return (
    `Command '${command}' rejected by runner security policy.\n` +
    `Reason: ${reason}\n` +
    `\n` +
    `To allow this command, add it to DJANGOCOMMAND_ALLOWED_COMMANDS\n` +
    `in your Django settings.\n`
  );
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

type ResolvedOptions = Required<
  Omit<V1RunnerOptions, 'allowedCommands' | 'commands' | 'onEvent' | 'env' | 'pythonVersion' | 'djangoVersion'>
> &
  Pick<V1RunnerOptions, 'allowedCommands' | 'commands' | 'onEvent' | 'pythonVersion' | 'djangoVersion'> & {
    env: Record<string, string>;
  };

interface ExecutionFlags {
  cancelled: boolean;
  timedOut: boolean;
}

export class V1Runner {
  readonly client: V1Client;
  private readonly opts: ResolvedOptions;
  private readonly allowed?: ReadonlySet<string>;
  private readonly metadataOnly: ReadonlySet<string>;

  private commandList: SyncedCommand[] = [];
  private hash = '';
  private pythonVersion = 'unknown';
  private djangoVersion = 'unknown';

  private phase: 'new' | 'running' | 'stopping' = 'new';
  /** Set by kill(): the runner "died", so nothing more is said to the server. */
  private vanished = false;
  private auth: V1AuthState = 'unknown';
  private authFailures = 0;
  private backoffUntil = 0;
  private isSuspended = false;

  /** Interrupts the loops' sleeps on stop(). */
  private readonly loopAbort = new AbortController();
  /** Aborts every request in flight on kill(). */
  private readonly vanishAbort = new AbortController();
  private loops: Promise<void>[] = [];
  private stopped?: Promise<void>;
  private firstAttempt = deferred<void>();
  private readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private everReady = false;

  private readonly runningIds = new Set<string>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly groups = new Map<string, ProcessGroup>();
  private readonly emitter = new EventEmitter();
  private readonly history: V1RunnerEvent[] = [];

  readonly stats: V1RunnerStats = {
    heartbeats: 0,
    heartbeatFailures: 0,
    syncs: 0,
    polls: 0,
    cancelPolls: 0,
    started: 0,
    completed: 0,
    rejected: 0,
    chunksSent: 0,
    largestChunkBytes: 0,
    chunksDropped: 0,
    bytesSent: 0,
  };

  constructor(options: V1RunnerOptions) {
    this.opts = resolveOptions(options);
    this.allowed = options.allowedCommands ? new Set(options.allowedCommands) : undefined;
    this.metadataOnly = new Set(options.metadataOnlyCommands ?? []);
    this.client = new V1Client({
      serverUrl: options.serverUrl,
      apiKey: options.apiKey,
      maxRetries: this.opts.maxRetries,
      timeoutMs: this.opts.requestTimeoutMs,
      backoffFactorMs: this.opts.retryBackoffMs,
      signal: this.vanishAbort.signal,
    });
    this.emitter.setMaxListeners(0);
  }

  // ---- public API ----

  /** Execution ids being handled right now (including ones being rejected). */
  get running(): ReadonlySet<string> {
    return this.runningIds;
  }

  get commandsHash(): string {
    return this.hash;
  }

  get commands(): readonly SyncedCommand[] {
    return this.commandList;
  }

  get authState(): V1AuthState {
    return this.auth;
  }

  get suspended(): boolean {
    return this.isSuspended;
  }

  /** Every event so far, oldest first. */
  get events(): readonly V1RunnerEvent[] {
    return this.history;
  }

  /**
   * Discovers commands, then starts the heartbeat and poll loops. Resolves once a heartbeat
   * (and the sync it asked for) succeeded, unless `waitForHeartbeat: false` (e.g. to watch a
   * runner with a bad key back off). Rejects if discovery fails or stop() comes first.
   */
  async start(options: { waitForHeartbeat?: boolean } = {}): Promise<void> {
    if (this.phase !== 'new') throw new Error('V1Runner.start() can be called only once.');
    this.phase = 'running';
    await this.loadCommands();
    if (!this.isRunning()) throw new Error('V1Runner was stopped while it was starting.');
    const ready = options.waitForHeartbeat === false ? undefined : this.whenReady();
    this.loops = [this.heartbeatLoop(), this.pollLoop()];
    await ready;
  }

  /**
   * Stops heartbeats and polling, then waits for running executions to finish and report.
   * With `kill: true` the runner dies instead: process groups get SIGKILL, requests in flight
   * are aborted and nothing more (no output, no complete/) reaches the server.
   */
  async stop(options: { kill?: boolean } = {}): Promise<void> {
    if (this.phase === 'new') this.firstAttempt.resolve();
    this.phase = 'stopping';
    this.loopAbort.abort();
    if (options.kill) this.vanish();
    for (const waiter of this.readyWaiters.splice(0)) {
      waiter.reject(new Error('V1Runner stopped before a heartbeat succeeded.'));
    }
    this.stopped ??= this.drain();
    await this.stopped;
  }

  /** The runner vanishes mid-work, like a Python runner whose machine lost power. */
  kill(): Promise<void> {
    return this.stop({ kill: true });
  }

  /**
   * Replaces the command list (as if the code had been deployed again): the next heartbeat
   * carries the new hash, and the server asks for a sync.
   */
  setCommands(commands: readonly SyncedCommand[]): void {
    this.commandList = this.filterAllowed(commands);
    this.hash = commandsHash(this.commandList);
  }

  /** Resolves with the first event (past or future) matching the predicate. */
  waitForEvent(predicate: (event: V1RunnerEvent) => boolean, timeoutMs = 30_000): Promise<V1RunnerEvent> {
    const past = this.history.find(predicate);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const onEvent = (event: V1RunnerEvent) => {
        if (!predicate(event)) return;
        cleanup();
        resolve(event);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`V1Runner.waitForEvent: nothing matched within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.emitter.off('event', onEvent);
      };
      this.emitter.on('event', onEvent);
    });
  }

  /** Shortcut: the 'completed' (or 'rejected'/'abandoned') event of one execution. */
  waitForEnd(id: string, timeoutMs = 30_000): Promise<V1RunnerEvent> {
    return this.waitForEvent(
      (e) => e.id === id && (e.type === 'completed' || e.type === 'rejected' || e.type === 'abandoned'),
      timeoutMs,
    );
  }

  // ---- commands ----

  private async loadCommands(): Promise<void> {
    if (this.opts.commands) {
      this.pythonVersion = this.opts.pythonVersion ?? 'unknown';
      this.djangoVersion = this.opts.djangoVersion ?? 'unknown';
      this.setCommands(this.opts.commands);
      return;
    }
    const project = await discoverCommands({
      python: this.opts.python,
      projectDir: this.opts.projectDir,
      settingsModule: this.opts.settingsModule,
      env: this.opts.env,
    });
    this.pythonVersion = this.opts.pythonVersion ?? project.pythonVersion;
    this.djangoVersion = this.opts.djangoVersion ?? project.djangoVersion;
    this.setCommands(project.commands);
    this.log('info', `discovered ${this.commandList.length} commands (${this.hash.slice(0, 20)}...)`);
  }

  /** Allowlist mode syncs only allowed commands; the runner's own command never. */
  private filterAllowed(commands: readonly SyncedCommand[]): SyncedCommand[] {
    return commands
      .filter((c) => !EXCLUDED_COMMANDS.has(c.name) && (!this.allowed || this.allowed.has(c.name)))
      .map((c) => ({ name: c.name, app_label: c.app_label, help_text: c.help_text }));
  }

  /** The reason the policy refuses a command, or null when it may run. */
  private refusal(command: string): string | null {
    if (this.allowed && !this.allowed.has(command)) return NOT_ALLOWLISTED;
    return null;
  }

  // ---- heartbeat and sync ----

  private async heartbeatLoop(): Promise<void> {
    while (this.phase === 'running') {
      const attemptAt = Date.now();
      await this.guarded('heartbeat', () => this.heartbeatOnce());
      this.firstAttempt.resolve();
      // Like Python's main loop: the next heartbeat waits for the interval AND any auth backoff.
      await this.sleepUntil(() => Math.max(attemptAt + this.opts.heartbeatIntervalMs, this.backoffUntil));
    }
  }

  private async heartbeatOnce(): Promise<void> {
    let response: HeartbeatResponse;
    try {
      response = await this.client.heartbeat({
        runner_version: this.opts.runnerVersion,
        python_version: this.pythonVersion,
        django_version: this.djangoVersion,
        commands_hash: this.hash,
      });
    } catch (err) {
      this.stats.heartbeatFailures++;
      this.noteFailure('heartbeat failed', err);
      return;
    }
    this.stats.heartbeats++;
    this.markAuthValid();
    this.updateSuspension(response);
    // Python: `if not response.get('commands_in_sync', True)`.
    const inSync = response.commands_in_sync ?? true;
    const synced = inSync ? true : await this.syncCommands();
    if (synced) this.markReady();
  }

  private async syncCommands(): Promise<boolean> {
    try {
      const response = await this.client.syncCommands(this.commandList);
      this.stats.syncs++;
      const serverHash = response.commands_hash ?? '';
      if (serverHash && serverHash !== this.hash) {
        // Python adopts the server's hash so that it does not sync on every heartbeat.
        this.log('warn', `hash mismatch after sync: local ${this.hash.slice(0, 20)}, server ${serverHash.slice(0, 20)}`);
        this.hash = serverHash;
      }
      return true;
    } catch (err) {
      this.noteFailure('sync failed', err);
      return false;
    }
  }

  private updateSuspension(response: HeartbeatResponse): void {
    const suspended = response.runner_state === 'suspended';
    if (suspended !== this.isSuspended) {
      this.log(suspended ? 'warn' : 'info', suspended
        ? `runner suspended: ${response.suspension_reason ?? 'unknown reason'}`
        : 'runner suspension lifted');
    }
    this.isSuspended = suspended;
  }

  // ---- auth state ----

  private markAuthValid(): void {
    this.auth = 'valid';
    this.authFailures = 0;
    this.backoffUntil = 0;
  }

  /** Any 401/403 stops work until a heartbeat succeeds again, after the backoff schedule. */
  private enterAuthBackoff(err: V1HttpError): void {
    this.auth = 'backoff';
    this.authFailures++;
    const schedule = this.opts.authBackoffMs;
    const wait = schedule[Math.min(this.authFailures - 1, schedule.length - 1)] ?? 0;
    this.backoffUntil = Date.now() + wait;
    if (this.authFailures === 1) this.log('warn', `authentication failed: ${err.message}; retrying in ${wait} ms`);
  }

  /** Errors never escape a loop: auth errors start the backoff, the rest are logged. */
  private noteFailure(context: string, err: unknown): void {
    if (this.vanished) return;
    if (err instanceof V1HttpError && err.isAuthError) {
      this.enterAuthBackoff(err);
      return;
    }
    this.log('error', `${context}: ${describe(err)}`);
  }

  private canTalk(): boolean {
    return this.auth === 'valid' && !this.vanished;
  }

  // ---- polling for work ----

  private async pollLoop(): Promise<void> {
    // Python polls right after its first heartbeat, not one interval later.
    await this.firstAttempt.promise;
    while (this.phase === 'running') {
      if (this.canPoll()) await this.guarded('poll', () => this.pollOnce());
      await abortableSleep(this.opts.pollIntervalMs, this.loopAbort.signal);
    }
  }

  private isRunning(): boolean {
    return this.phase === 'running';
  }

  private canPoll(): boolean {
    return this.isRunning() && this.canTalk() && !this.isSuspended && Date.now() >= this.backoffUntil;
  }

  private async pollOnce(): Promise<void> {
    let pending: PendingExecution[];
    try {
      pending = await this.client.pending();
      this.stats.polls++;
    } catch (err) {
      this.noteFailure('poll failed', err);
      return;
    }
    for (const item of pending) {
      if (!this.canPoll()) break;
      if (this.runningIds.has(item.id)) continue;
      if (this.runningIds.size >= this.opts.maxConcurrent) break;
      this.launch(normalizePending(item));
    }
  }

  private launch(item: PendingExecution): void {
    this.runningIds.add(item.id);
    const task = this.runExecution(item)
      .catch((err) => this.noteFailure(`execution ${item.id} failed`, err))
      .finally(() => {
        this.runningIds.delete(item.id);
        this.tasks.delete(task);
      });
    this.tasks.add(task);
  }

  // ---- one execution ----

  private async runExecution(item: PendingExecution): Promise<void> {
    const reason = this.refusal(item.command);
    if (reason) return this.rejectExecution(item, reason);

    try {
      await this.client.start(item.id);
      this.stats.started++;
    } catch (err) {
      // Python gives up on the execution; the server will see it never started.
      this.noteFailure(`cannot start ${item.id}`, err);
      this.emit({ type: 'abandoned', id: item.id, command: item.command, reason: `start failed: ${describe(err)}` });
      return;
    }

    const metadataOnly = item.use_metadata_only_mode || this.metadataOnly.has(item.command);
    if (metadataOnly) await this.sendMetadataOnlyOutput(item.id);
    // A runner killed meanwhile must not start a process that nothing would ever kill.
    if (this.vanished) {
      this.emit({ type: 'abandoned', id: item.id, command: item.command, reason: 'runner killed' });
      return;
    }

    const result = await this.runProcess(item, metadataOnly);
    if (this.vanished) {
      this.emit({ type: 'abandoned', id: item.id, command: item.command, reason: 'runner killed' });
      return;
    }
    const reported = await this.reportCompletion(item.id, result);
    this.stats.completed++;
    this.emit({ type: 'completed', id: item.id, command: item.command, exitCode: result.exit_code, status: result.status, reported });
  }

  /** Python's _reject_execution: make the refusal visible in the dashboard, then fail it. */
  private async rejectExecution(item: PendingExecution, reason: string): Promise<void> {
    this.log('warn', `execution ${item.id}: command '${item.command}' rejected - ${reason}`);
    try {
      await this.client.start(item.id);
    } catch (err) {
      this.noteFailure(`cannot start rejected ${item.id}`, err);
      return;
    }
    const segments = [{ timestamp: nowSeconds(), content: rejectionMessage(item.command, reason) }];
    await this.sendChunk(item.id, { chunk_number: 1, is_stderr: true, segments }, false);
    try {
      await this.client.complete(item.id, { exit_code: -1, status: 'failed' });
    } catch (err) {
      this.noteFailure(`cannot complete rejected ${item.id}`, err);
    }
    this.stats.rejected++;
    this.emit({ type: 'rejected', id: item.id, command: item.command, reason });
  }

  /** Chunk 1 on stdout and chunk 2 on stderr; Python stops at the first failure. */
  private async sendMetadataOnlyOutput(id: string): Promise<void> {
    for (const [chunk_number, is_stderr] of [[1, false], [2, true]] as const) {
      const segments = [{ timestamp: nowSeconds(), content: METADATA_ONLY_MESSAGE }];
      if (!(await this.sendChunk(id, { chunk_number, is_stderr, segments }, false))) return;
    }
  }

  /**
   * Spawns manage.py and supervises it until it exits and its output is flushed.
   * Resolves with what complete/ should say.
   */
  private async runProcess(item: PendingExecution, metadataOnly: boolean): Promise<CompleteRequest> {
    let argv: string[];
    try {
      argv = splitShellWords(item.args);
    } catch (err) {
      // Unlike Python (whose shlex error escapes and leaves the execution running forever),
      // report it as a failed execution.
      this.log('error', `execution ${item.id}: cannot split arguments: ${describe(err)}`);
      return { exit_code: -1, status: 'failed' };
    }

    // Metadata-only output is never captured, so it does not need pipes at all.
    const outputMode = metadataOnly ? 'ignore' : 'pipe';
    const child = spawn(this.opts.python, ['manage.py', item.command, ...argv], {
      cwd: this.opts.projectDir,
      env: { ...process.env, ...this.opts.env, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', outputMode, outputMode],
      // Its own process group, so cancel and timeout reach manage.py's children too.
      detached: true,
    });
    const group = new ProcessGroup(child, STREAM_CLOSE_GRACE_MS);
    this.groups.set(item.id, group);

    const output = metadataOnly ? undefined : this.captureOutput(item.id, child);
    const flags: ExecutionFlags = { cancelled: false, timedOut: false };
    const stopCancelPoll = new AbortController();
    const cancelPoll = this.pollCancel(item.id, group, flags, stopCancelPoll.signal);
    const timeoutTimer = this.armTimeout(item, group, flags);
    if (child.pid !== undefined) {
      this.emit({ type: 'started', id: item.id, command: item.command, args: item.args, pid: child.pid });
    }

    const exit = await group.exited;
    clearTimeout(timeoutTimer);
    stopCancelPoll.abort();
    await cancelPoll;
    await output?.finish();
    this.groups.delete(item.id);
    if (exit.error) this.log('error', `execution ${item.id}: cannot run manage.py: ${describe(exit.error)}`);
    return completionOf(exit, flags);
  }

  private captureOutput(id: string, child: ChildProcess): OutputStreamer {
    const streamer = new OutputStreamer(
      (chunk) => this.sendChunk(id, chunk, true).then(() => undefined),
      this.opts.flushIntervalMs,
      this.opts.maxBufferedBytes,
      this.opts.universalNewlines,
    );
    streamer.attach(child.stdout!, false);
    streamer.attach(child.stderr!, true);
    streamer.start();
    return streamer;
  }

  /** Timeout: SIGTERM, grace, SIGKILL, then status timed_out (Python's subprocess wait timeout). */
  private armTimeout(item: PendingExecution, group: ProcessGroup, flags: ExecutionFlags): NodeJS.Timeout | undefined {
    // Unlike Python, a timeout of 0 or less means "none" rather than "kill at once".
    if (!(item.timeout > 0)) return undefined;
    return setTimeout(() => {
      flags.timedOut = true;
      this.log('warn', `execution ${item.id} timed out after ${item.timeout}s`);
      group.terminate(this.opts.killGraceMs);
    }, item.timeout * 1000);
  }

  /** Polls cancel-status/ until the process ends or a cancel arrives (Python then stops polling). */
  private async pollCancel(id: string, group: ProcessGroup, flags: ExecutionFlags, stop: AbortSignal): Promise<void> {
    while (!stop.aborted && !this.vanished) {
      if (this.canTalk()) {
        try {
          const status = await this.client.cancelStatus(id);
          this.stats.cancelPolls++;
          if (stop.aborted) return;
          if (status.cancel_requested) {
            flags.cancelled = true;
            this.log('info', `cancel requested for ${id} (force=${status.force_kill})`);
            if (status.force_kill) group.kill();
            else group.terminate(this.opts.killGraceMs);
            return;
          }
        } catch (err) {
          // Python ignores errors here and keeps polling; only an auth error changes state.
          if (err instanceof V1HttpError && err.isAuthError) this.noteFailure('cancel-status', err);
        }
      }
      await abortableSleep(this.opts.cancelPollIntervalMs, stop);
    }
  }

  /**
   * Sends one output chunk. Failures are logged and the chunk is dropped (a v1 limit). While
   * the key is in backoff, output is discarded like Python does (unless `checkAuth` is false:
   * the rejection and metadata-only chunks are sent without that check, as in Python).
   */
  private async sendChunk(id: string, chunk: OutputRequest, checkAuth: boolean): Promise<boolean> {
    if (this.vanished || (checkAuth && !this.canTalk())) {
      this.stats.chunksDropped++;
      return false;
    }
    try {
      await this.client.output(id, chunk);
    } catch (err) {
      this.stats.chunksDropped++;
      this.noteFailure(`output chunk ${chunk.chunk_number} of ${id} failed`, err);
      return false;
    }
    this.stats.chunksSent++;
    let bytes = 0;
    for (const segment of chunk.segments) bytes += Buffer.byteLength(segment.content);
    this.stats.bytesSent += bytes;
    this.stats.largestChunkBytes = Math.max(this.stats.largestChunkBytes, bytes);
    return true;
  }

  /** Python does not report completion while the key is in backoff. */
  private async reportCompletion(id: string, result: CompleteRequest): Promise<boolean> {
    if (!this.canTalk()) {
      this.log('warn', `cannot report completion of ${id}: auth not valid`);
      return false;
    }
    try {
      await this.client.complete(id, result);
      return true;
    } catch (err) {
      this.noteFailure(`cannot complete ${id}`, err);
      return false;
    }
  }

  // ---- shutdown ----

  private vanish(): void {
    this.vanished = true;
    this.vanishAbort.abort();
    for (const group of this.groups.values()) group.kill();
  }

  private async drain(): Promise<void> {
    await Promise.allSettled(this.loops);
    // A poll that was in flight may have launched work after stop() began: wait for all of it.
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  // ---- helpers ----

  private whenReady(): Promise<void> {
    if (this.everReady) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  private markReady(): void {
    this.everReady = true;
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
  }

  /** Sleeps until deadline() (re-read after each wake, since a backoff can move it), or stop(). */
  private async sleepUntil(deadline: () => number): Promise<void> {
    for (;;) {
      const wait = deadline() - Date.now();
      if (wait <= 0 || this.phase !== 'running') return;
      await abortableSleep(wait, this.loopAbort.signal);
    }
  }

  /** A bug in one loop iteration is logged; the loop goes on, as the Python runner's does. */
  private async guarded(context: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.log('error', `${context}: unexpected error: ${describe(err)}`);
    }
  }

  private emit(event: V1RunnerEvent): void {
    this.history.push(event);
    for (const listener of [this.opts.onEvent, (e: V1RunnerEvent) => this.emitter.emit('event', e)]) {
      try {
        listener?.(event);
      } catch (err) {
        this.log('error', `event listener failed on ${event.type} ${event.id}: ${describe(err)}`);
      }
    }
  }

  private log(level: V1RunnerLogLevel, message: string): void {
    try {
      this.opts.log(level, message);
    } catch {
      // A broken logger must not stop the runner; there is nowhere left to report it.
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Options and small pure helpers
// ---------------------------------------------------------------------------------------------

function resolveOptions(options: V1RunnerOptions): ResolvedOptions {
  for (const field of ['serverUrl', 'apiKey', 'projectDir'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '') {
      throw new TypeError(`V1Runner: option '${field}' is required (a non-empty string).`);
    }
  }
  const resolved: ResolvedOptions = {
    ...options,
    python: options.python ?? '/usr/bin/python3',
    settingsModule: options.settingsModule ?? 'exampleproject.settings',
    env: options.env ?? {},
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    cancelPollIntervalMs: options.cancelPollIntervalMs ?? 2_000,
    flushIntervalMs: options.flushIntervalMs ?? 1_500,
    maxConcurrent: options.maxConcurrent ?? 4,
    metadataOnlyCommands: options.metadataOnlyCommands ?? [],
    killGraceMs: options.killGraceMs ?? 5_000,
    retryBackoffMs: options.retryBackoffMs ?? 1_000,
    maxRetries: options.maxRetries ?? 3,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    authBackoffMs: options.authBackoffMs ?? PYTHON_AUTH_BACKOFF_MS,
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    universalNewlines: options.universalNewlines ?? true,
    runnerVersion: options.runnerVersion ?? '0.1.0',
    log: options.log ?? (() => {}),
  };
  for (const field of [
    'heartbeatIntervalMs',
    'pollIntervalMs',
    'cancelPollIntervalMs',
    'flushIntervalMs',
    'maxConcurrent',
    'maxBufferedBytes',
  ] as const) {
    if (!(resolved[field] > 0)) throw new TypeError(`V1Runner: option '${field}' must be a number > 0.`);
  }
  for (const field of ['allowedCommands', 'metadataOnlyCommands'] as const) {
    // Python refuses a bare string here too: it would silently become a set of characters.
    if (resolved[field] !== undefined && !Array.isArray(resolved[field])) {
      throw new TypeError(`V1Runner: option '${field}' must be an array of command names.`);
    }
  }
  if (resolved.authBackoffMs.length === 0) throw new TypeError(`V1Runner: option 'authBackoffMs' must not be empty.`);
  return resolved;
}

/** Python reads pending items with .get() defaults; do the same for missing fields. */
function normalizePending(item: PendingExecution): PendingExecution {
  return {
    id: item.id,
    command: item.command,
    args: item.args ?? '',
    timeout: item.timeout ?? DEFAULT_TIMEOUT_SECONDS,
    use_metadata_only_mode: item.use_metadata_only_mode ?? false,
  };
}

/**
 * What complete/ says. Exit codes follow Python's subprocess: a signal N gives -N.
 * A timeout reports -1 (Python's executor returns -1 for timed_out, whatever the process did).
 */
function completionOf(exit: ProcessExit, flags: ExecutionFlags): CompleteRequest {
  if (exit.error) return { exit_code: -1, status: 'failed' };
  if (flags.timedOut) return { exit_code: -1, status: 'timed_out' };
  const exitCode = exit.code ?? -signalNumber(exit.signal);
  if (flags.cancelled) return { exit_code: exitCode, status: 'cancelled' };
  return { exit_code: exitCode, status: exitCode === 0 ? 'success' : 'failed' };
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return (signal && osConstants.signals[signal]) || 1;
}

function nowSeconds(): number {
  return Date.now() / 1000;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ---------------------------------------------------------------------------------------------
// Discovery (runs discover_commands.py with the project's Python)
// ---------------------------------------------------------------------------------------------

const execFileAsync = promisify(execFile);

/** The helper sits next to this file; compiled copies in dist/ look in the source tree. */
function discoverHelperPath(): string {
  const candidates = [
    new URL('./discover_commands.py', import.meta.url),
    new URL('../../../test/support/discover_commands.py', import.meta.url),
  ].map((url) => fileURLToPath(url));
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new Error(`discover_commands.py not found (looked in ${candidates.join(', ')})`);
  return found;
}

/**
 * Lists a Django project's commands as the Python runner would sync them, plus the Python and
 * Django versions for heartbeats. COLUMNS is pinned to 80 (unless env sets it) because argparse
 * wraps help text to the terminal width, and the hash must not depend on who runs the tests.
 */
export async function discoverCommands(options: {
  python?: string;
  projectDir: string;
  settingsModule?: string;
  env?: Record<string, string>;
}): Promise<DiscoveredProject> {
  const env = {
    ...process.env,
    COLUMNS: '80',
    DJANGO_SETTINGS_MODULE: options.settingsModule ?? 'exampleproject.settings',
    ...options.env,
  };
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(
      options.python ?? '/usr/bin/python3',
      [discoverHelperPath(), options.projectDir, '--with-versions'],
      { cwd: options.projectDir, env, maxBuffer: 256 * 1024 * 1024, timeout: 120_000 },
    ));
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`Command discovery failed in ${options.projectDir}: ${describe(err)}\n${stderr}`, { cause: err });
  }
  const parsed = JSON.parse(stdout) as { python_version: string; django_version: string; commands: SyncedCommand[] };
  return { pythonVersion: parsed.python_version, djangoVersion: parsed.django_version, commands: parsed.commands };
}

// ---------------------------------------------------------------------------------------------
// The child process, as a process group
// ---------------------------------------------------------------------------------------------

interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: Error;
}

/**
 * Groups still alive in this Node process. If the test process exits without stop() (a failed
 * test, a crash), they are killed so no `slow` command outlives the test run.
 */
const liveGroups = new Set<ProcessGroup>();
let exitHookInstalled = false;

function trackGroup(group: ProcessGroup): void {
  liveGroups.add(group);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const g of liveGroups) g.kill();
  });
}

/** A spawned manage.py that leads its own process group: signals go to the whole group. */
class ProcessGroup {
  readonly exited: Promise<ProcessExit>;
  private graceTimer?: NodeJS.Timeout;
  private ended = false;

  constructor(private readonly child: ChildProcess, closeGraceMs: number) {
    this.exited = new Promise((resolve) => {
      const finish = (exit: ProcessExit) => {
        if (this.ended) return;
        this.ended = true;
        clearTimeout(this.graceTimer);
        liveGroups.delete(this);
        resolve(exit);
      };
      child.once('error', (error) => {
        if (child.pid === undefined) finish({ code: null, signal: null, error });
      });
      child.once('close', (code, signal) => finish({ code, signal }));
      child.once('exit', (code, signal) => {
        // 'close' waits for the pipes; a daemonised grandchild can keep them open forever.
        setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish({ code, signal });
        }, closeGraceMs).unref();
      });
    });
    if (child.pid !== undefined) trackGroup(this);
  }

  /** SIGTERM now, SIGKILL after the grace period if the group is still there. */
  terminate(graceMs: number): void {
    this.signal('SIGTERM');
    this.graceTimer ??= setTimeout(() => this.signal('SIGKILL'), graceMs);
  }

  kill(): void {
    this.signal('SIGKILL');
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.ended || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Output capture: lines with timestamps, flushed in chunks, with bounded memory
// ---------------------------------------------------------------------------------------------

/**
 * One stream's pending output as protocol segments. A segment with a timestamp starts a line
 * (stamped when its first character arrived); when a partial line is flushed, the rest of it
 * arrives later as a segment with timestamp null.
 */
class LineBuffer {
  private complete: OutputSegment[] = [];
  private current: OutputSegment | null = null;
  /** The last segment handed out was a partial line: what follows continues it. */
  private continuesLine = false;
  bytes = 0;

  append(text: string, bytes: number, now: number): void {
    this.bytes += bytes;
    let from = 0;
    while (from < text.length) {
      const newline = text.indexOf('\n', from);
      const to = newline < 0 ? text.length : newline + 1;
      this.current ??= { timestamp: this.continuesLine ? null : now, content: '' };
      this.current.content += text.slice(from, to);
      if (newline >= 0) {
        this.complete.push(this.current);
        this.current = null;
        this.continuesLine = false;
      }
      from = to;
    }
  }

  take(): OutputSegment[] {
    const segments = this.complete;
    this.complete = [];
    if (this.current) {
      segments.push(this.current);
      this.current = null;
      this.continuesLine = true;
    }
    this.bytes = 0;
    return segments;
  }
}

/**
 * Decodes one pipe into a LineBuffer. Python reads the pipes in text mode with universal
 * newlines, so "\r\n" and a lone "\r" both arrive as "\n"; this does the same.
 */
class StreamCapture {
  readonly buffer = new LineBuffer();
  private readonly decoder = new StringDecoder('utf8');
  /** The previous piece ended with "\r": a "\n" starting the next piece belongs to it. */
  private afterCR = false;
  paused = false;

  constructor(
    readonly stream: Readable,
    readonly isStderr: boolean,
    private readonly universalNewlines: boolean,
  ) {}

  push(data: Buffer): void {
    this.append(this.decoder.write(data), data.length);
  }

  end(): void {
    this.append(this.decoder.end(), 0);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.stream.resume();
  }

  private append(text: string, bytes: number): void {
    if (text === '') {
      this.buffer.bytes += bytes;
      return;
    }
    this.buffer.append(this.universalNewlines ? this.translate(text) : text, bytes, nowSeconds());
  }

  private translate(text: string): string {
    const rest = this.afterCR && text.startsWith('\n') ? text.slice(1) : text;
    this.afterCR = text.endsWith('\r');
    return rest.replace(/\r\n?/g, '\n');
  }
}

/**
 * Flushes stdout then stderr every interval as chunks sharing one chunk_number sequence,
 * one send at a time so chunks arrive in order. Memory stays bounded: a stream holding more
 * than maxBufferedBytes is flushed at once, and if a send is already in flight its pipe is
 * paused, which blocks the command's writes until the runner catches up.
 */
class OutputStreamer {
  private readonly captures: StreamCapture[] = [];
  private chunkNumber = 0;
  private draining: Promise<void> | null = null;
  private again = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly send: (chunk: OutputRequest) => Promise<void>,
    private readonly flushIntervalMs: number,
    private readonly maxBufferedBytes: number,
    private readonly universalNewlines: boolean,
  ) {}

  attach(stream: Readable, isStderr: boolean): void {
    const capture = new StreamCapture(stream, isStderr, this.universalNewlines);
    this.captures.push(capture);
    stream.on('data', (data: Buffer) => {
      capture.push(data);
      if (capture.buffer.bytes < this.maxBufferedBytes) return;
      if (this.draining) {
        capture.paused = true;
        stream.pause();
      }
      void this.flush();
    });
    stream.on('end', () => capture.end());
    // A destroyed pipe (see ProcessGroup) is the end of output, not a failure.
    stream.on('error', () => {});
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushIntervalMs);
  }

  /** The final flush, after the process has exited and its pipes closed. */
  async finish(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Starts a drain, or asks the running one to go round once more. */
  private flush(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = this.drain().finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      for (const capture of this.captures) {
        const segments = capture.buffer.take();
        // The buffer is empty again: the pipe may flow while this chunk is being sent.
        capture.resume();
        if (segments.length === 0) continue;
        this.chunkNumber++;
        await this.send({ chunk_number: this.chunkNumber, is_stderr: capture.isStderr, segments });
      }
    } while (this.again);
  }
}
