/**
 * The CLI in a user's first hour, against a real server, our real runner and the example Django
 * project: it answers at once (it loads only what a command needs), says when no runner will
 * run a command and gives up at the start deadline, cancels on the signals a CI job or a closed
 * terminal sends, refuses our options put after the command name, keeps stdout clean with
 * --json, and explains an empty catalogue or a mistyped server address.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, spawnCli, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { V1Client } from '../support/v1Client.js';

interface Execution {
  id: string;
  command: string;
  status: string;
  start_deadline: string | null;
}

describe('the CLI in its first hour (SQLite server, our runner)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let token: string;
  let cli: Record<string, string>;

  const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
    const res = await fetch(server.url + url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };
  const executions = async (command: string) => (await api<{ items: Execution[] }>('GET', `/api/v1/executions?project=shop&command=${command}&limit=200`)).items;
  const idIn = (stderr: string) => /queued on \S+ as ([0-9a-f-]{36})/.exec(stderr)?.[1];

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    let key: string;
    ({ key, token } = await setUpProject(server));
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    runner = await startRunner(runnerEnv(server.url, key, exampleProject().env, { DJANGOCOMMAND_KILL_GRACE: '1' }));
  });
  afterAll(async () => {
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('loads neither the server, the database drivers nor the runner for --version and run', async () => {
    // A module hook that writes down every module node loads (ESM, and CommonJS imported from it).
    const dir = tempDir('dc-trace-');
    fs.writeFileSync(path.join(dir, 'hooks.mjs'), "import fs from 'node:fs';\nexport async function load(url, context, next) { fs.appendFileSync(process.env.DC_TRACE_FILE, url + '\\n'); return next(url, context); }\n");
    fs.writeFileSync(path.join(dir, 'trace.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
    const traced = async (args: string[]) => {
      const file = path.join(dir, `${args[0]}.txt`);
      const res = await runCli(args, { ...cli, NODE_OPTIONS: `--import=${path.join(dir, 'trace.mjs')}`, DC_TRACE_FILE: file });
      return { res, modules: fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) };
    };
    const heavy = /\/node_modules\/(fastify|@fastify|kysely|pg|better-sqlite3|ws)\/|\/dist\/src\/(server|store|core|runner)\//;

    const version = await traced(['--version']);
    expect(version.res.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(version.modules.some((m) => m.endsWith('/dist/src/cli/main.js'))).toBe(true); // the hook saw the CLI
    expect(version.modules.filter((m) => heavy.test(m) || /\/dist\/src\/cli\/(client|server|runner)Commands\.js/.test(m))).toEqual([]);

    const run = await traced(['run', 'check']);
    expect(run.res.code, run.res.stderr).toBe(0);
    expect(run.modules.some((m) => m.endsWith('/dist/src/cli/clientCommands.js'))).toBe(true);
    expect(run.modules.filter((m) => heavy.test(m))).toEqual([]);

    // The help still lists every command.
    const help = await runCli(['--help']);
    for (const name of ['server', 'admin', 'run', 'logs', 'commands', 'start', 'stop', 'status']) expect(help.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)('cancels the execution on %s and exits once the server has the cancel', async (signal) => {
    const before = Date.now();
    const { child, result } = spawnCli(['run', 'sleep_forever'], cli);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('the command to print', () => stdout.includes('sleeping'), 30_000);
    const id = idIn(stderr)!;
    child.kill(signal);
    const res = await result;
    expect(Date.now() - before).toBeLessThan(30_000);
    expect(res.code).toBe(signal === 'SIGTERM' ? 143 : 129);
    expect(res.stderr).toMatch(new RegExp(`${signal}: cancelling`));
    const e = await waitFor('the execution to end', async () => {
      const e = await api<Execution>('GET', `/api/v1/executions/${id}`);
      return ['cancelled', 'failed', 'succeeded', 'lost', 'timed_out'].includes(e.status) ? e : undefined;
    }, 15_000, 100);
    expect(e.status).toBe('cancelled');
  });

  it('refuses our options after the command name before anything runs, and keeps argparse errors for the others', async () => {
    const before = (await executions('check')).length;
    const res = await runCli(['run', 'check', '--project', 'shop', '--deploy'], cli);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--project is an option of djangocommand run, not of check: ours go before the command name');
    expect(res.stderr).toContain('djangocommand run --project shop check --deploy');
    expect((await executions('check')).length).toBe(before);

    const typo = await runCli(['run', 'slow', '--stepz', '3'], cli);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/unrecognized arguments: .*--stepz/);
    expect(typo.stderr).not.toContain('option of djangocommand run');

    // After --, the words are the command's, even one that looks like ours.
    const explicit = await runCli(['run', 'slow', '--', '--project', 'shop'], cli);
    expect(explicit.code).not.toBe(0);
    expect(explicit.stderr).toMatch(/unrecognized arguments: .*--project/);
    expect(explicit.stderr).not.toContain('option of djangocommand run');
  });

  it('with --json, prints exactly one JSON document on stdout and the output on stderr', async () => {
    const res = await runCli(['run', '--json', 'check'], cli);
    expect(res.code, res.stderr).toBe(0);
    const e = JSON.parse(res.stdout) as Execution;
    expect(e).toMatchObject({ command: 'check', status: 'succeeded' });
    expect(res.stderr).toContain('System check identified no issues');
  });

  it('says why `commands` is empty for a project whose runner never connected', async () => {
    expect((await server.admin(['create-project', 'bare'])).code).toBe(0);
    const res = await runCli(['commands', '--project', 'bare'], cli);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('no runner has reported commands for project bare yet: start a runner with its API key');
  });

  it('spells out the fix for a server address without a scheme or with /api/v1', async () => {
    const host = server.url.replace(/^http:\/\//, '');
    const bare = await runCli(['projects'], { ...cli, DJANGOCOMMAND_URL: host });
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain(`did you mean ${server.url}?`);
    const api = await runCli(['projects', '--url', `${server.url}/api/v1/`], cli);
    expect(api.code).toBe(2);
    expect(api.stderr).toContain(`--url "${server.url}/api/v1/" ends in /api/v1: did you mean ${server.url}?`);
  });
});

describe('run with no runner online (SQLite server, a v1 runner that went away)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let cli: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db, { DJANGOCOMMAND_RUNNER_OFFLINE_AFTER: '1', DJANGOCOMMAND_SWEEP_INTERVAL: '0.2' });
    const { key, token } = await setUpProject(server);
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    // It reports its commands once, then is never heard from again.
    await new V1Client({ serverUrl: server.url, apiKey: key, maxRetries: 0 }).syncCommands([{ name: 'check', app_label: 'django.core', help_text: 'usage: manage.py check' }]);
    await new Promise((r) => setTimeout(r, 1_500));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('says so at once with how long it waits, then ends expired at the start deadline with exit 69', async () => {
    const started = Date.now();
    const { child, result } = spawnCli(['run', '--start-timeout', '2', 'check'], cli);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('the no-runner line', () => /no runner of shop is online: it waits for one until .* \(\d s; --start-timeout sets it\), then ends expired/.test(stderr), 5_000, 20);
    expect(Date.now() - started).toBeLessThan(1_900); // before the deadline: at once
    const res = await result;
    expect(res.code).toBe(69);
    expect(res.stderr).toMatch(/check expired: no runner started it within 2 s .*it will never start.*djangocommand runners --project shop/);
  });
});
