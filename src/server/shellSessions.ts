/**
 * The live side of audited shells in this server process: it relays between the person's
 * WebSocket (GET /api/v1/shells/:id/attach, from the CLI or the dashboard) and the runner's v2
 * connection (runnerSessions.ts hands it every shell_* message and shell data frame), records
 * the session as it goes (core/shells.ts ShellRecording), and ends sessions: by the person, when
 * the shell exits, when idle (a warning a minute before), when the runner goes away, or when a
 * dropped client does not come back within the reattach grace period.
 *
 * A session lives in the process that holds its runner's connection: the client must attach to
 * the same server (with several replicas, route /api/v1/shells/ with affinity).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Core } from '../core/context.js';
import type { Actor, Runner } from '../domain/model.js';
import type { RunnerCaller } from '../core/runnerV1.js';
import { SYSTEM_ACTOR } from '../core/audit.js';
import { requireProject, roleOf } from '../core/access.js';
import { may } from '../domain/roles.js';
import {
  checkOpen,
  createShellSession,
  endStaleShells,
  TOUCH_EVERY_MS,
  endShellSession,
  grantWritable,
  markShellOpen,
  recordReadOnly,
  refuseShellOnRunner,
  shellSettings,
  ShellRecording,
  shellPerson,
  type ShellPerson,
} from '../core/shells.js';
import type { ShellSession } from '../store/shellStore.js';
import { isUserError, UserError } from '../shared/errors.js';
import type { ServerMessage } from '../shared/protocolV2.js';
import { decodeShellFrame } from '../shared/shellFrame.js';
import {
  SHELL_ATTACH_PATH,
  SHELL_INPUT_CHUNK,
  SHELL_RUNNER_SCHEMAS,
  ShellClientMessage,
  ShellDataHeader,
  type ShellClientEvent,
  type ShellRunnerMessage,
} from '../shared/shellProtocol.js';
import { requireUser, type Caller } from './userAuth.js';
import { watchCredential, type CredentialWatch } from './liveCredential.js';

/** What the relay needs of a runner connection (a runnerSessions.ts Session). */
export interface RunnerLink {
  readonly caller: RunnerCaller;
  readonly runner: Runner | undefined;
  send(msg: ServerMessage): void;
}

export interface ShellSessionsOptions {
  /** How long a dropped client may take to reattach before the session ends (default 60 s). */
  reattachGraceMs?: number;
  /** How long the runner has to start the shell (default 30 s). */
  startTimeoutMs?: number;
}

const runnerCheckers = Object.fromEntries(SHELL_RUNNER_SCHEMAS.map((s) => [s.properties.type.const, TypeCompiler.Compile(s)])) as Record<string, ReturnType<typeof TypeCompiler.Compile>>;
const dataHeader = TypeCompiler.Compile(ShellDataHeader);
const clientMessage = TypeCompiler.Compile(ShellClientMessage);
/** Output kept for a client that reattaches, so its screen is not blank. */
const TAIL_BYTES = 64 * 1024;
const CHECK_EVERY_MS = 1000;
const WARN_BEFORE_MS = 60_000;
/** Output not yet taken by the person's socket or the store: above HIGH the runner pauses the shell, below LOW it goes on. */
const BACKLOG_HIGH_BYTES = 8 * 1024 * 1024;
const BACKLOG_LOW_BYTES = 2 * 1024 * 1024;
const FLOW_CHECK_MS = 50;

interface Live {
  session: ShellSession;
  person: ShellPerson;
  link: RunnerLink;
  recording: ShellRecording;
  client?: WebSocket;
  watch?: CredentialWatch;
  /** The terminal shows what is typed: recorded. Off (a password prompt): not recorded. */
  echo: boolean;
  readOnly: boolean;
  started?: (outcome: { ok: true } | { ok: false; reason: string }) => void;
  lastActivity: number;
  warned: boolean;
  idleTimeoutMs: number;
  graceTimer?: NodeJS.Timeout;
  /** The last output (TAIL_BYTES at least), and how much there was in all: a reattaching client says what it has. */
  tail: Buffer[];
  tailBytes: number;
  outTotal: number;
  /** The runner was told to stop reading output (shell_flow): the person or the recording is behind. */
  paused: boolean;
  ending?: Promise<void>;
}

export class ShellSessions {
  private readonly links = new Set<RunnerLink>();
  private readonly live = new Map<string, Live>();
  private readonly wss: WebSocketServer;
  private readonly timer: NodeJS.Timeout;
  private readonly graceMs: number;
  private readonly startTimeoutMs: number;
  private touchedAt = 0;

  constructor(
    private readonly core: Core,
    private readonly log: FastifyBaseLogger,
    opts: ShellSessionsOptions = {},
  ) {
    this.graceMs = opts.reattachGraceMs ?? 60_000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false });
    this.timer = setInterval(() => {
      this.checkIdle();
      void this.keepAlive().catch((err) => this.log.warn({ err }, 'cannot touch or sweep shell sessions'));
    }, CHECK_EVERY_MS);
    this.timer.unref();
  }

  // ---- the runner leg (called by runnerSessions.ts) --------------------------------------------

  runnerReady(link: RunnerLink): void {
    this.links.add(link);
  }

  runnerGone(link: RunnerLink): void {
    this.links.delete(link);
    for (const l of this.live.values()) {
      if (l.link !== link) continue;
      // Still starting: open() refuses it; otherwise it ends.
      if (l.started) l.started({ ok: false, reason: 'the runner disconnected' });
      else void this.end(l, SYSTEM_ACTOR, 'the runner disconnected', null);
    }
  }

  /** A shell_* text message from a runner. A failure here is logged: it never ends the runner's connection. */
  async fromRunner(link: RunnerLink, parsed: unknown): Promise<void> {
    await this.onRunnerMessage(link, parsed).catch((err) => this.log.error({ err }, 'shell message from a runner failed'));
  }

  /** Validated strictly, then routed to its session. */
  private async onRunnerMessage(link: RunnerLink, parsed: unknown): Promise<void> {
    const type = (parsed as { type: string }).type;
    const checker = Object.hasOwn(runnerCheckers, type) ? runnerCheckers[type] : undefined;
    if (!checker) return link.send({ type: 'error', code: 'DC_VALIDATION', message: `Not a protocol v2 message (type ${JSON.stringify(type.slice(0, 100))}).` });
    if (!checker.Check(parsed)) {
      const first = [...checker.Errors(parsed)][0];
      return link.send({ type: 'error', code: 'DC_VALIDATION', message: `${type}${first?.path ?? ''}: ${first?.message ?? 'invalid'}` });
    }
    const msg = parsed as ShellRunnerMessage;
    const l = this.live.get(msg.session_id);
    // Another runner's session, or one that ended: the shell there has no business running.
    if (!l || l.link !== link) {
      if (msg.type !== 'shell_exited' && msg.type !== 'shell_refused') link.send({ type: 'shell_close', session_id: msg.session_id, reason: 'no such session on the server' });
      return;
    }
    switch (msg.type) {
      case 'shell_started':
        l.readOnly = msg.read_only;
        l.started?.({ ok: true });
        return;
      case 'shell_refused':
        if (l.started) l.started({ ok: false, reason: msg.reason });
        else await this.end(l, SYSTEM_ACTOR, `the runner refused: ${msg.reason}`, null);
        return;
      case 'shell_echo':
        l.echo = msg.on;
        if (!msg.on) l.recording.hiddenInput();
        return;
      case 'shell_mode_changed': {
        const was = l.readOnly;
        l.readOnly = msg.read_only;
        await this.core.store.shells.updateSession(l.session.id, { readOnly: msg.read_only });
        if (msg.read_only && !was) {
          l.recording.marker('read-only');
          await recordReadOnly(this.core, l.person.actor, l.session);
        }
        this.status(l);
        return;
      }
      case 'shell_writable_request':
        try {
          await grantWritable(this.core, l.person, l.session, msg.reason, 'shell');
          l.recording.marker(`writable: ${msg.reason}`);
          link.send({ type: 'shell_mode', session_id: l.session.id, read_only: false, request_id: msg.request_id });
        } catch (err) {
          if (!isUserError(err)) throw err;
          link.send({ type: 'shell_answer', session_id: l.session.id, request_id: msg.request_id, granted: false, message: `${err.message} [${err.code}]` });
        }
        return;
      case 'shell_exited':
        if (l.started) l.started({ ok: false, reason: msg.reason ?? 'the shell ended before it started' });
        else await this.end(l, SYSTEM_ACTOR, msg.reason ?? 'the shell exited', msg.exit_code);
        return;
    }
  }

  /** A shell data frame from a runner: terminal output, relayed and recorded as it came. */
  fromRunnerFrame(link: RunnerLink, frame: Buffer): void {
    try {
      this.onRunnerFrame(link, frame);
    } catch (err) {
      this.log.error({ err }, 'shell output from a runner failed');
    }
  }

  private onRunnerFrame(link: RunnerLink, frame: Buffer): void {
    const decoded = decodeShellFrame(frame);
    if (!decoded || !dataHeader.Check(decoded.header)) {
      link.send({ type: 'error', code: 'DC_VALIDATION', message: 'Not a shell data frame.' });
      return;
    }
    const l = this.live.get(decoded.header.session_id);
    if (!l || l.link !== link) return;
    const data = Buffer.from(decoded.data);
    l.lastActivity = this.core.now();
    l.warned = false;
    this.emit(l, data);
    this.flow(l);
  }

  /** Output for the person: recorded, kept for a reattach (from its offset), sent when attached. */
  private emit(l: Live, data: Buffer): void {
    l.recording.output(data);
    l.tail.push(data);
    l.tailBytes += data.length;
    l.outTotal += data.length;
    while (l.tailBytes - l.tail[0].length >= TAIL_BYTES) l.tailBytes -= l.tail.shift()!.length;
    if (l.client && l.client.readyState === l.client.OPEN) l.client.send(data, { binary: true });
  }

  /** Output the person's socket and the store have not taken yet. */
  private backlog(l: Live): number {
    return (l.client?.bufferedAmount ?? 0) + l.recording.backlog;
  }

  /** Pauses the shell's output while the backlog is over the cap: memory stays bounded whatever it prints. */
  private flow(l: Live): void {
    if (l.paused || this.backlog(l) < BACKLOG_HIGH_BYTES) return;
    l.paused = true;
    l.link.send({ type: 'shell_flow', session_id: l.session.id, paused: true });
    const check = setInterval(() => {
      if (!l.ending && this.backlog(l) > BACKLOG_LOW_BYTES) return;
      clearInterval(check);
      l.paused = false;
      if (!l.ending) l.link.send({ type: 'shell_flow', session_id: l.session.id, paused: false });
    }, FLOW_CHECK_MS);
  }

  // ---- opening ---------------------------------------------------------------------------------

  /** A connected runner of the project, the most recent first. */
  private linkFor(projectId: string): RunnerLink | undefined {
    return [...this.links].reverse().find((k) => k.runner && k.caller.project.id === projectId);
  }

  /**
   * Opens a shell for this person: checks (each refusal audited), starts it read-only on a runner
   * and waits until it runs; with `write`, then makes it writable (audited and announced).
   */
  async open(caller: Caller, projectRef: string | undefined, opts: { write: boolean; reason?: string; cols: number; rows: number }): Promise<ShellSession> {
    const person = shellPerson(caller);
    const project = await requireProject(this.core, caller, projectRef, 'view');
    const link = this.linkFor(project.id);
    await checkOpen(this.core, person, project, { write: opts.write, reason: opts.reason, runnerOnline: link !== undefined });
    const session = await createShellSession(this.core, person, project, { runnerId: link!.runner!.id, cols: opts.cols, rows: opts.rows, write: opts.write, reason: opts.reason });
    const settings = await shellSettings(this.core, project.id);
    const l: Live = {
      session,
      person,
      link: link!,
      recording: new ShellRecording(this.core, session, (err) => this.log.error({ err, session: session.id }, 'cannot store a shell recording part')),
      echo: true,
      readOnly: true,
      lastActivity: this.core.now(),
      warned: false,
      idleTimeoutMs: settings.idleTimeoutSeconds * 1000,
      tail: [],
      tailBytes: 0,
      outTotal: 0,
      paused: false,
    };
    this.live.set(session.id, l);
    const outcome = await new Promise<{ ok: true } | { ok: false; reason: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, reason: 'the runner did not start it in time' }), this.startTimeoutMs);
      l.started = (o) => {
        l.started = undefined;
        clearTimeout(timer);
        resolve(o);
      };
      l.link.send({ type: 'shell_open', session_id: session.id, cols: opts.cols, rows: opts.rows, read_only: true });
    });
    l.started = undefined;
    if (!outcome.ok) {
      this.live.delete(session.id);
      l.link.send({ type: 'shell_close', session_id: session.id, reason: 'refused' });
      await l.recording.close();
      await refuseShellOnRunner(this.core, person, session, outcome.reason);
    }
    // Ended as soon as it started (the shell exited, the runner left): nothing more to do.
    if (l.ending) {
      await l.ending;
      return session;
    }
    await markShellOpen(this.core, session);
    // Until someone attaches, the reattach grace applies: a shell nobody uses does not linger.
    this.detached(l);
    if (opts.write) {
      await grantWritable(this.core, person, session, opts.reason ?? '', 'open');
      l.recording.marker(`writable: ${opts.reason ?? ''}`);
      l.link.send({ type: 'shell_mode', session_id: session.id, read_only: false });
    }
    return session;
  }

  /** Ends a session on the person's word (REST DELETE). */
  async closeByPerson(caller: Caller, id: string): Promise<ShellSession> {
    const l = this.live.get(id);
    const session = l?.session ?? (await this.core.store.shells.getSession(id));
    if (!session) throw new UserError('DC_UNKNOWN_SHELL', `No shell session ${id}.`);
    if (session.userId !== caller.user?.id && !may(caller.grants, session.projectId, 'shell.write')) {
      if (roleOf(caller, session.projectId) === null) throw new UserError('DC_UNKNOWN_SHELL', `No shell session ${id}.`);
      throw new UserError('DC_FORBIDDEN', "Only the shell's owner or a project admin may end a shell.");
    }
    if (l) await this.end(l, caller.actor, `ended by ${caller.actor.label}`, null);
    return session;
  }

  /** Live sessions, for lists (is it attached?). */
  isLive(id: string): boolean {
    return this.live.has(id);
  }

  // ---- the client leg --------------------------------------------------------------------------

  /** Handles `upgrade` requests for /api/v1/shells/:id/attach; false when the path is not ours. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, address: string): boolean {
    const url = new URL(request.url ?? '/', 'http://x');
    const m = SHELL_ATTACH_PATH.exec(url.pathname);
    if (!m) return false;
    // `from`: how many output bytes the client has already (0 for a fresh terminal); it gets what follows.
    const from = /^\d{1,15}$/.test(url.searchParams.get('from') ?? '') ? Number(url.searchParams.get('from')) : 0;
    this.authorizeAttach(request, address, m[1]).then(
      ({ l, caller }) => this.wss.handleUpgrade(request, socket, head, (ws) => this.attach(ws, l, caller, from)),
      (err: unknown) => {
        const status = isUserError(err) ? err.status : 500;
        const body = JSON.stringify(isUserError(err) ? { error: err.message, code: err.code } : { error: 'Internal error; the server logged it.', code: 'DC_INTERNAL' });
        if (!isUserError(err)) this.log.error({ err }, 'shell attach failed');
        socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      },
    );
    return true;
  }

  private async authorizeAttach(request: IncomingMessage, address: string, id: string): Promise<{ l: Live; caller: Caller }> {
    const caller = await requireUser(this.core, { headers: request.headers, method: 'GET', ip: address } as unknown as FastifyRequest);
    // A browser sends the session cookie with a WebSocket from any site: only our own pages may use it.
    const origin = request.headers.origin;
    if (caller.session && origin && hostOf(origin) !== request.headers.host) {
      throw new UserError('DC_FORBIDDEN', 'A shell may be attached from this server\'s own pages only.');
    }
    const l = this.live.get(id);
    if (!l) {
      const s = await this.core.store.shells.getSession(id);
      if (!s) throw new UserError('DC_UNKNOWN_SHELL', `No shell session ${id}.`);
      throw new UserError('DC_SHELL_ENDED', `This shell has ended${s.endReason ? ` (${s.endReason})` : ''}.`);
    }
    if (l.session.userId !== caller.user?.id) throw new UserError('DC_FORBIDDEN', 'Only the person who opened a shell may attach to it.');
    return { l, caller };
  }

  private attach(ws: WebSocket, l: Live, caller: Caller, from: number): void {
    if (l.ending) return ws.close(1000, 'the shell has ended');
    if (l.client) {
      l.client.close(4409, 'attached elsewhere');
      l.watch?.stop();
    }
    clearTimeout(l.graceTimer);
    l.graceTimer = undefined;
    l.client = ws;
    // The shell ends when the person loses the credential or the role to open one in this project.
    const watch = watchCredential(this.core, caller, { projectId: l.session.projectId, permission: 'shell.read' });
    l.watch = watch;
    watch.signal.addEventListener('abort', () => {
      if (l.client === ws) ws.close(4401, 'your credential was revoked');
    });
    const check = setInterval(() => void watch.valid(), 1000);
    this.status(l);
    // What it missed, as far as the tail goes back (a gap beyond it is in the recording).
    const missed = Buffer.concat(l.tail).subarray(Math.max(0, Math.min(l.tailBytes, from - (l.outTotal - l.tailBytes))));
    if (from < l.outTotal && missed.length > 0) ws.send(missed, { binary: true });
    ws.on('message', (data, isBinary) => {
      void this.fromClient(l, ws, data, isBinary).catch((err) => this.log.error({ err }, 'shell client message failed'));
    });
    ws.on('close', (code) => {
      clearInterval(check);
      watch.stop();
      if (l.client !== ws) return;
      l.client = undefined;
      l.watch = undefined;
      if (l.ending) return;
      // Revoked: no reattach possible with that credential; the session ends.
      if (code === 4401 || watch.signal.aborted) return void this.end(l, SYSTEM_ACTOR, 'the credential of its owner was revoked', null);
      this.detached(l);
    });
    ws.on('error', () => undefined);
  }

  private detached(l: Live): void {
    clearTimeout(l.graceTimer);
    l.graceTimer = setTimeout(() => void this.end(l, SYSTEM_ACTOR, 'nobody attached to it within the reattach period', null), this.graceMs);
  }

  private async fromClient(l: Live, ws: WebSocket, data: RawData, isBinary: boolean): Promise<void> {
    if (l.client !== ws || l.ending) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      l.lastActivity = this.core.now();
      l.warned = false;
      if (l.echo) l.recording.input(bytes);
      for (let i = 0; i < bytes.length; i += SHELL_INPUT_CHUNK) {
        l.link.send({ type: 'shell_input', session_id: l.session.id, data: bytes.subarray(i, i + SHELL_INPUT_CHUNK).toString('base64') });
      }
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(bytes.toString('utf8'));
    } catch {
      msg = undefined;
    }
    if (!clientMessage.Check(msg)) {
      const first = msg === undefined ? undefined : [...clientMessage.Errors(msg)][0];
      return this.notice(ws, `Not a shell control message${first ? ` (${first.path || 'type'}: ${first.message})` : ''}.`, 'DC_VALIDATION');
    }
    switch (msg.type) {
      case 'resize':
        l.recording.resize(msg.cols, msg.rows);
        l.link.send({ type: 'shell_resize', session_id: l.session.id, cols: msg.cols, rows: msg.rows });
        return;
      case 'writable':
        try {
          await grantWritable(this.core, l.person, l.session, msg.reason, 'client');
          l.recording.marker(`writable: ${msg.reason}`);
          l.link.send({ type: 'shell_mode', session_id: l.session.id, read_only: false });
        } catch (err) {
          if (!isUserError(err)) throw err;
          this.notice(ws, err.message, err.code);
        }
        return;
      case 'readonly':
        l.link.send({ type: 'shell_mode', session_id: l.session.id, read_only: true });
        return;
      case 'close':
        await this.end(l, l.person.actor, `ended by ${l.person.actor.label}`, null);
        return;
    }
  }

  private send(ws: WebSocket | undefined, event: ShellClientEvent): void {
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
  }

  private notice(ws: WebSocket | undefined, message: string, code?: string): void {
    this.send(ws, { type: 'notice', message, ...(code ? { code } : {}) });
  }

  private status(l: Live): void {
    this.send(l.client, { type: 'status', state: l.session.status, read_only: l.readOnly, became_writable: l.session.becameWritable });
  }

  /** Writes a line to the person's terminal (and the recording), as the shell's own output would be. */
  private say(l: Live, text: string): void {
    this.emit(l, Buffer.from(`\r\n[djangocommand] ${text}\r\n`));
  }

  /** Touches this process's live sessions, and ends those a stopped server left open (any replica may). */
  private async keepAlive(): Promise<void> {
    const now = Date.now();
    if (now - this.touchedAt < TOUCH_EVERY_MS) return;
    this.touchedAt = now;
    await this.core.store.shells.touchSessions([...this.live.keys()], this.core.now());
    await endStaleShells(this.core);
  }

  private checkIdle(): void {
    const now = this.core.now();
    for (const l of this.live.values()) {
      if (l.started || l.ending) continue;
      const idle = now - l.lastActivity;
      const warnAt = l.idleTimeoutMs - Math.min(WARN_BEFORE_MS, l.idleTimeoutMs / 2);
      if (idle >= l.idleTimeoutMs) void this.end(l, SYSTEM_ACTOR, `idle for ${Math.round(l.idleTimeoutMs / 1000)} s`, null);
      else if (idle >= warnAt && !l.warned) {
        l.warned = true;
        this.say(l, `idle: this shell closes in ${Math.round((l.idleTimeoutMs - idle) / 1000)} s unless you type something`);
      }
    }
  }

  // ---- ending ----------------------------------------------------------------------------------

  private end(l: Live, actor: Actor, reason: string, exitCode: number | null): Promise<void> {
    l.ending ??= (async () => {
      clearTimeout(l.graceTimer);
      l.link.send({ type: 'shell_close', session_id: l.session.id, reason });
      this.say(l, `shell ended: ${reason}`);
      this.send(l.client, { type: 'ended', reason, exit_code: exitCode });
      l.client?.close(1000, 'shell ended');
      l.watch?.stop();
      try {
        await l.recording.close();
        await endShellSession(this.core, actor, l.session, reason, exitCode);
      } catch (err) {
        this.log.error({ err, session: l.session.id }, 'cannot record the end of a shell');
      } finally {
        this.live.delete(l.session.id);
      }
    })();
    return l.ending;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.live.values()].map((l) => this.end(l, SYSTEM_ACTOR, 'the server is shutting down', null)));
    this.wss.close();
  }
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined; // "null" (a sandboxed page) or garbage: not our page
  }
}
