/**
 * A real `djangocommand server` process for the benchmarks, and the admin CLI against its
 * database.
 *
 * Why not test/support/serverProcess.ts: it finds the compiled CLI at `<repo>/dist/src/cli/main.js`
 * with `<repo>` = two folders above itself, which is right for the TypeScript source that
 * vitest runs but wrong for its compiled copy in dist/test/support/ (it looks for
 * dist/dist/src/cli/main.js). Benchmarks run compiled, so they find the repository by its
 * package.json instead.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FreshDatabase } from '../test/support/databases.js';

const execFileAsync = promisify(execFile);
const STARTUP_TIMEOUT_MS = 30_000;

/** The nearest folder above this file holding package.json: the repository, from bench/ or dist/bench/. */
function findRepo(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository (no package.json above bench/)');
    dir = parent;
  }
  return dir;
}

/** The repository's folder (holding package.json), from bench/ or dist/bench/. */
export const REPO = findRepo();
export const CLI = path.join(REPO, 'dist/src/cli/main.js');

export interface ServerProcess {
  url: string;
  process: ChildProcess;
  /** `djangocommand admin ...` on this server's database; resolves with its stdout. */
  admin(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function databaseArgs(db: FreshDatabase): string[] {
  return ['--data-dir', db.dataDir, ...(db.databaseUrl ? ['--database-url', db.databaseUrl] : [])];
}

/**
 * Extra node flags for the server, e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
 * to see where a benchmark's server time goes (node refuses --cpu-prof in NODE_OPTIONS).
 */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Starts the server on a free port of 127.0.0.1 and waits for its "listening on" line. */
export async function startServerProcess(db: FreshDatabase, env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, CLI, 'server', ...databaseArgs(db), '--host', '127.0.0.1', '--port', '0'], {
    env: { ...process.env, DJANGOCOMMAND_LOG_LEVEL: 'warn', DJANGOCOMMAND_ADMIN_PASSWORD: 'correct horse battery staple', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs}`)), STARTUP_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      logs += d;
      const m = /listening on (http:\/\/\S+)/.exec(logs);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    // Warnings and errors of the server go to our stderr, where the benchmark's progress goes.
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      logs += d;
      process.stderr.write(`[server] ${d}`);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${logs}`));
    });
  });
  return {
    url,
    process: child,
    admin: async (args) => (await execFileAsync(process.execPath, [CLI, 'admin', ...args, ...databaseArgs(db)])).stdout,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
