/**
 * Starting a management command as a process of its own group, cold
 * (`python manage.py CMD ARGS`, exactly what a person with SSH would type) — the warm start
 * (warmProcess.ts) hands back the same shape — and stopping a whole group step by step.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { bootstrapPath } from './bootstrap.js';

export interface Launched {
  pid: number | null;
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code, or -N when killed by signal N (like Python's returncode). */
  exited: Promise<number>;
  warm: boolean;
}

export interface LaunchSpec {
  python: string;
  projectDir: string;
  command: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** Read-only database mode: bootstrap.py `run-read-only` runs manage.py with every connection read-only. */
  readOnly?: boolean;
}

export function launchCold(spec: LaunchSpec): Launched {
  // Through bootstrap.py `exec`, which asks to die with the runner (a parent-death signal) and
  // then becomes `python manage.py CMD ARGS` itself: same pid, command line and environment.
  // Read-only: `python bootstrap.py run-read-only CMD ARGS`, which runs manage.py the same way
  // with read-only mode enabled right after django.setup(), before any command code.
  const program = spec.readOnly
    ? [spec.python, bootstrapPath(), 'run-read-only', spec.command, ...spec.argv]
    : [spec.python, 'manage.py', spec.command, ...spec.argv];
  const child = spawn(spec.python, ['-S', bootstrapPath(), 'exec', String(process.pid), ...program], {
    cwd: spec.projectDir,
    env: { ...spec.env, PYTHONUNBUFFERED: '1' },
    // stdin is /dev/null: a command that asks for input fails instead of hanging.
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a cancel reaches the command's children too.
    detached: true,
  });
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(code ?? -signalNumber(signal)));
  });
  return { pid: child.pid ?? null, stdout: child.stdout!, stderr: child.stderr!, exited, warm: false };
}

export function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIGSEGV: 11, SIGABRT: 6 };
  return signal ? (numbers[signal] ?? 1) : 1;
}

/** Signals the process group of `pid`; false when it is gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Stops a process group: SIGINT (what Ctrl-C does, so Django commands can clean up), then
 * SIGTERM after `graceMs`, then SIGKILL after another `graceMs`; `force` sends SIGKILL at once.
 * Returns a function that cancels the remaining steps (the process ended).
 */
export function stopGroup(pid: number, force: boolean, graceMs: number): () => void {
  if (force) {
    signalGroup(pid, 'SIGKILL');
    return () => undefined;
  }
  signalGroup(pid, 'SIGINT');
  const term = setTimeout(() => signalGroup(pid, 'SIGTERM'), graceMs);
  const kill = setTimeout(() => signalGroup(pid, 'SIGKILL'), 2 * graceMs);
  return () => {
    clearTimeout(term);
    clearTimeout(kill);
  };
}
