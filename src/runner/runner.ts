/**
 * The runner: one agent next to manage.py. It connects out to the server (protocol v2), reports
 * the project's commands, runs what it is pushed — only what its own policy allows — and streams
 * the output back through the spool, so nothing is lost when the server or the network goes away.
 *
 * Life of an execution on the runner:
 *   execute → (refused by policy: a stderr line + finished `rejected`)
 *           → launch (warm fork, or cold `python manage.py`) → started
 *           → output chunks: spool on disk → sent → ack → forgotten
 *           → process exit → finished (spooled) → finished_ack → spool removed
 * Cancel and timeout stop the process group: SIGINT, SIGTERM after the grace period, SIGKILL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Connection } from './connection.js';
import { ExecutionSpool } from './spool.js';
import { OutputChunker, type Chunk } from './outputChunker.js';
import { launchCold, stopGroup, type Launched } from './process.js';
import { forgetProcess, recordProcess } from './leftovers.js';
import { judge, isMetadataOnly } from './policy.js';
import type { RunnerSettings } from './settings.js';
import type { DiscoveredCommand, PythonProject } from './bootstrap.js';
import { commandsHash } from '../domain/commandsHash.js';
import { codeSchedulesDigest, joinCatalogueHash, type CodeScheduleSpec } from '../domain/codeSchedule.js';
import { readOnlyHashSuffix } from '../domain/readOnly.js';
import { ShellHost } from './shell.js';
import type { CommandsMessage, Execute, Finished, FinishedStatus, Hello, ServerMessage } from '../shared/protocolV2.js';

export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface WarmLauncher {
  /** A warm start, or undefined when it cannot be had now (the caller starts cold). */
  launch(command: string, argv: string[], options?: { readOnly?: boolean }): Promise<Launched | undefined>;
  stop(): Promise<void>;
}

export interface RunnerOptions {
  settings: RunnerSettings;
  project: PythonProject;
  commands: DiscoveredCommand[];
  /** DJANGOCOMMAND_SCHEDULES (bootstrap.py's defaults filled in); null or absent: not defined, not reported. */
  schedules?: CodeScheduleSpec[] | null;
  version: string;
  log: Log;
  warm?: WarmLauncher;
  /** How often output is cut into chunks (ms). */
  flushMs?: number;
  /** Backoff base for reconnecting (ms); tests make it small. */
  reconnectBaseMs?: number;
}

interface Live {
  id: string;
  command: string;
  spool: ExecutionSpool;
  proc?: Launched;
  startedAt?: number;
  /** Index of the next spool entry to send on this connection. */
  nextIndex: number;
  /** Frames spooled but not sent yet, by index: sent from memory, not read back from disk. */
  fresh: Map<number, Buffer>;
  finishedSent: boolean;
  /** The process has exited: its streams are never paused again. */
  exited?: boolean;
  /** Chunks cut but not in the spool yet: only while the disk refuses them (see spoolPending). */
  unspooled: Chunk[];
  spoolFailing?: boolean;
  spoolRetry?: NodeJS.Timeout;
  /** How it ended, held back until its last chunks are in the spool. */
  pendingFinish?: Finished;
  cancelled: boolean;
  timedOut: boolean;
  stopSteps?: () => void;
  /** Came in an `execute` to this process (not left in the spool by an earlier run of the runner). */
  received?: boolean;
}

/** Chunks sent but not yet acknowledged, at most (8 × 1 MiB): bounds memory in the socket and the server. */
const SEND_WINDOW_CHUNKS = 8;
/** Larger chunks cost fewer messages, transactions and acks per megabyte. */
const CHUNK_MAX_BYTES = 1024 * 1024;
/** How often writing the spool is tried again after the disk refused it. */
const SPOOL_RETRY_MS = 500;
const METADATA_ONLY_TEXT = '(metadata-only mode, no output captured)\n';

export class Runner {
  readonly connection: Connection;
  /** Audited shells (shell.ts): started on the server's `shell_open`. */
  readonly shells: ShellHost;
  private readonly live = new Map<string, Live>();
  private readonly runnerId: string;
  private readonly commandsMsg: CommandsMessage;
  private readonly hash: string;
  private inflight = 0;
  private draining = false;
  /** Back-pressure: commands' output is not read while the server's backlog is over the cap. */
  private outputPaused = false;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly idle: Array<() => void> = [];

  constructor(private readonly opts: RunnerOptions) {
    const s = opts.settings;
    fs.mkdirSync(s.stateDir, { recursive: true, mode: 0o700 });
    this.runnerId = loadRunnerId(s.stateDir);
    const catalogue = opts.commands
      .filter((c) => !c.error)
      .map((c) => {
        const verdict = judge(s.policy, c.name);
        return {
          name: c.name,
          app_label: c.app_label,
          help_text: c.help_text,
          schema: c.schema ?? null,
          ...(verdict.allowed ? {} : { refused: `${verdict.reason}. ${verdict.fix}` }),
          ...(s.readOnlyCommands?.includes(c.name) ? { read_only: true } : {}),
        };
      })
      .filter((c) => c.name !== 'djangocommand');
    // Code schedules travel with the catalogue; their digest joins the hash so a change in the
    // settings alone is resent too. The server says why it skips an entry (logged as `server says`).
    const schedules = opts.schedules ?? undefined;
    this.commandsMsg = { type: 'commands', commands: catalogue, ...(schedules ? { schedules } : {}) };
    // DJANGOCOMMAND_READONLY_COMMANDS joins the hash the same way (domain/readOnly.ts).
    const readOnlySuffix = readOnlyHashSuffix(catalogue.filter((c) => c.read_only).map((c) => c.name));
    this.hash = joinCatalogueHash(commandsHash(catalogue.filter((c) => !c.refused)) + readOnlySuffix, schedules && codeSchedulesDigest(schedules));
    if (schedules) opts.log('info', `DJANGOCOMMAND_SCHEDULES: ${schedules.length} schedule${schedules.length === 1 ? '' : 's'} (${schedules.map((x) => x.name).join(', ') || 'none'})`);
    this.connection = new Connection(s.serverUrl, s.apiKey, {
      handshakeTimeoutMs: s.requestTimeoutSeconds * 1000,
      baseBackoffMs: opts.reconnectBaseMs,
      userAgent: `djangocommand-runner/${opts.version}`,
    });
    this.shells = new ShellHost(opts.project, this.connection, opts.log);
  }

  /** Connects and serves until stop(). Output left unsent by an earlier run is sent first. */
  start(): void {
    for (const spool of ExecutionSpool.loadAll(this.opts.settings.stateDir)) {
      // Left by a runner that died: its process is gone; send what it printed, never re-run it.
      this.live.set(spool.executionId, { id: spool.executionId, command: '?', spool, nextIndex: 0, fresh: new Map(), unspooled: [], finishedSent: false, cancelled: false, timedOut: false });
      this.opts.log('warn', `execution ${spool.executionId}: sending output kept from a previous run of the runner`);
    }
    this.connection.on('open', () => this.onOpen());
    this.connection.on('message', (msg) => this.onMessage(msg));
    this.connection.on('state', (state, detail) => {
      this.opts.log(state === 'unauthorized' ? 'error' : 'info', `connection ${state}${detail ? `: ${detail}` : ''}`);
      this.writeStatus();
    });
    this.connection.start();
    this.statusTimer = setInterval(() => this.writeStatus(), 2000);
    this.writeStatus();
  }

  get running(): string[] {
    return [...this.live.values()].filter((l) => l.proc && !l.spool.finished).map((l) => l.id);
  }

  private onOpen(): void {
    // A shell lives only as long as the connection that opened it: the server ended it meanwhile.
    this.shells.closeAll('the connection to the server was replaced');
    this.inflight = 0;
    for (const l of this.live.values()) {
      l.nextIndex = 0;
      l.fresh.clear();
      l.finishedSent = false;
    }
    const s = this.opts.settings;
    const hello: Hello = {
      type: 'hello',
      protocol: 2,
      runner_id: this.runnerId,
      hostname: os.hostname(),
      runner_version: this.opts.version,
      python_version: s.pythonVersion,
      django_version: s.djangoVersion,
      commands_hash: this.hash,
      max_concurrency: s.maxConcurrency,
      // Everything it received, even if it has ended since or is still being started: the server
      // learns it ran, and takes back only what is not here (an `execute` that never arrived).
      running: [...this.live.values()].filter((l) => l.received).map((l) => l.id),
      features: ['read_only', 'lists_received'],
    };
    this.connection.send(JSON.stringify(hello));
    if (this.draining) this.connection.send(JSON.stringify({ type: 'draining' }));
  }

  private onMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.opts.log('info', `connected to ${this.opts.settings.serverUrl} as runner ${msg.runner_id}`);
        if (!msg.commands_in_sync) this.connection.send(JSON.stringify(this.commandsMsg));
        for (const id of msg.cancel) this.cancel(id, true);
        this.pump();
        return;
      case 'execute':
        void this.execute(msg).catch((err: Error) => this.opts.log('error', `execution ${msg.execution_id}: ${err.message}`));
        return;
      case 'cancel':
        this.cancel(msg.execution_id, msg.force);
        return;
      case 'ack': {
        const l = this.live.get(msg.execution_id);
        if (!l) return;
        l.spool.ack(msg.seq);
        this.inflight = Math.max(0, this.inflight - 1);
        this.applyBackPressure();
        if (!l.proc && !l.spool.finished && l.spool.allAcked()) this.forget(l);
        this.pump();
        return;
      }
      case 'finished_ack': {
        const l = this.live.get(msg.execution_id);
        if (l && l.spool.allAcked()) this.forget(l);
        return;
      }
      case 'error':
      case 'warning':
        this.opts.log('warn', `server says: ${msg.message} [${msg.code}]`);
        return;
      default:
        if (msg.type.startsWith('shell_')) this.shells.handle(msg);
        return;
    }
  }

  private async execute(msg: Execute): Promise<void> {
    if (this.live.has(msg.execution_id)) return;
    const spool = ExecutionSpool.create(this.opts.settings.stateDir, msg.execution_id);
    const l: Live = { id: msg.execution_id, command: msg.command, spool, nextIndex: 0, fresh: new Map(), unspooled: [], finishedSent: false, cancelled: false, timedOut: false, received: true };
    this.live.set(l.id, l);
    // Secrets are scrubbed here, before the spool: nothing unscrubbed is written or sent.
    const chunker = new OutputChunker((c) => this.spoolChunk(l, c), { flushMs: this.opts.flushMs ?? 100, maxBytes: CHUNK_MAX_BYTES, redact: this.opts.settings.redaction });

    const verdict = judge(this.opts.settings.policy, msg.command);
    if (!verdict.allowed || this.draining) {
      const reason = !verdict.allowed ? `${verdict.reason}. ${verdict.fix}` : 'the runner is stopping';
      chunker.write('stderr', Buffer.from(`Command '${msg.command}' rejected by runner security policy.\nReason: ${reason}\n`));
      chunker.flush(true);
      this.opts.log('warn', `execution ${l.id}: refused ${msg.command}: ${reason}`);
      return this.finish(l, 'rejected', -1, reason, chunker.lastSeq);
    }

    const metadataOnly = msg.metadata_only || isMetadataOnly(this.opts.settings.policy, msg.command);
    const s = this.opts.settings;
    // Read-only when the server says so, and always for DJANGOCOMMAND_READONLY_COMMANDS (whatever the server says).
    const readOnly = msg.read_only === true || (s.readOnlyCommands?.includes(msg.command) ?? false);
    const cold = s.coldCommands.includes(msg.command) || !this.opts.warm;
    const proc = (cold ? undefined : await this.opts.warm!.launch(msg.command, msg.argv, { readOnly })) ??
      launchCold({ python: this.opts.project.python, projectDir: this.opts.project.projectDir, command: msg.command, argv: msg.argv, env: this.opts.project.env, readOnly });
    l.proc = proc;
    l.startedAt = Date.now();
    // Written down until it is seen to end: a runner killed meanwhile finds it on its next start.
    if (proc.pid) recordProcess(s.stateDir, { pid: proc.pid, group: true, kind: 'command', execution_id: l.id, command: msg.command });
    this.opts.log('info', `execution ${l.id}: ${msg.command} ${msg.argv.join(' ')} started (${proc.warm ? 'warm' : 'cold'}${readOnly ? ', read-only' : ''}, pid ${proc.pid})`);
    this.connection.send(JSON.stringify({ type: 'started', execution_id: l.id, pid: proc.pid, warm: proc.warm, at: l.startedAt }));
    this.writeStatus();

    if (metadataOnly) chunker.write('stdout', Buffer.from(METADATA_ONLY_TEXT));
    const ended = Promise.all([drain(proc.stdout, metadataOnly ? undefined : (b) => chunker.write('stdout', b)), drain(proc.stderr, metadataOnly ? undefined : (b) => chunker.write('stderr', b))]);
    this.updateReading(l);
    const timer = msg.timeout > 0 ? setTimeout(() => {
      l.timedOut = true;
      this.opts.log('warn', `execution ${l.id}: timed out after ${msg.timeout} s; stopping it`);
      if (proc.pid) l.stopSteps = stopGroup(proc.pid, false, s.killGraceMs);
    }, msg.timeout * 1000) : undefined;

    const code = await proc.exited;
    if (proc.pid) forgetProcess(s.stateDir, proc.pid);
    // Gone: what it left in its pipes is at most their buffers, and must be read to be kept.
    l.exited = true;
    setReading(proc, true);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
    clearTimeout(timer);
    l.stopSteps?.();
    chunker.flush(true);
    const status: FinishedStatus = l.timedOut ? 'timed_out' : l.cancelled ? 'cancelled' : code === 0 ? 'success' : 'failed';
    this.opts.log('info', `execution ${l.id}: ${status} (exit code ${code})`);
    this.finish(l, status, code, undefined, chunker.lastSeq);
  }

  /** Everything about this execution is stored on the server: drop the spool. */
  private forget(l: Live): void {
    clearTimeout(l.spoolRetry);
    l.spool.remove();
    this.live.delete(l.id);
    this.applyBackPressure();
    this.writeStatus();
    this.notifyIdle();
  }

  private spoolChunk(l: Live, c: Chunk): void {
    l.unspooled.push(c);
    this.spoolPending(l);
  }

  /**
   * Writes the chunks waiting for the spool, in order. When the disk refuses one (full, a file
   * size limit), they are kept, the command's pipes are not read (it waits on its next write),
   * and writing is tried again shortly: the command is slowed down, never cut, and nothing is lost.
   */
  private spoolPending(l: Live): void {
    while (l.unspooled.length > 0) {
      const c = l.unspooled[0];
      let frame: Buffer;
      try {
        frame = l.spool.append({ type: 'output', execution_id: l.id, seq: c.seq, stream: c.stream, data: c.data, line_times: c.lineTimes });
      } catch (err) {
        if (!l.spoolFailing) this.opts.log('error', `execution ${l.id}: cannot write the output spool in ${this.opts.settings.stateDir} (${(err as Error).message}); the command waits until the disk takes it`);
        l.spoolFailing = true;
        l.spoolRetry ??= setTimeout(() => {
          l.spoolRetry = undefined;
          this.spoolPending(l);
        }, SPOOL_RETRY_MS);
        this.updateReading(l);
        return;
      }
      l.unspooled.shift();
      // Kept in memory only while the send window is open; otherwise it is read back when due.
      if (this.connection.isOpen() && this.inflight < SEND_WINDOW_CHUNKS) l.fresh.set(l.spool.count - 1, frame);
    }
    if (l.spoolFailing) {
      l.spoolFailing = false;
      this.opts.log('info', `execution ${l.id}: the output spool is written again`);
      this.updateReading(l);
    }
    if (l.pendingFinish) this.recordFinish(l, l.pendingFinish);
    this.pump();
    this.applyBackPressure();
  }

  /** Reads the command's pipes unless the spool is over its cap or cannot be written; always once it has exited. */
  private updateReading(l: Live): void {
    if (l.proc && !l.exited) setReading(l.proc, !this.outputPaused && l.unspooled.length === 0);
  }

  /**
   * Keeps the spool within DJANGOCOMMAND_SPOOL_MAX_MB: while the output the server has not
   * acknowledged is over it (a slow server, a cut network), the commands' pipes are not read,
   * so a command waits on its next write instead of filling the disk. Reading resumes once
   * the backlog is down to half the cap. Nothing is dropped either way.
   */
  private applyBackPressure(): void {
    const max = this.opts.settings.spoolMaxBytes;
    const backlog = this.unackedBytes();
    const pause = this.outputPaused ? backlog > max / 2 : backlog >= max;
    if (pause === this.outputPaused) return;
    this.outputPaused = pause;
    const mib = (n: number) => (n / 1048576).toFixed(0);
    if (pause) this.opts.log('warn', `output paused: ${mib(backlog)} MiB not acknowledged by the server yet (DJANGOCOMMAND_SPOOL_MAX_MB is ${mib(max)}); commands wait on their next write until it catches up`);
    else this.opts.log('info', `output resumed: ${mib(backlog)} MiB not acknowledged`);
    for (const l of this.live.values()) this.updateReading(l);
    this.writeStatus();
  }

  private unackedBytes(): number {
    let total = 0;
    for (const l of this.live.values()) total += l.spool.unackedBytes;
    return total;
  }

  private finish(l: Live, status: FinishedStatus, exitCode: number | null, reason: string | undefined, lastSeq: number): void {
    const msg: Finished = { type: 'finished', execution_id: l.id, exit_code: exitCode, status, last_seq: lastSeq, at: Date.now(), ...(reason ? { reason } : {}) };
    if (l.unspooled.length > 0) l.pendingFinish = msg;
    else this.recordFinish(l, msg);
  }

  private recordFinish(l: Live, msg: Finished): void {
    l.pendingFinish = undefined;
    if (!l.spool.finish(msg)) this.opts.log('warn', `execution ${l.id}: its end is kept in memory only (the disk refused it); it is sent all the same`);
    this.pump();
    this.writeStatus();
    this.notifyIdle();
  }

  /** Sends what is spooled and not yet sent on this connection, within the window, in order. */
  private pump(): void {
    if (!this.connection.isOpen()) return;
    for (const l of this.live.values()) {
      while (l.nextIndex < l.spool.count) {
        if (this.inflight >= SEND_WINDOW_CHUNKS) return;
        if (!l.spool.isAcked(l.nextIndex)) {
          this.connection.send(l.fresh.get(l.nextIndex) ?? l.spool.read(l.nextIndex));
          this.inflight++;
        }
        l.fresh.delete(l.nextIndex);
        l.nextIndex++;
      }
      if (l.spool.finished && !l.finishedSent) {
        l.finishedSent = true;
        this.connection.send(JSON.stringify(l.spool.finished));
      }
    }
  }

  cancel(id: string, force: boolean): void {
    const l = this.live.get(id);
    if (!l?.proc?.pid || l.spool.finished) return;
    l.cancelled = true;
    this.opts.log('info', `execution ${id}: cancel${force ? ' (force)' : ''}`);
    l.stopSteps?.();
    l.stopSteps = stopGroup(l.proc.pid, force, this.opts.settings.killGraceMs);
  }

  /**
   * Stops: tells the server (`draining`: no new work, it may show the runner as stopping), lets
   * running commands finish for `graceMs`, then stops them (reported `cancelled`); waits a
   * little for the server to acknowledge everything; then closes the socket with a normal
   * close (1000, "runner stopping"), after every message before it. `force` kills every
   * command at once. Not connected meanwhile: `draining` follows `hello` on a reconnect.
   */
  async stop(opts: { force?: boolean; graceMs?: number } = {}): Promise<void> {
    this.draining = true;
    this.shells.closeAll('the runner is stopping');
    this.connection.send(JSON.stringify({ type: 'draining' }));
    this.writeStatus();
    if (opts.force) for (const id of this.running) this.cancel(id, true);
    await this.waitUntil(() => this.running.length === 0, opts.force ? 3000 : (opts.graceMs ?? 30_000));
    for (const id of this.running) this.cancel(id, false);
    await this.waitUntil(() => this.running.length === 0, 3 * this.opts.settings.killGraceMs);
    // Give the server a moment to acknowledge; what it does not is kept for the next start.
    await this.waitUntil(() => this.live.size === 0, opts.force ? 1000 : 5000);
    clearInterval(this.statusTimer);
    await this.connection.stop();
    await this.opts.warm?.stop();
    for (const l of this.live.values()) l.spool.close();
    removeStatus(this.opts.settings.stateDir);
  }

  private waitUntil(done: () => boolean, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      const check = () => (done() ? finish() : this.idle.push(check));
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      this.idle.push(check);
    });
  }

  private notifyIdle(): void {
    for (const f of this.idle.splice(0)) f();
  }

  private writeStatus(): void {
    const status: RunnerStatus = {
      pid: process.pid,
      started_at: new Date(this.startedAt).toISOString(),
      server: this.opts.settings.serverUrl,
      connection: this.connection.state,
      last_error: this.connection.lastError ?? null,
      refused: this.connection.refusal ? { message: this.connection.refusal.message, code: this.connection.refusal.code ?? null } : null,
      runner_id: this.runnerId,
      version: this.opts.version,
      draining: this.draining,
      executions: [...this.live.values()].filter((l) => l.proc && !l.spool.finished).map((l) => ({ id: l.id, command: l.command, pid: l.proc!.pid, started_at: new Date(l.startedAt!).toISOString() })),
      unsent_executions: [...this.live.values()].filter((l) => !l.spool.allAcked() || l.spool.finished).length,
      unacknowledged_bytes: this.unackedBytes(),
      output_paused: this.outputPaused,
    };
    writeStatusFile(this.opts.settings.stateDir, status);
  }
}

export interface RunnerStatus {
  pid: number;
  started_at: string;
  server: string;
  connection: string;
  last_error: string | null;
  /** The server refused the runner's key on its last attempt, in the server's words. */
  refused: { message: string; code: string | null } | null;
  runner_id: string;
  version: string;
  draining: boolean;
  executions: Array<{ id: string; command: string; pid: number | null; started_at: string }>;
  unsent_executions: number;
  /** Output spooled and not acknowledged by the server yet. */
  unacknowledged_bytes: number;
  /** Back-pressure is on: see applyBackPressure. */
  output_paused: boolean;
}

export const STATUS_FILE = 'status.json';

function writeStatusFile(stateDir: string, status: RunnerStatus): void {
  const file = path.join(stateDir, STATUS_FILE);
  try {
    fs.writeFileSync(file + '.tmp', JSON.stringify(status, null, 2), { mode: 0o600 });
    fs.renameSync(file + '.tmp', file);
  } catch {
    // The status file is a courtesy for `status`; never let it stop the runner.
  }
}

function removeStatus(stateDir: string): void {
  fs.rmSync(path.join(stateDir, STATUS_FILE), { force: true });
}

/** The runner's own id, kept across restarts so the server sees the same runner come back. */
function loadRunnerId(stateDir: string): string {
  const file = path.join(stateDir, 'runner-id');
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = randomUUID();
  fs.writeFileSync(file, id + '\n', { mode: 0o600 });
  return id;
}

function setReading(proc: Launched, on: boolean): void {
  for (const stream of [proc.stdout, proc.stderr]) {
    if (on) stream.resume();
    else stream.pause();
  }
}

/** Reads a stream to its end, handing each piece to `onData` (or dropping it). */
function drain(stream: NodeJS.ReadableStream, onData: ((b: Buffer) => void) | undefined): Promise<void> {
  return new Promise((resolve) => {
    stream.on('data', (b: Buffer) => onData?.(b));
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', () => resolve());
  });
}
