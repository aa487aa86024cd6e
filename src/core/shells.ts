/**
 * Audited shells: the rules. Who may open one (operators) and who may make one writable (project
 * admins: domain/roles.ts), whether the project allows shells at all (off until an admin turns them on), the
 * reasons, and what is recorded: every refusal and every change is an audit event, and a shell
 * becoming writable also raises `shell.writable` for the project's channels (kind `shell`).
 * The live relay is server/shellSessions.ts; it calls these and never writes a session itself.
 */
import { randomUUID } from 'node:crypto';
import type { Actor, Project, User } from '../domain/model.js';
import { UserError, type ErrorCode } from '../shared/errors.js';
import type { ShellSession, ShellSettings } from '../store/shellStore.js';
import type { Core } from './context.js';
import { audit, SYSTEM_ACTOR } from './audit.js';
import { raise } from './notify.js';
import { freshGrants, requirePermission, requirePerson, type Principal } from './access.js';
import { may, PERMISSIONS } from '../domain/roles.js';

export const DEFAULT_IDLE_TIMEOUT_SECONDS = 15 * 60;
export const MIN_IDLE_TIMEOUT_SECONDS = 2;
export const MAX_IDLE_TIMEOUT_SECONDS = 24 * 3600;
export const MAX_REASON_CHARS = 2000;

/** The person at the keyboard: their account, how they signed in, and what they may do. */
export type ShellPerson = Principal & { user: User };

/** A CI token has no person to sit at a keyboard. */
export function shellPerson(p: Principal): ShellPerson {
  requirePerson(p, 'open a shell');
  return p as ShellPerson;
}

export async function shellSettings(core: Core, projectId: string): Promise<ShellSettings> {
  return (await core.store.shells.getSettings(projectId)) ?? { projectId, enabled: false, idleTimeoutSeconds: DEFAULT_IDLE_TIMEOUT_SECONDS, updatedAt: 0, updatedBy: '' };
}

export async function updateShellSettings(core: Core, who: ShellPerson, project: Project, patch: { enabled?: boolean; idle_timeout_seconds?: number }): Promise<ShellSettings> {
  await requirePermission(core, who, project, 'project.manage');
  const idle = patch.idle_timeout_seconds;
  if (idle !== undefined && (!Number.isInteger(idle) || idle < MIN_IDLE_TIMEOUT_SECONDS || idle > MAX_IDLE_TIMEOUT_SECONDS)) {
    throw new UserError('DC_VALIDATION', `idle_timeout_seconds must be a whole number of seconds from ${MIN_IDLE_TIMEOUT_SECONDS} to ${MAX_IDLE_TIMEOUT_SECONDS}.`, { field: 'idle_timeout_seconds' });
  }
  const before = await shellSettings(core, project.id);
  const next: ShellSettings = { projectId: project.id, enabled: patch.enabled ?? before.enabled, idleTimeoutSeconds: idle ?? before.idleTimeoutSeconds, updatedAt: core.now(), updatedBy: who.actor.label };
  await core.store.shells.putSettings(next);
  await audit(core, who.actor, { action: 'shell.settings', projectId: project.id, details: { enabled: next.enabled, idle_timeout_seconds: next.idleTimeoutSeconds } });
  return next;
}

/** Audits the refusal, then throws it: nothing was started. */
async function refuse(core: Core, who: ShellPerson, projectId: string | null, action: string, code: ErrorCode, message: string, details: Record<string, unknown> = {}): Promise<never> {
  await audit(core, who.actor, { action, projectId, outcome: 'denied', details: { code, message, ...details } });
  throw new UserError(code, message);
}

export function cleanReason(reason: string | undefined | null): string {
  return (reason ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/**
 * May this person open a shell on this project now (and writable at once, when asked)? Each
 * refusal is audited with its DC_ code; the first that applies is the one said.
 */
export async function checkOpen(core: Core, who: ShellPerson, project: Project, opts: { write: boolean; reason?: string; runnerOnline: boolean }): Promise<void> {
  const action = 'shell.open';
  if (!may(who.grants, project.id, 'shell.read')) await refuse(core, who, project.id, action, 'DC_FORBIDDEN', `Opening a shell needs the ${PERMISSIONS['shell.read']} role in project ${project.name}.`);
  if (!(await shellSettings(core, project.id)).enabled) {
    await refuse(core, who, project.id, action, 'DC_SHELLS_OFF', `Shells are off for project "${project.name}": an admin turns them on with \`djangocommand shells --project ${project.name} --enable\`.`);
  }
  if (opts.write) {
    if (!may(who.grants, project.id, 'shell.write')) await refuse(core, who, project.id, action, 'DC_FORBIDDEN', `A writable shell needs the ${PERMISSIONS['shell.write']} role in project ${project.name}.`);
    if (!cleanReason(opts.reason)) await refuse(core, who, project.id, action, 'DC_SHELL_REASON', 'A writable shell needs a reason: --reason "what you will change and why".');
    if (cleanReason(opts.reason).length > MAX_REASON_CHARS) await refuse(core, who, project.id, action, 'DC_VALIDATION', `The reason is longer than ${MAX_REASON_CHARS} characters.`);
  }
  if (!opts.runnerOnline) {
    await refuse(core, who, project.id, action, 'DC_NO_RUNNER', `No runner of project "${project.name}" is connected to this server: start one (\`djangocommand runner start\`) and try again.`);
  }
}

export async function createShellSession(core: Core, who: ShellPerson, project: Project, opts: { runnerId: string; cols: number; rows: number; write: boolean; reason?: string }): Promise<ShellSession> {
  const session: ShellSession = {
    id: randomUUID(),
    projectId: project.id,
    userId: who.user.id,
    userLabel: who.actor.label,
    runnerId: opts.runnerId,
    status: 'starting',
    readOnly: true,
    becameWritable: false,
    cols: opts.cols,
    rows: opts.rows,
    openedAt: core.now(),
    endedAt: null,
    endReason: null,
    exitCode: null,
    recordingBytes: 0,
    recordingParts: 0,
  };
  await core.store.shells.createSession(session);
  await audit(core, who.actor, { action: 'shell.open', projectId: project.id, details: { session_id: session.id, runner_id: opts.runnerId, write: opts.write, ...(opts.write ? { reason: cleanReason(opts.reason) } : {}) } });
  return session;
}

export function shellLink(core: Core, sessionId: string): string | null {
  const base = core.notifications?.publicUrl ?? null;
  return base ? `${base}/#/shells/${encodeURIComponent(sessionId)}` : null;
}

/**
 * The server's decision to make a shell writable: the person is checked again (now, not when the
 * shell opened), the reason must be given; then it is audited and announced. Returns normally
 * when granted; throws an audited UserError when not.
 */
export async function grantWritable(core: Core, who: ShellPerson, session: ShellSession, reasonIn: string, via: 'shell' | 'client' | 'open'): Promise<void> {
  const action = 'shell.writable';
  const grants = await freshGrants(core, who);
  if (!grants || !may(grants, session.projectId, 'shell.write')) {
    await refuse(core, who, session.projectId, action, 'DC_FORBIDDEN', `Making a shell writable needs the ${PERMISSIONS['shell.write']} role in the project.`, { session_id: session.id });
  }
  const reason = cleanReason(reasonIn);
  if (!reason) await refuse(core, who, session.projectId, action, 'DC_SHELL_REASON', 'Making a shell writable needs a reason.', { session_id: session.id });
  if (reason.length > MAX_REASON_CHARS) await refuse(core, who, session.projectId, action, 'DC_VALIDATION', `The reason is longer than ${MAX_REASON_CHARS} characters.`, { session_id: session.id });
  if (session.status !== 'open' && session.status !== 'starting') await refuse(core, who, session.projectId, action, 'DC_SHELL_ENDED', 'This shell has ended.', { session_id: session.id });
  await core.store.shells.updateSession(session.id, { becameWritable: true });
  session.becameWritable = true;
  const project = await core.store.getProject(session.projectId);
  await audit(core, who.actor, { action, projectId: session.projectId, details: { session_id: session.id, reason, via } });
  await raise(core, {
    type: 'shell.writable',
    projectId: session.projectId,
    details: { user: who.actor.label, project: project?.name ?? session.projectId, reason, session_id: session.id, link: shellLink(core, session.id) },
  });
}

/** The shell enforces read-only again (asked by the person, or by readonly() in the shell). */
export async function recordReadOnly(core: Core, actor: Actor, session: ShellSession): Promise<void> {
  await audit(core, actor, { action: 'shell.read_only', projectId: session.projectId, details: { session_id: session.id } });
}

export async function markShellOpen(core: Core, session: ShellSession): Promise<void> {
  session.status = 'open';
  await core.store.shells.updateSession(session.id, { status: 'open' });
}

export async function refuseShellOnRunner(core: Core, who: ShellPerson, session: ShellSession, reason: string): Promise<never> {
  session.status = 'refused';
  await core.store.shells.updateSession(session.id, { status: 'refused', endedAt: core.now(), endReason: reason });
  return refuse(core, who, session.projectId, 'shell.open', 'DC_SHELL_REFUSED', `The runner refused the shell: ${reason}`, { session_id: session.id });
}

/** Ends a session once: its end, why, and an audit event (by the person, or the system for idle, runner gone...). */
export async function endShellSession(core: Core, actor: Actor, session: ShellSession, reason: string, exitCode: number | null): Promise<void> {
  if (session.status === 'ended' || session.status === 'refused') return;
  session.status = 'ended';
  session.endedAt = core.now();
  session.endReason = reason;
  session.exitCode = exitCode;
  await core.store.shells.updateSession(session.id, { status: 'ended', endedAt: session.endedAt, endReason: reason, exitCode });
  await audit(core, actor, {
    action: 'shell.end',
    projectId: session.projectId,
    details: { session_id: session.id, reason, exit_code: exitCode, duration_ms: session.endedAt - session.openedAt, became_writable: session.becameWritable },
  });
}

/** A live session is touched this often by the process relaying it; one untouched for STALE_AFTER_MS lost it. */
export const TOUCH_EVERY_MS = 30_000;
export const STALE_AFTER_MS = 120_000;

/**
 * Ends sessions whose server process stopped (crashed, restarted) without ending them: each once,
 * whichever replica gets there first, with an audit event.
 */
export async function endStaleShells(core: Core): Promise<number> {
  const before = core.now() - STALE_AFTER_MS;
  let ended = 0;
  for (const s of await core.store.shells.listStale(before, 100)) {
    const reason = 'the server relaying it stopped';
    if (!(await core.store.shells.endIfStale(s.id, before, core.now(), reason))) continue;
    ended++;
    await audit(core, SYSTEM_ACTOR, { action: 'shell.end', projectId: s.projectId, details: { session_id: s.id, reason, exit_code: null, became_writable: s.becameWritable } });
  }
  return ended;
}

// ---- the recording ----------------------------------------------------------------------------

/** A part is written once this many bytes of events are waiting, or after FLUSH_MS. */
const PART_BYTES = 256 * 1024;
const FLUSH_MS = 1000;

/**
 * The session's asciicast v2 recording, written to the store in parts as it goes: the header
 * line is part 1, then event lines `[seconds, "o" | "i" | "r" | "m", text]`. Output and input are
 * decoded as UTF-8 streams, so a character split across two frames is recorded whole. Memory
 * holds at most one part that is being written and the next being gathered.
 */
export class ShellRecording {
  private lines: string[] = [];
  private bytes = 0;
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly out = new TextDecoder('utf-8');
  private readonly in = new TextDecoder('utf-8');
  private closed = false;
  /** Bytes handed to the store and not yet written. */
  private writing = 0;

  constructor(
    private readonly core: Core,
    private readonly session: ShellSession,
    private readonly onError: (err: unknown) => void,
  ) {
    const header = { version: 2, width: session.cols, height: session.rows, timestamp: Math.floor(session.openedAt / 1000), title: `djangocommand shell by ${session.userLabel}`, env: { TERM: 'xterm-256color', SHELL: 'manage.py shell' } };
    this.lines.push(JSON.stringify(header) + '\n');
    this.flush();
  }

  private event(code: string, text: string): void {
    if (this.closed || text === '') return;
    const t = Math.max(0, this.core.now() - this.session.openedAt) / 1000;
    const line = JSON.stringify([Number(t.toFixed(6)), code, text]) + '\n';
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= PART_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  output(data: Uint8Array): void {
    this.event('o', this.out.decode(data, { stream: true }));
  }

  input(data: Uint8Array): void {
    this.event('i', this.in.decode(data, { stream: true }));
  }

  /** Typed while the terminal hid it (a password): kept out, but the decoder stays in step. */
  hiddenInput(): void {
    this.in.decode(new Uint8Array(0));
  }

  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  marker(label: string): void {
    this.event('m', label);
  }

  /** Bytes gathered or being written, not yet in the store: the relay pauses the shell when this grows. */
  get backlog(): number {
    return this.bytes + this.writing;
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const data = this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    const seq = ++this.seq;
    this.writing += data.length;
    this.chain = this.chain
      .then(() => this.core.store.shells.appendRecording(this.session.id, seq, data))
      .catch(this.onError)
      .finally(() => (this.writing -= data.length));
  }

  /** Writes what is left; the recording takes nothing after this. */
  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    await this.chain;
  }
}

/** The whole recording, as asciicast v2 text, part by part (never all in memory). */
export async function* recordingParts(core: Core, sessionId: string): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const parts = await core.store.shells.readRecording(sessionId, after, 16);
    if (parts.length === 0) return;
    for (const p of parts) yield p.data;
    after = parts[parts.length - 1].seq;
  }
}
