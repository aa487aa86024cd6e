/**
 * The runner's side of audited shells: for each `shell_open` the server pushes, it starts
 * shell.py with the project's interpreter (which makes the pseudo-terminal and runs
 * `manage.py shell` read-only), and relays between it and the server: typed bytes and control
 * in, terminal output and events out. The runner decides nothing: writable comes from the
 * server, and the Django side may refuse shells altogether (DJANGOCOMMAND_ALLOW_SHELL = False).
 *
 * shell.py's stdin/stdout carry frames: one byte kind (D bytes, C JSON), u32 length, payload.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sea from 'node:sea';
import { bootstrapPath, type PythonProject } from './bootstrap.js';
import type { ShellServerMessage } from '../shared/shellProtocol.js';
import { encodeShellFrame } from '../shared/shellFrame.js';
import type { Connection } from './connection.js';
import type { Log } from './runner.js';

/** The SEA asset name of shell.py in the runner binary (sea-config.json). */
export const SHELL_ASSET = 'shell.py';
const CLOSE_GRACE_MS = 3000;
/** Output waiting in the socket to the server: above HIGH the shell's output is not read until below LOW. */
const SOCKET_HIGH_BYTES = 8 * 1024 * 1024;
const SOCKET_LOW_BYTES = 2 * 1024 * 1024;

/** shell.py sits beside bootstrap.py (it imports it): in the sources, the npm package, or the binary's extracted folder. */
export function shellScriptPath(): string {
  const dir = path.dirname(bootstrapPath());
  const file = path.join(dir, 'shell.py');
  if (sea.isSea()) {
    const source = sea.getAsset(SHELL_ASSET, 'utf8');
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== source) {
      const partial = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(partial, source, { mode: 0o600 });
      fs.renameSync(partial, file);
    }
  }
  return file;
}

interface LiveShell {
  id: string;
  child: ChildProcess;
  exited: boolean;
  /** Why the runner closed it (stopping, reconnected): told to the server with its end. */
  closeReason?: string;
}

export class ShellHost {
  private readonly shells = new Map<string, LiveShell>();

  constructor(
    private readonly project: PythonProject,
    private readonly connection: Connection,
    private readonly log: Log,
  ) {}

  get count(): number {
    return this.shells.size;
  }

  handle(msg: ShellServerMessage): void {
    const live = this.shells.get(msg.session_id);
    switch (msg.type) {
      case 'shell_open':
        if (!live) this.open(msg.session_id, msg.cols, msg.rows, msg.read_only);
        return;
      case 'shell_input':
        if (live) this.write(live, 'D', Buffer.from(msg.data, 'base64'));
        return;
      case 'shell_resize':
        if (live) this.control(live, { op: 'resize', cols: msg.cols, rows: msg.rows });
        return;
      case 'shell_mode':
        if (live) this.control(live, { op: 'mode', read_only: msg.read_only, request_id: msg.request_id ?? null });
        return;
      case 'shell_answer':
        if (live) this.control(live, { op: 'answer', request_id: msg.request_id, granted: false, message: msg.message });
        return;
      case 'shell_flow':
        if (!live) return;
        this.log('info', `shell ${live.id}: output ${msg.paused ? 'paused: the server is behind' : 'resumed'}`);
        this.control(live, { op: 'flow', paused: msg.paused });
        return;
      case 'shell_close':
        if (live) this.close(live, msg.reason);
        return;
    }
  }

  /** Ends every shell (the runner stops, or its connection was replaced: the server ended them). */
  closeAll(reason: string): void {
    for (const live of this.shells.values()) this.close(live, reason);
  }

  private send(obj: Record<string, unknown>): void {
    this.connection.send(JSON.stringify(obj));
  }

  private open(id: string, cols: number, rows: number, readOnly: boolean): void {
    let script: string;
    try {
      script = shellScriptPath();
    } catch (err) {
      this.send({ type: 'shell_refused', session_id: id, reason: `the runner cannot find shell.py: ${(err as Error).message}` });
      return;
    }
    const child = spawn(this.project.python, [script, readOnly ? '1' : '0', String(cols), String(rows)], {
      cwd: this.project.projectDir,
      // The size is the pseudo-terminal's (set and changed by shell.py): COLUMNS/LINES would pin it.
      env: { ...withoutSize(this.project.env), TERM: 'xterm-256color', PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const live: LiveShell = { id, child, exited: false };
    this.shells.set(id, live);
    this.log('info', `shell ${id}: starting (${readOnly ? 'read-only' : 'writable'})`);
    let pending: Buffer = Buffer.alloc(0);
    let ended = false;
    const end = (exitCode: number | null, reason?: string) => {
      if (ended) return;
      ended = true;
      this.send({ type: 'shell_exited', session_id: id, exit_code: exitCode, ...(reason ? { reason: reason.slice(0, 2000) } : {}) });
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 5) {
        const length = pending.readUInt32BE(1);
        if (pending.length < 5 + length) break;
        const kind = String.fromCharCode(pending[0]);
        const payload = pending.subarray(5, 5 + length);
        pending = pending.subarray(5 + length);
        if (kind === 'D') {
          this.connection.send(encodeShellFrame(id, payload));
          this.holdWhileBehind(child);
        }
        else if (kind === 'C') this.onEvent(id, payload, end);
      }
    });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-2000)));
    child.stdin!.on('error', () => undefined);
    child.on('error', (err) => {
      this.send({ type: 'shell_refused', session_id: id, reason: `cannot start ${this.project.python}: ${err.message}` });
      ended = true;
    });
    child.on('exit', (code) => {
      live.exited = true;
      this.shells.delete(id);
      const why = stderr.trim().split('\n').pop();
      end(null, live.closeReason ?? (code === 0 ? undefined : `the shell process ended (exit code ${code})${why ? `: ${why}` : ''}`));
      this.log('info', `shell ${id}: ended`);
    });
  }

  private onEvent(id: string, payload: Buffer, end: (code: number | null, reason?: string) => void): void {
    let ev: { event?: string; [k: string]: unknown };
    try {
      ev = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    switch (ev.event) {
      case 'started':
        return this.send({ type: 'shell_started', session_id: id, pid: Number(ev.pid) || 0, read_only: ev.read_only === true });
      case 'refused':
        this.log('warn', `shell ${id}: refused: ${String(ev.reason)}`);
        return this.send({ type: 'shell_refused', session_id: id, reason: String(ev.reason).slice(0, 2000) });
      case 'echo':
        return this.send({ type: 'shell_echo', session_id: id, on: ev.on === true });
      case 'writable_request':
        return this.send({ type: 'shell_writable_request', session_id: id, request_id: String(ev.request_id), reason: String(ev.reason ?? '').slice(0, 2000) });
      case 'mode':
        return this.send({ type: 'shell_mode_changed', session_id: id, read_only: ev.read_only === true });
      case 'exited':
        return end(typeof ev.code === 'number' ? Math.max(-255, Math.min(255, ev.code)) : null, this.shells.get(id)?.closeReason);
    }
  }

  /** The socket to the server is behind: stop reading the shell (it waits on its next write) until it catches up. */
  private holdWhileBehind(child: ChildProcess): void {
    if (this.connection.buffered() < SOCKET_HIGH_BYTES || child.stdout!.isPaused()) return;
    child.stdout!.pause();
    const check = setInterval(() => {
      if (this.connection.buffered() > SOCKET_LOW_BYTES && child.exitCode === null && this.connection.isOpen()) return;
      clearInterval(check);
      child.stdout!.resume();
    }, 50);
  }

  private write(live: LiveShell, kind: 'D' | 'C', payload: Buffer): void {
    if (live.exited || !live.child.stdin?.writable) return;
    const head = Buffer.allocUnsafe(5);
    head.write(kind, 0, 'latin1');
    head.writeUInt32BE(payload.length, 1);
    live.child.stdin.write(Buffer.concat([head, payload]));
  }

  private control(live: LiveShell, obj: Record<string, unknown>): void {
    this.write(live, 'C', Buffer.from(JSON.stringify(obj), 'utf8'));
  }

  private close(live: LiveShell, reason: string): void {
    this.log('info', `shell ${live.id}: closing (${reason})`);
    live.closeReason ??= reason;
    this.control(live, { op: 'close' });
    live.child.stdin?.end();
    const timer = setTimeout(() => {
      if (!live.exited) live.child.kill('SIGKILL');
    }, CLOSE_GRACE_MS);
    timer.unref();
  }
}

function withoutSize(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { COLUMNS: _c, LINES: _l, ...rest } = env;
  return rest;
}
