/** Our runner as a real process (`djangocommand start`) next to the example Django project. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, EXAMPLE_DIR, PYTHON, runCli, waitFor, type CliResult } from './serverProcess.js';
import { tempDir } from './databases.js';

export interface RunnerHandle {
  process: ChildProcess;
  stateDir: string;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function runnerEnv(serverUrl: string, key: string, exampleEnv: Record<string, string>, extra: Record<string, string> = {}): Record<string, string> {
  return { ...exampleEnv, DJANGOCOMMAND_API_KEY: key, DJANGOCOMMAND_SERVER_URL: serverUrl, ...extra };
}

/** Starts `djangocommand start` in the foreground and waits until it is connected. */
/** `launcher`: a command the runner is started through, e.g. `['prlimit', '--fsize=N', '--']`. */
export async function startRunner(env: Record<string, string>, args: string[] = [], stateDir = tempDir('dc-runner-'), launcher: string[] = []): Promise<RunnerHandle> {
  const command = [...launcher, process.execPath, CLI, 'start', '--python', PYTHON, '--project-dir', EXAMPLE_DIR, '--state-dir', stateDir, ...args];
  const child = spawn(command[0], command.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (logs += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('the runner to connect', () => {
    if (child.exitCode !== null) throw new Error(`runner exited: ${logs}`);
    return /connected to .* as runner/.test(logs) && (!args.includes('--no-warm') ? /warm process ready|did not start/.test(logs) : true);
  }, 60_000);
  return {
    process: child,
    stateDir,
    logs: () => logs,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function runnerCli(args: string[], env: Record<string, string>, stateDir?: string): Promise<CliResult> {
  return runCli([...args, '--python', PYTHON, '--project-dir', EXAMPLE_DIR, ...(stateDir ? ['--state-dir', stateDir] : [])], env);
}
