/**
 * Our runner as a real process (`djangocommand start`) next to the example Django project, and
 * that project's migrated database, for the benchmarks.
 *
 * The same as test/support/runnerProcess.ts (startRunner) and test/support/example.ts
 * (exampleProject), which cannot be used compiled: they find the CLI and the example project two
 * folders above themselves, i.e. in dist/ when they run from dist/test/support/ (see
 * serverProcess.ts). Here both are found from the repository's package.json.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../test/support/databases.js';
import { waitFor } from '../test/support/serverProcess.js';
import { atCleanup } from './common.js';
import { CLI, REPO } from './serverProcess.js';

export const EXAMPLE_DIR = path.join(REPO, 'example');
/** The only interpreter the benchmarks use for Django. */
export const PYTHON = '/usr/bin/python3';

/**
 * Extra node flags for the runner process, e.g. BENCH_RUNNER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
 * (the profile is written when the runner stops).
 */
const RUNNER_NODE_ARGS = (process.env.BENCH_RUNNER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/**
 * The example project with its own migrated SQLite database in a temporary folder (removed when
 * the benchmark ends); `env` is what manage.py and the runner need to use it.
 */
export function benchExample(): { dir: string; env: Record<string, string> } {
  const folder = tempDir('dc-bench-example-');
  atCleanup(() => fs.rmSync(folder, { recursive: true, force: true }));
  const env = { EXAMPLE_DB_PATH: path.join(folder, 'db.sqlite3'), PYTHONUNBUFFERED: '1' };
  execFileSync(PYTHON, ['manage.py', 'migrate', '-v', '0'], { cwd: EXAMPLE_DIR, env: { ...process.env, ...env } });
  return { dir: EXAMPLE_DIR, env };
}

export interface BenchRunner {
  process: ChildProcess;
  pid: number;
  stateDir: string;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts `djangocommand start --python /usr/bin/python3` in the foreground for the project of
 * `key`, and waits until it is connected (and, unless `--no-warm` is among `args`, until its
 * warm process is ready or failed). Stopped by stop() or when the benchmark ends.
 */
export async function startBenchRunner(serverUrl: string, key: string, exampleEnv: Record<string, string>, args: string[] = []): Promise<BenchRunner> {
  const stateDir = tempDir('dc-bench-runner-');
  const child = spawn(process.execPath, [...RUNNER_NODE_ARGS, CLI, 'start', '--python', PYTHON, '--project-dir', EXAMPLE_DIR, '--state-dir', stateDir, ...args], {
    env: { ...process.env, ...exampleEnv, DJANGOCOMMAND_API_KEY: key, DJANGOCOMMAND_SERVER_URL: serverUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (logs += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    unregister();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  const unregister = atCleanup(stop);
  const warm = !args.includes('--no-warm');
  await waitFor(
    'the runner to connect',
    () => {
      if (child.exitCode !== null) throw new Error(`runner exited: ${logs}`);
      return /connected to .* as runner/.test(logs) && (!warm || /warm process ready|did not start/.test(logs));
    },
    60_000,
  );
  if (warm && !/warm process ready/.test(logs)) throw new Error(`the runner's warm process did not start:\n${logs}`);
  return { process: child, pid: child.pid!, stateDir, logs: () => logs, stop };
}
