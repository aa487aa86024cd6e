/**
 * The runner's life as a real process (the compiled CLI, the example Django project, a real
 * server over SQLite): its commands die with it, its next start cleans up what they left,
 * `status`/`stop` find it from the project folder alone, `start -d` tells how the first
 * connection went, and a stopping runner says so before it closes its socket.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { CLI, EXAMPLE_DIR, PYTHON, setUpProject, startServer, waitFor, type CliResult, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { V2_PATH } from '../../src/shared/protocolV2.js';

/** Running (a zombie has ended: it only waits to be reaped). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function killIfRunning(pid: number | undefined): void {
  if (pid && running(pid)) process.kill(pid, 'SIGKILL');
}

/** The CLI run in `cwd` with exactly `env` (plus what a shell always has): no --python, no --state-dir unless given. */
function cliIn(cwd: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { HOME: process.env.HOME ?? '/', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('runner lifecycle (SQLite server, protocol v2)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let key: string;
  let token: string;

  const api = async (p: string, init: RequestInit = {}) => {
    const res = await fetch(server.url + p, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    return { status: res.status, text: await res.text() };
  };
  const create = async (command: string) => {
    const res = await api('/api/v1/projects/shop/executions', { method: 'POST', body: JSON.stringify({ command, argv: [] }) });
    expect(res.status).toBe(201);
    return JSON.parse(res.text) as { id: string };
  };
  /** The pid the runner logged for the execution's command. */
  const commandPid = (runner: RunnerHandle, id: string) =>
    waitFor(`execution ${id} to start`, () => {
      const m = new RegExp(`execution ${id}: \\S+\\s+started \\((?:warm|cold), pid (\\d+)\\)`).exec(runner.logs());
      return m ? Number(m[1]) : undefined;
    });

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    // Executions of a killed runner stay `running` until it is declared offline: no limit on them here.
    server = await startServer(db, { DJANGOCOMMAND_DEFAULT_CONCURRENCY: '100' });
    ({ key, token } = await setUpProject(server));
    example = exampleProject();
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it.each([
    ['warm', []],
    ['cold', ['--no-warm']],
  ])('a %s command does not outlive a runner killed with SIGKILL', async (_mode, args) => {
    const runner = await startRunner(runnerEnv(server.url, key, example.env), args);
    let pid: number | undefined;
    try {
      const warmPid = Number(/warm process ready \(pid (\d+)/.exec(runner.logs())?.[1] ?? 0);
      const e = await create('sleep_forever');
      pid = await commandPid(runner, e.id);
      // Past its only write: from here on it would never notice its pipes are gone.
      await waitFor('its output', async () => (await api(`/api/v1/executions/${e.id}/output`)).text.includes('sleeping'));
      expect(running(pid)).toBe(true);
      await runner.stop('SIGKILL');
      await waitFor(`command ${pid} to die with the runner`, () => !running(pid!), 5_000);
      if (warmPid) await waitFor(`warm process ${warmPid} to die with the runner`, () => !running(warmPid), 5_000);
    } finally {
      killIfRunning(pid);
      await runner.stop('SIGKILL');
    }
  });

  it("a restarted runner kills what its previous life left running, and logs it", async () => {
    // A project of its own, with a command whose child outlives it: a parent-death signal
    // reaches only the command, so when the runner is killed the child is left (run cold: a
    // warm process leaving kills its forks' whole groups).
    const project = tempDir('dc-project-');
    fs.cpSync(EXAMPLE_DIR, project, { recursive: true, filter: (src) => !/__pycache__|\.sqlite3$/.test(src) });
    fs.writeFileSync(
      path.join(project, 'demo/management/commands/leave_child.py'),
      [
        'import subprocess',
        'import time',
        '',
        'from django.core.management.base import BaseCommand',
        '',
        '',
        'class Command(BaseCommand):',
        '    def handle(self, *args, **options):',
        "        child = subprocess.Popen(['sleep', '600'])",
        "        self.stdout.write('child %d' % child.pid)",
        '        self.stdout.flush()',
        '        while True:',
        '            time.sleep(3600)',
        '',
      ].join('\n'),
    );
    const env = runnerEnv(server.url, key, example.env, { DJANGOCOMMAND_ALLOWED_COMMANDS: 'leave_child' });
    const stateDir = tempDir('dc-runner-');
    let runner = await startRunner(env, ['--project-dir', project, '--no-warm'], stateDir);
    let command: number | undefined;
    let child: number | undefined;
    try {
      await waitFor('the command list to name leave_child', async () => (await api('/api/v1/projects/shop/commands')).text.includes('"leave_child"'));
      const e = await create('leave_child');
      command = await commandPid(runner, e.id);
      child = await waitFor('the command to print its child', async () => Number(/child (\d+)/.exec((await api(`/api/v1/executions/${e.id}/output`)).text)?.[1] ?? 0) || undefined);
      await runner.stop('SIGKILL');
      await waitFor('the command to die with the runner', () => !running(command!), 5_000);
      expect(running(child)).toBe(true);

      runner = await startRunner(env, ['--project-dir', project, '--no-warm'], stateDir);
      await waitFor('the leftover to be stopped', () => !running(child!), 10_000);
      expect(runner.logs()).toMatch(new RegExp(`left execution ${e.id} \\(leave_child\\) running: its process ${command} is gone, 1 process\\(es\\) it started \\(${child}\\); stopping it`));
      expect(fs.readdirSync(path.join(stateDir, 'processes'))).toEqual([]);
    } finally {
      if (process.env.DEBUG_RUNNER) console.log(runner.logs());
      killIfRunning(command);
      killIfRunning(child);
      await runner.stop();
    }
  });

  it('status and stop find the runner that start -d started in the project folder, with no --python, --state-dir or Python', async () => {
    // Its own temporary folder: the start record and the default state folder are this test's.
    const tmp = tempDir('dc-tmp-');
    const noPython = tempDir('dc-path-'); // PATH: nothing to run, so no Python can be asked
    const base = { TMPDIR: tmp, PATH: noPython };
    const start = await cliIn(EXAMPLE_DIR, ['start', '-d', '--python', PYTHON, '--no-warm'], { ...runnerEnv(server.url, key, example.env), ...base, PATH: process.env.PATH ?? '' });
    try {
      expect(start.stderr).toBe('');
      expect(start.code).toBe(0);
      expect(start.stdout).toMatch(new RegExp(`runner started \\(pid \\d+\\), connected to ${server.url.replace(/\./g, '\\.')}; log: `));
      const pid = Number(/pid (\d+)/.exec(start.stdout)![1]);

      const status = await cliIn(EXAMPLE_DIR, ['status', '--json'], base);
      expect(status.stderr).toBe('');
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid, connection: 'connected' });
      expect(JSON.parse(status.stdout).state_dir.startsWith(tmp)).toBe(true);
      const elsewhere = await cliIn(tmp, ['status', '--project-dir', EXAMPLE_DIR], base);
      expect(elsewhere.stdout).toMatch(new RegExp(`^running, pid ${pid}, `));

      const stop = await cliIn(EXAMPLE_DIR, ['stop'], base);
      expect(stop).toMatchObject({ code: 0, stdout: `runner ${pid} stopped\n` });
      expect(running(pid)).toBe(false);
      const after = await cliIn(EXAMPLE_DIR, ['status'], base);
      expect(after.code).toBe(3);
      expect(after.stdout).toMatch(/^not running \(state folder /);
    } finally {
      await cliIn(EXAMPLE_DIR, ['stop', '--force'], base);
    }
  });

  it('start -d with a wrong key reports the server refusal, stops the runner and fails', async () => {
    const tmp = tempDir('dc-tmp-');
    const res = await cliIn(EXAMPLE_DIR, ['start', '-d', '--python', PYTHON, '--no-warm'], { ...runnerEnv(server.url, 'dc_not_a_key_of_this_server', example.env), TMPDIR: tmp, PATH: process.env.PATH ?? '' });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('refused the runner: Unknown runner API key. Check DJANGOCOMMAND_API_KEY.');
    expect(res.stderr).toContain('[DC_UNAUTHENTICATED]');
    const status = await cliIn(EXAMPLE_DIR, ['status', '--json'], { TMPDIR: tmp });
    expect(JSON.parse(status.stdout).running).toBe(false);
  });

  it('start -d says so, within 15 s, when the server cannot be reached; the runner keeps trying', async () => {
    const tmp = tempDir('dc-tmp-');
    const t0 = Date.now();
    const res = await cliIn(EXAMPLE_DIR, ['start', '-d', '--python', PYTHON, '--no-warm'], { ...runnerEnv('http://127.0.0.1:9', key, example.env), TMPDIR: tmp, PATH: process.env.PATH ?? '' });
    try {
      expect(Date.now() - t0).toBeLessThan(40_000);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/^runner started \(pid \d+\), but it has not reached http:\/\/127\.0\.0\.1:9 in 15 s \(.*ECONNREFUSED.*\); it keeps trying\./);
      const status = await cliIn(EXAMPLE_DIR, ['status', '--json'], { TMPDIR: tmp });
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, connection: expect.stringMatching(/connecting|disconnected/) });
    } finally {
      await cliIn(EXAMPLE_DIR, ['stop', '--force'], { TMPDIR: tmp });
    }
  });
});

describe('a stopping runner, as a server sees it (protocol v2)', () => {
  it.each(['SIGTERM', 'SIGUSR2'] as const)('on %s it sends draining, then closes with 1000 "runner stopping"', async (signal) => {
    // A bare protocol v2 server that welcomes the runner and writes down what arrives, in order.
    const seen: string[] = [];
    const httpServer = http.createServer();
    const wss = new WebSocketServer({ server: httpServer, path: V2_PATH });
    wss.on('connection', (ws) => {
      ws.on('message', (data, binary) => {
        const msg = binary ? { type: 'output' } : (JSON.parse(data.toString()) as { type: string; runner_id?: string });
        seen.push(msg.type);
        if (msg.type === 'hello') ws.send(JSON.stringify({ type: 'welcome', runner_id: msg.runner_id, commands_in_sync: true, cancel: [] }));
      });
      ws.on('close', (code, reason) => seen.push(`close ${code} ${reason.toString()}`));
    });
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    const example = exampleProject();
    const runner = await startRunner(runnerEnv(url, 'dc_fake_server_takes_any_key', example.env), ['--no-warm']);
    try {
      expect(await runner.stop(signal)).toBe(0);
      await waitFor('the close', () => seen.some((s) => s.startsWith('close')), 5_000);
      expect(seen).toEqual(['hello', 'draining', 'close 1000 runner stopping']);
    } finally {
      await runner.stop('SIGKILL');
      wss.close();
      httpServer.close();
    }
  });
});
