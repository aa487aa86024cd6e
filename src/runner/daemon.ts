/**
 * The runner's management verbs, the Python runner's: start [-d], stop [--force], status
 * [--json], restart [-d]. A pid file and the status file live in the project's state folder,
 * so these work whether the runner was started in the foreground or detached.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../shared/errors.js';
import { STATUS_FILE, type RunnerStatus } from './runner.js';
import { logFile } from './runnerLog.js';

export const PID_FILE = 'runner.pid';

export function readPid(stateDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(stateDir, PID_FILE), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers signal 0; it is not running.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Claims the pid file for this process; refuses when another live runner holds it. */
export function claimPidFile(stateDir: string): () => void {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const other = readPid(stateDir);
  if (other && other !== process.pid) {
    throw new UserError('DC_CONFIG', `A runner is already running for this project (pid ${other}); stop it with \`djangocommand stop\`.`, undefined, { exitCode: 1 });
  }
  const file = path.join(stateDir, PID_FILE);
  fs.writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  return () => {
    try {
      if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file);
    } catch {
      // already gone
    }
  };
}

export function readStatus(stateDir: string): RunnerStatus | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, STATUS_FILE), 'utf8')) as RunnerStatus;
  } catch {
    return undefined;
  }
}

/**
 * Starts the runner detached (the same command line without -d, plus --detached-child) and
 * returns once it is up: its status file names it. Fails with the log's last lines otherwise.
 */
export async function startDetached(stateDir: string, args: string[], waitMs = 60_000): Promise<number> {
  const running = readPid(stateDir);
  if (running) throw new UserError('DC_CONFIG', `A runner is already running for this project (pid ${running}).`, undefined, { exitCode: 1 });
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  fs.rmSync(path.join(stateDir, STATUS_FILE), { force: true });
  const log = logFile(stateDir);
  const before = fs.existsSync(log) ? fs.statSync(log).size : 0;
  const out = fs.openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, [process.argv[1], 'start', ...args, '--detached-child'], { detached: true, stdio: ['ignore', out, out], env: process.env });
  fs.closeSync(out);
  child.unref();
  const pid = child.pid!;
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const status = readStatus(stateDir);
    if (status?.pid === pid) return pid;
    if (!alive(pid)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(before).trim().split('\n').slice(-5).join('\n') : '';
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  throw new UserError('DC_CONFIG', `The runner did not start.${tail ? `\n${tail}` : ''}`, undefined, { exitCode: 1 });
}

export type FirstConnection =
  | { outcome: 'connected' }
  | { outcome: 'refused'; message: string; code: string | null }
  | { outcome: 'unreached'; error: string | null }
  | { outcome: 'exited' };

/**
 * After a detached start: how the runner's first connection to the server went, from its
 * status file. `refused` as soon as the server refuses the key; `unreached` after `waitMs`
 * (the runner keeps trying by itself).
 */
export async function waitForFirstConnection(stateDir: string, pid: number, waitMs = 15_000): Promise<FirstConnection> {
  const deadline = Date.now() + waitMs;
  let status = readStatus(stateDir);
  while (Date.now() < deadline) {
    if (!alive(pid)) return { outcome: 'exited' };
    status = readStatus(stateDir) ?? status;
    if (status?.pid === pid) {
      if (status.connection === 'connected') return { outcome: 'connected' };
      if (status.refused) return { outcome: 'refused', message: status.refused.message, code: status.refused.code };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { outcome: 'unreached', error: status?.pid === pid ? status.last_error : null };
}

/** Stops the runner: SIGTERM (graceful) or SIGUSR2 (`--force`: kill its commands at once). */
export async function stopRunner(stateDir: string, force: boolean, waitMs: number): Promise<{ pid: number; killed: boolean } | undefined> {
  const pid = readPid(stateDir);
  if (!pid) return undefined;
  process.kill(pid, force ? 'SIGUSR2' : 'SIGTERM');
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && alive(pid)) await new Promise((r) => setTimeout(r, 100));
  if (!alive(pid)) return { pid, killed: false };
  // It did not stop in time: kill it and the commands it was running.
  const status = readStatus(stateDir);
  for (const e of status?.executions ?? []) if (e.pid) try { process.kill(-e.pid, 'SIGKILL'); } catch { /* gone */ }
  process.kill(pid, 'SIGKILL');
  return { pid, killed: true };
}
