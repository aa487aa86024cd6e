/**
 * Warm start: one pre-loaded Django process (bootstrap.py `warm`) that forks each command,
 * instead of paying Python + Django start-up every time. The fork reads and writes exactly what
 * a cold `python manage.py` would (see bootstrap.py); its output comes back through two FIFOs.
 *
 * When the warm process says the project's code changed ("stale"), or it died, that command
 * runs cold and a new warm process is started in the background. Every failure path ends in a
 * cold start, never in a lost command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { bootstrapPath, type PythonProject } from './bootstrap.js';
import { signalGroup, type Launched } from './process.js';
import { forgetProcess, recordProcess } from './leftovers.js';
import type { Log, WarmLauncher } from './runner.js';

interface Reply {
  id?: string;
  event: string;
  pid?: number;
  exit_code?: number;
  error?: string;
  reason?: string;
  changed?: string[];
  paths?: string[][];
}

const READY_TIMEOUT_MS = 120_000;
/** FIFO pairs made ahead of time (by the warm process, see bootstrap.py `fifos`), so a run waits for none. */
const SPARE_FIFOS = 2;

export class WarmProcess implements WarmLauncher {
  private child: ChildProcess | undefined;
  private socket: net.Socket | undefined;
  private ready = false;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private readonly waiting = new Map<string, (r: Reply) => void>();
  private readonly exits = new Map<string, (code: number) => void>();
  /** Pids of the runs started and not seen to exit, by run id. */
  private readonly pids = new Map<string, number>();
  private readonly dir: string;
  private restarts = 0;
  private readonly spares: Array<{ out: string; err: string }> = [];
  private refilling = false;

  constructor(
    private readonly project: PythonProject,
    private readonly stateDir: string,
    private readonly log: Log,
  ) {
    this.dir = path.join(stateDir, 'warm');
  }

  /** Starts the warm process; resolves when it is ready (or failed: then commands run cold). */
  start(): Promise<void> {
    this.starting ??= this.spawnWarm().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async spawnWarm(): Promise<void> {
    // Sockets and FIFOs a killed runner left behind are nobody's now.
    if (this.restarts === 0) fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const socketPath = path.join(this.dir, `control-${process.pid}-${this.restarts++}.sock`);
    fs.rmSync(socketPath, { force: true });
    const child = spawn(this.project.python, [bootstrapPath(), 'warm', socketPath], {
      cwd: this.project.projectDir,
      env: { ...this.project.env, PYTHONUNBUFFERED: '1' },
      // stdin stays open: the warm process exits when it reaches EOF, i.e. when we die (it also
      // asks for a parent-death signal, see bootstrap.py).
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group: Ctrl-C on the runner's terminal is the runner's to handle
      // (graceful stop); it must not kill the warm process and the commands forked from it.
      detached: true,
    });
    this.child = child;
    const warmPid = child.pid;
    if (warmPid) {
      recordProcess(this.stateDir, { pid: warmPid, group: true, kind: 'warm' });
      child.once('exit', () => forgetProcess(this.stateDir, warmPid));
    }
    createInterface({ input: child.stderr! }).on('line', (line) => this.log('info', `warm: ${line}`));
    const readyLine = await new Promise<Reply | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), READY_TIMEOUT_MS);
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as Reply);
        } catch {
          resolve(undefined);
        }
      });
      child.once('exit', () => resolve(undefined));
    });
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.ready = false;
      this.socket?.destroy();
      this.failAll();
      if (!this.stopped) {
        this.log('warn', `warm process exited (${signal ?? code}); the next command starts cold while a new one loads`);
        setTimeout(() => void this.start(), 1000);
      }
    });
    if (readyLine?.event !== 'ready') {
      this.log('warn', `warm process did not start (${readyLine?.error ?? 'no ready line'}); commands start cold`);
      child.kill('SIGKILL');
      return;
    }
    this.socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath, () => resolve(s));
      s.once('error', reject);
    });
    const socket = this.socket;
    // readline passes the socket's errors on: the socket's own handler below reports them.
    createInterface({ input: socket }).on('line', (line) => this.onReply(line)).on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.ready = false;
      // Nothing more can be answered on it: whoever waits starts cold.
      for (const [id, resolve] of this.waiting) resolve({ id, event: 'error', error: 'warm process connection closed' });
      this.waiting.clear();
    });
    // A warm process that is leaving (stale, or died) closes its end: the next command starts cold.
    socket.on('error', (err) => {
      if (this.socket === socket) this.ready = false;
      this.log('warn', `warm process connection: ${err.message}`);
    });
    this.ready = true;
    void this.refill();
    this.log('info', `warm process ready (pid ${child.pid}, ${(readyLine as unknown as { startup_ms: number }).startup_ms} ms to load Django)`);
  }

  private onReply(line: string): void {
    let r: Reply;
    try {
      r = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    if (!r.id) return;
    if (r.event === 'exited') {
      this.exits.get(r.id)?.(r.exit_code ?? 1);
      this.exits.delete(r.id);
      this.pids.delete(r.id);
      return;
    }
    this.waiting.get(r.id)?.(r);
    this.waiting.delete(r.id);
  }

  private failAll(): void {
    for (const [id, resolve] of this.waiting) resolve({ id, event: 'error', error: 'warm process gone' });
    this.waiting.clear();
    // A fork whose parent died cannot report its exit. It dies with its parent (a parent-death
    // signal, or the warm process kills it on its way out); where neither happened, it is
    // killed here, so that what is reported (-9) is what happened.
    for (const [id, resolve] of this.exits) {
      const pid = this.pids.get(id);
      if (pid) signalGroup(pid, 'SIGKILL');
      resolve(-9);
    }
    this.exits.clear();
    this.pids.clear();
  }

  /** `readOnly`: the forked child makes every database connection read-only before the command runs. */
  async launch(command: string, argv: string[], options: { readOnly?: boolean } = {}): Promise<Launched | undefined> {
    if (!this.ready || !this.socket) return undefined;
    const fifos = this.spares.shift() ?? (await this.makeFifos(1))[0];
    if (!fifos) return undefined;
    if (!this.ready) {
      this.spares.unshift(fifos); // still good for the next warm process
      return undefined;
    }
    const { out, err } = fifos;
    // Read ends first: the child's open for writing waits for a reader.
    const stdout = openFifo(out);
    const stderr = openFifo(err);
    const cleanup = () => {
      fs.rmSync(out, { force: true });
      fs.rmSync(err, { force: true });
    };
    const id = randomUUID();
    // Listening for the exit before asking: "exited" may come in the same read as "started".
    const exited = new Promise<number>((resolve) => this.exits.set(id, resolve));
    const reply = await this.request({ op: 'run', command, argv, stdout: out, stderr: err, ...(options.readOnly ? { read_only: true } : {}) }, id);
    if (reply.event !== 'started' || !reply.pid) {
      this.exits.delete(id);
      stdout.destroy();
      stderr.destroy();
      cleanup();
      if (reply.event === 'stale') {
        this.log('info', `project code changed (${(reply.changed ?? []).join(', ')}); reloading the warm process`);
        this.ready = false;
        this.child?.stdin?.end();
        void this.start();
      } else if (reply.event !== 'cold') {
        this.log('warn', `warm start failed (${reply.error ?? reply.event}); starting cold`);
      }
      return undefined;
    }
    if (this.exits.has(id)) this.pids.set(id, reply.pid); // "exited" may have come already
    void this.refill();
    // The child opens the FIFOs after "started"; their names may go once it has exited.
    void exited.then(cleanup);
    return { pid: reply.pid, stdout, stderr, exited, warm: true };
  }

  private request(msg: Record<string, unknown>, id = randomUUID()): Promise<Reply> {
    return new Promise<Reply>((resolve) => {
      if (!this.socket || this.socket.destroyed) return resolve({ id, event: 'error', error: 'warm process gone' });
      this.waiting.set(id, resolve);
      this.socket.write(JSON.stringify({ ...msg, id }) + '\n');
    });
  }

  /** New FIFO pairs, made by the warm process; none when it cannot (the command then starts cold). */
  private async makeFifos(count: number): Promise<Array<{ out: string; err: string }>> {
    const reply = await this.request({ op: 'fifos', dir: this.dir, count });
    if (reply.event !== 'fifos' || !reply.paths) {
      this.log('warn', `cannot prepare output FIFOs: ${reply.error ?? reply.event}`);
      return [];
    }
    return reply.paths.map(([out, err]) => ({ out, err }));
  }

  private async refill(): Promise<void> {
    if (this.refilling || !this.ready) return;
    this.refilling = true;
    try {
      const missing = SPARE_FIFOS - this.spares.length;
      if (missing > 0) this.spares.push(...(await this.makeFifos(missing)));
    } finally {
      this.refilling = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.socket?.destroy();
    const child = this.child;
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin?.end();
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      await gone;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function openFifo(file: string): net.Socket {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: true, writable: false });
}
