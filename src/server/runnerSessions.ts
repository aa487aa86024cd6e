/**
 * Protocol v2 over WebSocket: the live connections of this server process's runners.
 * Each connection is a Session; a runner's messages about one execution are handled in order,
 * one at a time, and its other messages after everything it sent before them (see receive).
 * Work reaches a runner by push: when an execution is created (a wake-up on the project topic,
 * from this process or, with PostgreSQL, from another replica) the sessions of that project
 * claim it. Cancels are pushed the same way. A one-second safety sweep covers lost wake-ups.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FormatRegistry } from '@sinclair/typebox';
import type { Core } from '../core/context.js';
import { sightingWriteEveryMs, type Execution, type Runner } from '../domain/model.js';
import { isTerminal } from '../domain/execution.js';
import { authenticateRunner, type RunnerCaller } from '../core/runnerV1.js';
import * as v2 from '../core/runnerV2.js';
import { topics } from '../core/notifier.js';
import { dispatchableProjects } from '../core/dispatchableProjects.js';
import { isUserError } from '../shared/errors.js';
import { CLOSE, CommandsMessage, decodeOutputFrame, Draining, Finished, Hello, Output, OutputHeader, Started, V2_PATH, type RunnerMessage, type ServerMessage } from '../shared/protocolV2.js';
import { V1_HEADERS } from '../shared/protocolV1.js';
import { bearerOf } from './userAuth.js';
import { isShellFrame } from '../shared/shellFrame.js';
import type { ShellSessions } from './shellSessions.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
if (!FormatRegistry.Has('uuid')) FormatRegistry.Set('uuid', (v) => UUID.test(v));
/** One checker per message type, so an error names the field, not "expected union value". */
const checkers = Object.fromEntries(
  [Hello, CommandsMessage, Started, Output, Finished, Draining].map((schema) => [schema.properties.type.const, TypeCompiler.Compile(schema)]),
) as unknown as Record<RunnerMessage['type'], { Check(v: unknown): v is RunnerMessage; Errors(v: unknown): Iterable<{ path: string; message: string }> }>;
const outputHeader = TypeCompiler.Compile(OutputHeader);
const SAFETY_SWEEP_MS = 1_000;
/** Every connection's key is read again this often; in between, only the keys revoked lately. */
const FULL_REVOCATION_CHECK_MS = 60_000;
/** Keys read a statement in the full revocation check. */
const KEYS_PER_CHECK = 500;
const REVOCATION_CLOCK_SLACK_MS = 5 * 60_000;
const SEEN_PER_WRITE = 250;
/** Output frames of one execution stored at once: our runner sends up to 8 before an ack; more wait their turn. */
const MAX_FRAMES_STORED_AT_ONCE = 8;
/** Executions one dispatch pass claims at most, shared among the project's runners with free slots. */
const DISPATCH_BATCH = 100;
/** Messages of one runner handled at once (about different executions); past this, the next waits for all before it. */
const MAX_MESSAGES_AT_ONCE = 64;
/** The messages that concern one execution, and so are ordered among themselves only. */
const EXECUTION_MESSAGES: ReadonlySet<unknown> = new Set(['started', 'output', 'finished']);
/** Pings (and "last seen" writes) often enough that a live runner never looks offline. */
const pingEveryMs = (core: Core) => Math.min(20_000, core.settings.runnerOfflineAfterMs / 3);
/** Writing "last seen" on every output chunk would double the writes; a few times per offline period is enough. */
const sightEveryMs = (core: Core) => sightingWriteEveryMs(core.settings.runnerOfflineAfterMs);

export class RunnerSessions {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session>();
  /** Sessions that said hello, by project and by runner: what a connect, a dispatch or a sweep looks at, never the whole fleet. */
  private readonly byProject = new Map<string, Set<Session>>();
  private readonly byRunner = new Map<string, Session>();
  /** Runners heard from (pongs, messages) since the last "last seen" write: one batched write every few seconds. */
  private readonly seen = new Set<string>();
  private lastSeenFlush = Date.now();
  private revocationsCheckedAt = Date.now();
  private lastFullRevocationCheck = Date.now();
  private readonly dispatching = new Map<string, Promise<void>>();
  /** Projects whose pass is running and which want another: a wake-up came meanwhile, or there may be more than a batch. */
  private readonly again = new Set<string>();
  /** Projects whose pass is running, where a runner freed a slot meanwhile: another pass if this one leaves work queued. */
  private readonly freedDuringPass = new Set<string>();
  /** Projects whose last dispatch found nothing queued, with no wake-up since: freed capacity needs no read. */
  private readonly queueEmpty = new Set<string>();
  /** Revocation checks about to be read, by key: messages of one key that arrive together share one read. */
  private readonly keyChecks = new Map<string, Promise<boolean>>();
  private readonly projectWatchers = new Map<string, () => void>();
  private readonly timer: NodeJS.Timeout;
  /** Audited shells ride on runner connections: shell_* messages and shell data frames go there (shellSessions.ts). */
  shells: ShellSessions | undefined;

  constructor(
    private readonly core: Core,
    private readonly log: FastifyBaseLogger,
    maxMessageBytes: number,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes, perMessageDeflate: false });
    // At least as often as "last seen" must be written, so a runner never looks offline between flushes.
    this.timer = setInterval(() => this.safetySweep(), Math.min(SAFETY_SWEEP_MS, sightEveryMs(core)));
  }

  /** Handles `upgrade` requests of the HTTP server for the v2 path; false when the path is not ours. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, address: string): boolean {
    if (new URL(request.url ?? '/', 'http://x').pathname !== V2_PATH) return false;
    const header = (name: string) => {
      const v = request.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    authenticateRunner(this.core, {
      bearer: bearerOf({ headers: request.headers } as never),
      timestamp: header(V1_HEADERS.timestamp),
      nonce: header(V1_HEADERS.nonce),
      address,
      // A WebSocket upgrade is never answered twice: any reuse of its nonce is a replay.
      fingerprint: "websocket upgrade",
    }).then(
      (caller) => this.wss.handleUpgrade(request, socket, head, (ws) => this.open(ws, caller)),
      (err: unknown) => {
        const status = isUserError(err) ? err.status : 500;
        const body = JSON.stringify(isUserError(err) ? { error: err.message, code: err.code } : { error: 'Internal error; the server logged it.', code: 'DC_INTERNAL' });
        if (!isUserError(err)) this.log.error({ err }, 'runner upgrade failed');
        socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      },
    );
    return true;
  }

  private open(ws: WebSocket, caller: RunnerCaller): void {
    const session = new Session(this.core, this.log, ws, caller, this);
    this.sessions.add(session);
    ws.on('close', (code) => {
      this.sessions.delete(session);
      this.forget(session);
      if (session.runner) this.seen.delete(session.runner.id);
      this.shells?.runnerGone(session);
      session.closed(code);
    });
  }

  /** Called by a session once it knows its runner. */
  ready(session: Session): void {
    const runnerId = session.runner!.id;
    const other = this.byRunner.get(runnerId);
    if (other && other !== session) {
      this.forget(other);
      other.close(CLOSE.replaced, 'replaced by a newer connection of the same runner');
    }
    this.byRunner.set(runnerId, session);
    const projectId = session.caller.project.id;
    let ofProject = this.byProject.get(projectId);
    if (!ofProject) {
      this.byProject.set(projectId, (ofProject = new Set()));
      this.projectWatchers.set(projectId, this.core.notifier.subscribe(topics.project(projectId), () => void this.dispatch(projectId)));
      this.queueEmpty.delete(projectId);
    }
    ofProject.add(session);
    this.shells?.runnerReady(session);
    void this.firstLook(projectId);
  }

  /** A new session's look at the queue: read only if the project may have work (reconnecting fleets are thousands of these). */
  private async firstLook(projectId: string): Promise<void> {
    try {
      if (!(await dispatchableProjects(this.core).mayHaveWork(projectId))) return;
    } catch (err) {
      this.log.warn({ err }, 'could not tell which projects have work; reading the queue');
    }
    await this.dispatch(projectId);
  }

  /**
   * Is this runner key revoked? Read after the question was asked, once for every message of the
   * key that asked in the same turn of the event loop (a fleet sharing a key sends many at once).
   */
  keyRevoked(keyId: string): Promise<boolean> {
    let check = this.keyChecks.get(keyId);
    if (!check) {
      check = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        // Asked from now on: another read, which starts after the question.
        this.keyChecks.delete(keyId);
        return (await this.core.store.revokedRunnerKeys([keyId])).length > 0;
      });
      this.keyChecks.set(keyId, check);
    }
    return check;
  }

  /** Takes a closed or replaced session out of the indexes; the project's wake-ups stop with its last session. */
  private forget(session: Session): void {
    const runnerId = session.runner?.id;
    if (runnerId !== undefined && this.byRunner.get(runnerId) === session) this.byRunner.delete(runnerId);
    const projectId = session.caller.project.id;
    const ofProject = this.byProject.get(projectId);
    if (!ofProject?.delete(session) || ofProject.size > 0) return;
    this.byProject.delete(projectId);
    this.queueEmpty.delete(projectId);
    this.projectWatchers.get(projectId)?.();
    this.projectWatchers.delete(projectId);
  }

  /** A session heard from its runner; written as "last seen" with the others at the next flush. */
  heard(session: Session): void {
    if (session.runner) this.seen.add(session.runner.id);
  }

  /**
   * Hands queued executions of the project to this process's runners with free capacity.
   * `capacityFreed`: called because a runner of ours freed a slot, not because work may have
   * been queued; skipped when the project's queue was found empty since its last wake-up.
   */
  dispatch(projectId: string, capacityFreed = false): Promise<void> {
    if (capacityFreed && this.queueEmpty.has(projectId)) return Promise.resolve();
    this.queueEmpty.delete(projectId);
    const busy = this.dispatching.get(projectId);
    if (busy) {
      // A wake-up asks for another look; a slot freed meanwhile only if the pass leaves work queued.
      (capacityFreed ? this.freedDuringPass : this.again).add(projectId);
      return busy;
    }
    const run = this.dispatchOnce(projectId)
      .catch((err) => this.log.error({ err }, 'dispatch failed'))
      .finally(() => {
        this.dispatching.delete(projectId);
        const freed = this.freedDuringPass.delete(projectId);
        if (this.again.delete(projectId) || (freed && !this.queueEmpty.has(projectId))) void this.dispatch(projectId);
      });
    this.dispatching.set(projectId, run);
    return run;
  }

  /**
   * A look at the queue first (a read: most wake-ups, such as an end, find nothing, and a read
   * waits for no commit); then runners with free slots claim what it saw, each its share in one
   * statement, all at once (one after the other, each waiting for a commit, claims capped
   * dispatch at one execution a commit). A full batch seen: the next pass looks again.
   */
  private async dispatchOnce(projectId: string): Promise<void> {
    const sessions = [...(this.byProject.get(projectId) ?? [])];
    const free = sessions.filter((s) => s.free() > 0).sort((a, b) => b.free() - a.free());
    if (free.length === 0) return;
    const queued = await this.core.store.countQueued(projectId, DISPATCH_BATCH);
    const share = Math.ceil(queued / free.length);
    let left = queued;
    const takes: Array<Promise<Taken>> = [];
    for (const s of free) {
      const n = Math.min(s.free(), share, left);
      if (n <= 0) break;
      left -= n;
      takes.push(s.take(n));
    }
    const results = await Promise.allSettled(takes);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const taken = results.map((r) => (r as PromiseFulfilledResult<Taken>).value);
    // What runners that may not run read-only executions left behind (read-only ones, maybe) is
    // for those that may, from their slots still free.
    let shortfall = taken.reduce((sum, t) => sum + (t.readOnlyToo ? 0 : t.asked - t.got), 0);
    if (shortfall > 0) {
      const more: Array<Promise<Taken>> = [];
      for (const s of sessions.filter((s) => s.enforcesReadOnly && s.free() > 0)) {
        const n = Math.min(s.free(), shortfall);
        if (n <= 0) break;
        shortfall -= n;
        more.push(s.take(n));
      }
      taken.push(...(await Promise.all(more)));
    }
    // Nothing our runners may run is left: all that was seen is taken, or a runner got less than
    // it asked for (unless another runner here may run what it may not: read-only executions).
    const anyReadOnly = sessions.some((s) => s.enforcesReadOnly);
    const tookAll = taken.every((t) => t.got === t.asked);
    const drained = queued === 0 || taken.some((t) => t.got < t.asked && (t.readOnlyToo || !anyReadOnly)) || (tookAll && left === 0 && queued < DISPATCH_BATCH);
    if (drained) {
      // A wake-up that came meanwhile asked for another pass: what it finds decides.
      if (!this.again.has(projectId) && this.byProject.has(projectId)) this.queueEmpty.add(projectId);
    } else if (tookAll && left === 0) this.again.add(projectId); // a full batch: there may be more
  }

  private safetySweep(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    this.sweep()
      .catch((err) => this.log.warn({ err }, 'runner safety sweep failed'))
      .finally(() => (this.sweeping = false));
  }
  private sweeping = false;

  /**
   * What wake-ups may have missed, at a cost that does not grow with the fleet: queued work of
   * this process's projects (one read), cancels of held executions (one read per 500 of them),
   * revoked keys (those revoked lately; every key once a minute), and the batched "last seen"
   * writes.
   */
  private async sweep(): Promise<void> {
    if (this.byProject.size > 0) for (const id of await this.core.store.projectsWithStatus(['queued'])) if (this.byProject.has(id)) void this.dispatch(id);
    await this.checkHeld();
    await this.checkRevocations();
    if (Date.now() - this.lastSeenFlush >= sightEveryMs(this.core) * 0.9) await this.flushSeen();
  }

  /** Cancels a lost wake-up did not push: every held execution of this process, read at once. */
  private async checkHeld(): Promise<void> {
    const held = new Map<string, { session: Session; entry: HeldEntry }>();
    for (const session of this.sessions) for (const [id, entry] of session.held) held.set(id, { session, entry });
    if (held.size === 0) return;
    for (const e of await this.core.store.getExecutions([...held.keys()])) {
      const { session, entry } = held.get(e.id)!;
      session.pushCancelIfWanted(e, entry);
    }
  }

  private async flushSeen(): Promise<void> {
    this.lastSeenFlush = Date.now();
    const ids = [...this.seen];
    this.seen.clear();
    const at = this.core.now();
    // A few hundred a statement, letting the event loop breathe in between (SQLite runs in this thread).
    for (let i = 0; i < ids.length; i += SEEN_PER_WRITE) {
      await this.core.store.markRunnersSeen(ids.slice(i, i + SEEN_PER_WRITE), at);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Covers a revocation whose wake-up was lost (another replica's NOTIFY while ours reconnected, or `admin revoke-key`). */
  private async checkRevocations(): Promise<void> {
    const started = Date.now();
    let revoked: Set<string>;
    if (started - this.lastFullRevocationCheck >= FULL_REVOCATION_CHECK_MS) {
      const keyIds = [...new Set([...this.sessions].map((s) => s.caller.key.id))];
      revoked = new Set();
      // In slices, letting the event loop breathe in between: 10,000 keys at once held it ~100 ms.
      for (let i = 0; i < keyIds.length; i += KEYS_PER_CHECK) {
        for (const id of await this.core.store.revokedRunnerKeys(keyIds.slice(i, i + KEYS_PER_CHECK))) revoked.add(id);
        await new Promise((resolve) => setImmediate(resolve));
      }
      this.lastFullRevocationCheck = started;
    } else {
      // Clocks of other hosts may differ a little: look back further than the last check.
      revoked = new Set(await this.core.store.runnerKeysRevokedSince(this.revocationsCheckedAt - REVOCATION_CLOCK_SLACK_MS));
    }
    this.revocationsCheckedAt = started;
    if (revoked.size === 0) return;
    for (const s of this.sessions) if (revoked.has(s.caller.key.id)) s.revoke();
  }

  /** Numbers for `status` and tests. */
  connected(): Array<{ runnerId: string | undefined; project: string; running: number }> {
    return [...this.sessions].map((s) => ({ runnerId: s.runner?.id, project: s.caller.project.name, running: s.held.size }));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushSeen().catch(() => undefined);
    for (const s of this.sessions) s.close(CLOSE.goingAway, 'server shutting down');
    for (const unsubscribe of this.projectWatchers.values()) unsubscribe();
    await Promise.allSettled([...this.dispatching.values()]);
    this.wss.close();
  }
}

/** An execution a session holds, with the cancel last pushed for it. */
interface HeldEntry {
  cancelSent: 'none' | 'graceful' | 'force';
  unsubscribe: () => void;
  /** The runner reported its end, which is being stored. */
  ending?: boolean;
}

class Session {
  runner: Runner | undefined;
  /** Executions this runner holds (dispatched or running), with the cancel we last pushed. */
  readonly held = new Map<string, HeldEntry>();
  private maxConcurrency = 1;
  /** Claims under way for this runner: slots taken before they are held. */
  private offering = 0;
  /** Its hello listed the "read_only" feature: it may be sent read-only executions. */
  enforcesReadOnly = false;
  /** The last message that waited for every message before it (see receive). */
  private barrier: Promise<void> = Promise.resolve();
  /** Messages about executions being handled, each execution's in its lane. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly lanes = new Map<string, Lane>();
  private alive = true;
  /** Its key was revoked: nothing more it sends is stored, and the socket is closing. */
  private revoked = false;
  /** It said it is stopping (no new work); a normal close after that means it stopped. */
  private draining = false;
  private readonly pinger: NodeJS.Timeout;
  private readonly unsubscribeKey: () => void;

  constructor(
    private readonly core: Core,
    private readonly log: FastifyBaseLogger,
    private readonly ws: WebSocket,
    readonly caller: RunnerCaller,
    private readonly registry: RunnerSessions,
  ) {
    this.unsubscribeKey = core.notifier.subscribe(topics.credential('runner_key', caller.key.id), () => this.revoke());
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('pong', () => {
      this.alive = true;
      void this.sight();
    });
    ws.on('error', (err) => this.log.warn({ err }, 'runner connection error'));
    this.pinger = setInterval(() => {
      if (!this.alive) return ws.terminate();
      this.alive = false;
      ws.ping();
    }, pingEveryMs(core));
  }

  free(): number {
    return this.ws.readyState === this.ws.OPEN && !this.revoked ? this.maxConcurrency - this.held.size - this.offering : 0;
  }

  send(msg: ServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN && !this.revoked) this.ws.send(JSON.stringify(msg));
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  /** Ends the connection because its runner key no longer works. */
  revoke(): void {
    if (this.revoked) return;
    this.revoked = true;
    this.log.warn({ runner: this.runner?.id, key: this.caller.key.prefix }, 'runner key revoked: closing its connection');
    this.close(CLOSE.unauthorized, `Runner API key ${this.caller.key.prefix}… was revoked.`);
    // A runner that ignores the close handshake is cut off all the same.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  closed(code: number): void {
    clearInterval(this.pinger);
    this.unsubscribeKey();
    // It said it was stopping and closed normally: offline now, not after the offline period.
    if (this.draining && code === 1000 && this.runner && !this.revoked) {
      v2.stopped(this.core, this.caller, this.runner).catch((err) => this.log.warn({ err }, 'cannot record a runner stopping'));
    }
    for (const h of this.held.values()) h.unsubscribe();
    this.held.clear();
  }

  /**
   * Claims up to `n` queued executions of its project for this runner and sends them; read-only
   * ones only if it enforces read-only mode (older v2 runners do not). The slots count as taken
   * meanwhile.
   */
  async take(n: number): Promise<Taken> {
    const taken: Taken = { asked: n, got: 0, readOnlyToo: this.enforcesReadOnly };
    if (!this.runner || n <= 0) return { ...taken, asked: 0 };
    this.offering += n;
    try {
      const claimed = await v2.claim(this.core, this.runner, n, this.enforcesReadOnly);
      taken.got = claimed.length;
      if (this.ws.readyState !== this.ws.OPEN || this.revoked) {
        // Never sent, so never started: they may go to another runner (which the project's wake-up tells).
        await Promise.all(claimed.map(({ execution }) => v2.unclaim(this.core, execution.id)));
        return taken;
      }
      for (const { execution, execute } of claimed) {
        this.hold(execution.id);
        this.send(execute);
      }
      return taken;
    } finally {
      this.offering -= n;
    }
  }

  private hold(id: string): void {
    if (this.held.has(id)) return;
    const unsubscribe = this.core.notifier.subscribe(topics.stop(id), () => void this.checkCancel(id));
    this.held.set(id, { cancelSent: 'none', unsubscribe });
  }

  private release(id: string): void {
    this.held.get(id)?.unsubscribe();
    this.held.delete(id);
    void this.registry.dispatch(this.caller.project.id, true);
  }

  private checkCancels(): void {
    for (const id of this.held.keys()) void this.checkCancel(id);
  }

  private async checkCancel(id: string): Promise<void> {
    const h = this.held.get(id);
    // Ending by the runner's own report: the final status it would read is the runner's.
    if (!h || h.ending) return;
    const e = await this.core.store.getExecution(id).catch(() => undefined);
    if (e) this.pushCancelIfWanted(e, h);
  }

  /** `h` is the held entry as it was when `e` was read. */
  pushCancelIfWanted(e: Execution, h: HeldEntry): void {
    const id = e.id;
    // Released meanwhile (its `finished` was acknowledged), or its end began meanwhile.
    if (this.held.get(id) !== h || h.ending) return;
    // The server gave up on it (cancelled before start, timed out, lost: final once reported): stop it for sure.
    const want = isTerminal(e.status) ? 'force' : e.cancelRequestedAt === null ? 'none' : e.cancelForce ? 'force' : 'graceful';
    if (want === 'none' || want === h.cancelSent || h.cancelSent === 'force') return;
    h.cancelSent = want;
    this.send({ type: 'cancel', execution_id: id, force: want === 'force', reason: e.cancelReason ?? 'user' });
  }

  private async sight(): Promise<void> {
    this.registry.heard(this);
  }

  /**
   * Before anything a runner sends is stored: is its key still good? The wake-up on revocation
   * closes the socket at once, but may come late (another process revoked it without one, or a
   * NOTIFY was lost); this makes sure nothing sent after a revocation is kept.
   */
  private async keyStillValid(): Promise<boolean> {
    if (this.revoked) return false;
    if (await this.registry.keyRevoked(this.caller.key.id)) this.revoke();
    return !this.revoked;
  }

  /**
   * Messages about different executions are handled side by side: each waits for one commit,
   * and a runner running many commands would otherwise have its ends stored one commit apart.
   * Those about one execution keep their order (`finished` is handled after the output before
   * it), except output frames among themselves: up to 8 of an execution are stored side by side,
   * each with its seq, stored once. Any other message (hello, commands, draining, shells, one
   * that cannot be read) waits for every message before it, and every message after it waits
   * for it.
   */
  private receive(data: RawData, isBinary: boolean): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const incoming = readIncoming(bytes, isBinary);
    const handle = () => this.onMessage(incoming).catch((err) => this.fail(err));
    const id = incoming.executionId;
    if (id === undefined || this.inFlight.size >= MAX_MESSAGES_AT_ONCE) {
      this.barrier = Promise.all([this.barrier, ...this.inFlight]).then(handle);
      return;
    }
    let lane = this.lanes.get(id);
    if (!lane) this.lanes.set(id, (lane = { tail: Promise.resolve(), frames: new Set(), pending: 0 }));
    const sideBySide = incoming.kind === 'frame' && lane.frames.size < MAX_FRAMES_STORED_AT_ONCE;
    const handled: Promise<void> = (sideBySide ? Promise.all([this.barrier, lane.tail]) : Promise.all([this.barrier, lane.tail, ...lane.frames])).then(handle);
    if (sideBySide) lane.frames.add(handled);
    else lane.tail = handled;
    lane.pending++;
    this.inFlight.add(handled);
    const settled = lane;
    void handled.finally(() => {
      this.inFlight.delete(handled);
      settled.frames.delete(handled);
      if (--settled.pending === 0 && this.lanes.get(id) === settled) this.lanes.delete(id);
    });
  }

  private async onMessage(incoming: Incoming): Promise<void> {
    if (this.revoked) return;
    if (incoming.kind !== 'json' && !(await this.keyStillValid())) return;
    // ---- shells (shellSessions.ts): terminal output frames
    if (incoming.kind === 'shell') return this.registry.shells && this.runner ? this.registry.shells.fromRunnerFrame(this, incoming.bytes) : this.onOutputFrame(decodeOutputFrame(incoming.bytes));
    if (incoming.kind === 'frame') return this.onOutputFrame(incoming.decoded);
    const parsed = incoming.parsed;
    const type = (parsed as { type?: unknown } | undefined)?.type;
    // ---- shells (shellSessions.ts): shell_* messages, validated there
    if (typeof type === 'string' && type.startsWith('shell_') && this.registry.shells && this.runner) {
      if (!(await this.keyStillValid())) return;
      return this.registry.shells.fromRunner(this, parsed);
    }
    // Own keys only: a type of "__proto__" or "constructor" names no checker.
    const checker = typeof type === 'string' && Object.hasOwn(checkers, type) ? checkers[type as RunnerMessage['type']] : undefined;
    if (!checker) {
      const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 100)) : typeof type;
      this.send({ type: 'error', code: 'DC_VALIDATION', message: `Not a protocol v2 message (type ${shown}).` });
      return;
    }
    if (!checker.Check(parsed)) {
      const first = [...checker.Errors(parsed)][0];
      this.send({ type: 'error', code: 'DC_VALIDATION', message: `${type}${first?.path ?? ''}: ${first?.message ?? 'invalid'}` });
      return;
    }
    const msg = parsed;
    if (msg.type !== 'hello' && !this.runner) {
      this.send({ type: 'error', code: 'DC_BAD_REQUEST', message: 'Say hello first.' });
      return;
    }
    if (msg.type !== 'draining' && !(await this.keyStillValid())) return;
    switch (msg.type) {
      case 'hello': {
        this.caller.instance = msg.runner_id;
        const result = await v2.hello(this.core, this.caller, msg);
        this.runner = result.runner;
        this.maxConcurrency = msg.max_concurrency;
        this.enforcesReadOnly = msg.features?.includes('read_only') ?? false;
        for (const id of msg.running) if (!result.cancel.includes(id)) this.hold(id);
        this.send({ type: 'welcome', runner_id: result.runner.id, commands_in_sync: result.commandsInSync, cancel: result.cancel });
        this.registry.ready(this);
        this.checkCancels();
        return;
      }
      case 'commands': {
        const synced = await v2.syncCommands(this.core, this.caller, msg);
        // The catalogue was taken; only these entries were not: a warning, not a refused message.
        for (const r of synced.refusedSchedules) this.send({ type: 'warning', code: r.code, message: r.message });
        return;
      }
      case 'draining':
        this.maxConcurrency = 0;
        this.draining = true;
        return;
      case 'started':
        this.hold(msg.execution_id);
        if (!(await v2.started(this.core, this.caller, this.runner!, msg).catch(() => false))) {
          this.held.get(msg.execution_id)!.cancelSent = 'force';
          this.send({ type: 'cancel', execution_id: msg.execution_id, force: true, reason: 'user' });
        }
        await this.sight();
        return;
      case 'output':
        return this.onOutput(msg);
      case 'finished': {
        const h = this.held.get(msg.execution_id);
        if (h) h.ending = true;
        try {
          await forgivingUnknown(v2.finished(this.core, this.caller, this.runner!, msg));
        } finally {
          if (h) h.ending = false;
        }
        this.send({ type: 'finished_ack', execution_id: msg.execution_id });
        this.release(msg.execution_id);
        return;
      }
    }
  }

  /** An output frame: its header is checked like a message; its bytes are stored as they are. */
  private async onOutputFrame(decoded: ReturnType<typeof decodeOutputFrame>): Promise<void> {
    const header = decoded?.header;
    if (!decoded || !outputHeader.Check(header)) {
      const first = decoded ? [...outputHeader.Errors(header)][0] : undefined;
      this.send({ type: 'error', code: 'DC_VALIDATION', message: first ? `output${first.path}: ${first.message}` : 'Not an output frame.' });
      return;
    }
    if (!this.runner) {
      this.send({ type: 'error', code: 'DC_BAD_REQUEST', message: 'Say hello first.' });
      return;
    }
    return this.onOutput({ ...header, data: decoded.data });
  }

  private async onOutput(msg: OutputHeader & { data: string | Uint8Array }): Promise<void> {
    await forgivingUnknown(v2.output(this.core, this.caller, msg));
    this.send({ type: 'ack', execution_id: msg.execution_id, seq: msg.seq });
    await this.sight();
  }

  private fail(err: unknown): void {
    if (isUserError(err)) {
      this.send({ type: 'error', code: err.code, message: err.message });
      return;
    }
    this.log.error({ err }, 'runner message failed');
    // The runner keeps what was not acknowledged and sends it again after reconnecting.
    this.close(1011, 'internal error');
  }
}

/**
 * Output or an ending for an execution the server does not know (deleted, or another project's):
 * acknowledged all the same, or the runner would keep and resend it forever.
 */
async function forgivingUnknown(work: Promise<unknown>): Promise<void> {
  try {
    await work;
  } catch (err) {
    if (isUserError(err) && err.code === 'DC_UNKNOWN_EXECUTION') return;
    throw err;
  }
}

/** What a runner's claim asked for and got. */
interface Taken {
  asked: number;
  got: number;
  /** It may run read-only executions: getting less than asked means nothing at all was left queued. */
  readOnlyToo: boolean;
}

/** One execution's messages in flight: the last that waits for those before it, and output frames stored side by side after it. */
interface Lane {
  tail: Promise<void>;
  frames: Set<Promise<void>>;
  pending: number;
}

/** A runner's message, read once: what it is, and the execution it concerns if it concerns one. */
type Incoming = ({ kind: 'json'; parsed: unknown } | { kind: 'frame'; decoded: ReturnType<typeof decodeOutputFrame> } | { kind: 'shell'; bytes: Buffer }) & {
  executionId?: string;
};

function readIncoming(bytes: Buffer, isBinary: boolean): Incoming {
  if (isBinary) {
    if (isShellFrame(bytes)) return { kind: 'shell', bytes };
    const decoded = decodeOutputFrame(bytes);
    return { kind: 'frame', decoded, executionId: executionIdOf(decoded?.header, true) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString());
  } catch {
    parsed = undefined;
  }
  return { kind: 'json', parsed, executionId: executionIdOf(parsed, false) };
}

function executionIdOf(value: unknown, isFrameHeader: boolean): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { type, execution_id: id } = value as { type?: unknown; execution_id?: unknown };
  return typeof id === 'string' && (isFrameHeader || EXECUTION_MESSAGES.has(type)) ? id : undefined;
}
