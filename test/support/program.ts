/**
 * Any program as a real process (npm, an installed `djangocommand`, the runner binary): run to
 * completion, or start and wait for a line in its output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { CliResult } from './serverProcess.js';

export interface ProgramOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs `file args` to completion (killed after timeoutMs); stdin is closed. */
export function runProgram(file: string, args: string[], opts: ProgramOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningProgram {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** SIGTERM (or `signal`), then waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `file args` and resolves once its output matches `ready`; rejects if it exits first. */
export function startProgram(file: string, args: string[], ready: RegExp, opts: ProgramOptions = {}): Promise<RunningProgram & { match: RegExpExecArray }> {
  const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const handle: RunningProgram = {
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')}: no ${ready} within ${opts.timeoutMs ?? 60_000} ms:\n${output}`));
    }, opts.timeoutMs ?? 60_000);
    const onData = (d: string) => {
      output += d;
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ ...handle, match });
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${file} ${args.join(' ')} exited (${code ?? signal}) before ${ready}:\n${output}`));
    });
  });
}

/** The environment without the npm_* variables of an enclosing `npm test`, for a clean npm run. */
export function envWithoutNpm(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}
