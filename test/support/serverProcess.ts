/**
 * A real `djangocommand server` process (the compiled CLI), on a free port, with its own data
 * folder or PostgreSQL database; plus helpers to run the CLI against it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FreshDatabase } from './databases.js';

/** The repository root, from the source or the compiled (dist/) copy of this file. */
export const REPO = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();
export const CLI = path.join(REPO, 'dist/src/cli/main.js');
export const EXAMPLE_DIR = path.join(REPO, 'example');
export const PYTHON = '/usr/bin/python3';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, opts: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
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
    child.stdin.end(opts.input ?? '');
  });
}

/** Starts the CLI and hands back the process, for commands that must be interrupted. */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout: stdout, stderr })));
  return { child, result: result.then((r) => ({ ...r, stdout, stderr })) };
}

export interface ServerHandle {
  url: string;
  port: number;
  db: FreshDatabase;
  process: ChildProcess;
  logs(): string;
  /** `admin ...` against this server's database. */
  admin(args: string[]): Promise<CliResult>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops (SIGKILL by default: a crash) and starts again on the same port and database. */
  restart(signal?: NodeJS.Signals): Promise<void>;
}

export async function startServer(db: FreshDatabase, env: Record<string, string> = {}, port = 0): Promise<ServerHandle> {
  const dbArgs = ['--data-dir', db.dataDir, ...(db.databaseUrl ? ['--database-url', db.databaseUrl] : [])];
  let logs = '';
  const launch = (p: number) =>
    new Promise<{ child: ChildProcess; url: string }>((resolve, reject) => {
      // After a restart, only this process's own "listening on" line counts.
      const since = logs.length;
      const child = spawn(process.execPath, [CLI, 'server', ...dbArgs, '--host', '127.0.0.1', '--port', String(p)], {
        env: { ...process.env, DJANGOCOMMAND_LOG_LEVEL: 'warn', DJANGOCOMMAND_ADMIN_PASSWORD: 'correct horse battery staple', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs}`)), 30_000);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        logs += d;
        const m = /listening on (http:\/\/[^\s]+)/.exec(logs.slice(since));
        if (m) {
          clearTimeout(timer);
          resolve({ child, url: m[1] });
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs += d));
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${logs}`));
      });
    });
  // A server that dies on its own mid-file leaves only "connection refused" in the tests after
  // it: say so at once, with how it ended and the end of its log.
  let stopping = false;
  const watch = (c: ChildProcess) =>
    c.once('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`\n[test support] server ${url} exited without stop() or restart() (code ${code}, signal ${signal}); the end of its log:\n${logs.slice(-4000)}\n`);
    });
  let { child, url } = await launch(port);
  watch(child);
  const handle: ServerHandle = {
    url,
    port: Number(new URL(url).port),
    db,
    process: child,
    logs: () => logs,
    admin: (args) => runCli(['admin', ...args, ...dbArgs]),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      stopping = true;
      child.kill(signal);
      await exited;
    },
    async restart(signal = 'SIGKILL') {
      await handle.stop(signal);
      ({ child, url } = await launch(handle.port));
      stopping = false;
      watch(child);
      handle.process = child;
    },
  };
  return handle;
}

/** A project with its runner key and an admin API token, made through the admin CLI. */
export async function setUpProject(server: ServerHandle, name = 'shop'): Promise<{ key: string; token: string }> {
  const p = await server.admin(['create-project', name, '--json']);
  if (p.code !== 0) throw new Error(`create-project failed: ${p.stderr}`);
  const t = await server.admin(['create-token', '--json']);
  if (t.code !== 0) throw new Error(`create-token failed: ${t.stderr}`);
  return { key: JSON.parse(p.stdout).key, token: JSON.parse(t.stdout).token };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
