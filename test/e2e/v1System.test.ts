/**
 * The whole system as real processes: `djangocommand server`, a protocol-v1 runner that behaves
 * like the Python one, the example Django project, and the `djangocommand` CLI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, spawnCli, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { V1Runner } from '../support/v1Runner.js';
import { exampleProject, type ExampleProject } from '../support/example.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('server + v1 runner + Django + CLI (SQLite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: V1Runner;
  let example: ExampleProject;
  let env: Record<string, string>;
  let key: string;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db, {
      DJANGOCOMMAND_ADMIN_PASSWORD: '',
      DJANGOCOMMAND_RUNNER_OFFLINE_AFTER: '1.5',
      DJANGOCOMMAND_LOST_GRACE: '1',
      DJANGOCOMMAND_TIMEOUT_GRACE: '5',
      DJANGOCOMMAND_SWEEP_INTERVAL: '0.2',
    });
    const creds = await setUpProject(server);
    key = creds.key;
    env = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: creds.token };
    example = exampleProject();
    runner = new V1Runner({
      serverUrl: server.url,
      apiKey: key,
      projectDir: example.dir,
      env: example.env,
      heartbeatIntervalMs: 300,
      pollIntervalMs: 200,
      cancelPollIntervalMs: 200,
      flushIntervalMs: 200,
      killGraceMs: 1000,
      // Python's own retry backoff (1 s, 2 s, 4 s): a chunk outlives a server restart instead of being dropped (which now shows as incomplete output, exit 74).
      retryBackoffMs: 1000,
      universalNewlines: false,
    });
    await runner.start();
  });
  afterAll(async () => {
    await runner?.stop().catch(() => undefined);
    await server?.stop();
    await db?.drop();
  });

  const run = (args: string[]) => runCli(args, env);

  it('wrote the first admin password to a 0600 file on first start', () => {
    const file = path.join(db.dataDir, 'admin-password.txt');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^admin@localhost\n\S{20,}\n$/);
    expect(server.logs()).toContain(file);
    expect(server.logs()).not.toContain(fs.readFileSync(file, 'utf8').split('\n')[1]);
  });

  it('lists the commands the runner synced and shows the runner online with its versions', async () => {
    const commands = JSON.parse((await run(['commands', '--json'])).stdout) as Array<{ name: string; help_text: string }>;
    expect(commands.map((c) => c.name)).toEqual(expect.arrayContaining(['check', 'migrate', 'spew', 'slow', 'colors', 'rich_args']));
    expect(commands.find((c) => c.name === 'spew')!.help_text).toContain('--stderr-every');
    const runners = JSON.parse((await run(['runners', '--json'])).stdout);
    expect(runners[0]).toMatchObject({ online: true, protocol: 'v1', address: '127.0.0.1' });
    expect(runners[0].django_version).toMatch(/^\d+\.\d+/);
  });

  it('streams a command output byte for byte and exits 0', async () => {
    const cold = example.manage(['spew', '--lines', '3000', '--stderr-every', '7']);
    const res = await run(['run', 'spew', '--lines', '3000', '--stderr-every', '7']);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(cold.stdout.toString('utf8'));
    expect(res.stderr).toContain(cold.stderr.toString('utf8'));
  });

  it('keeps unicode and ANSI colours exactly as the command wrote them', async () => {
    const cold = example.manage(['colors']);
    const res = await run(['run', 'colors']);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(cold.stdout.toString('utf8'));
    expect(res.stdout).toContain('\u001b[');
    expect(res.stderr).toContain(cold.stderr.toString('utf8'));
  });

  it("exits with the command's exit code and a one-line reason when it fails", async () => {
    const res = await run(['run', 'fail', '--code', '7', '--message', 'disk full']);
    expect(res.code).toBe(7);
    expect(res.stderr).toContain('disk full');
    expect(res.stderr).toMatch(/fail failed with exit code 7/);
  });

  it('passes arguments through intact, quotes and all', async () => {
    const res = await run(['run', 'rich_args', 'target one', 'x', "it's", '--count', '3', '--tag', 'a b', '--tag', '$HOME', '--mode', 'fast', '--dry-run']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ target: 'target one', extra: ['x', "it's"], count: 3, tag: ['a b', '$HOME'], mode: 'fast', dry_run: true });
  });

  it('takes `--` before arguments as the help says, without passing it to Django', async () => {
    const res = await run(['run', 'rich_args', '--', 'target', '--count', '2']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ target: 'target', extra: [], count: 2 });
  });

  it('reports an argparse error as a failure with the usage text', async () => {
    const res = await run(['run', 'rich_args', 'x', '--mode', 'reckless']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/invalid choice: 'reckless'/);
  });

  it('detaches, then cancels gracefully; logs show the full output; the audit log has it all', async () => {
    const detached = await run(['run', '--detach', '--json', 'slow', '--steps', '200', '--delay', '0.05']);
    expect(detached.code).toBe(0);
    const id = JSON.parse(detached.stdout).id as string;
    await waitFor('the command to run', async () => runner.running.has(id));
    await new Promise((r) => setTimeout(r, 500));
    const second = await run(['run', 'slow']);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/already running.*at most 1 at a time/);
    expect((await run(['cancel', id])).code).toBe(0);
    const final = await waitFor('cancelled', async () => {
      const e = JSON.parse((await run(['executions', '--json', '--command', 'slow', '--limit', '1'])).stdout).items[0];
      return e.status === 'cancelled' ? e : undefined;
    });
    expect(final.exit_code).toBe(143);
    const logs = await run(['logs', id]);
    expect(logs.stdout).toMatch(/\r\[#+\s*\]\s+\d+%/);
    expect(logs.stderr).toContain('interrupted at step');
    const audit = JSON.parse((await run(['audit', '--execution', id, '--json'])).stdout).items;
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['execution.complete', 'execution.cancel', 'execution.start', 'execution.create']);
    const create = audit.find((a: { action: string }) => a.action === 'execution.create');
    expect(create).toMatchObject({ actor_type: 'token', address: '127.0.0.1', details: { command: 'slow', args: '--steps 200 --delay 0.05' } });
    expect(create.actor).toContain('admin@localhost');
  });

  it('cancels on Ctrl-C and exits 130', async () => {
    const { child, result } = spawnCli(['run', 'sleep_forever'], env);
    await waitFor('sleeping', async () => [...runner.running].length > 0);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const res = await result;
    expect(res.stderr).toContain('cancelling');
    expect(res.code).toBe(130);
  });

  it('times out a command that runs too long: exit 124', async () => {
    const res = await run(['run', '--timeout', '1', 'sleep_forever']);
    expect(res.code).toBe(124);
    expect(res.stderr).toMatch(/timed out/);
  });

  it('keeps large output whole: 40 MB through the CLI, identical to a cold run', async () => {
    const cold = example.manage(['spew', '--bytes', '40000000']);
    const res = await run(['run', 'spew', '--bytes', '40000000']);
    expect(res.code).toBe(0);
    expect(res.stdout.length).toBe(40_000_000);
    expect(sha(res.stdout)).toBe(sha(cold.stdout));
    // A listener per write on a slow reader once warned here.
    expect(server.logs()).not.toContain('MaxListenersExceededWarning');
  });

  it('keeps streaming through a server crash and restart', async () => {
    const { result } = spawnCli(['run', 'slow', '--steps', '40', '--delay', '0.1'], env);
    await waitFor('running', async () => runner.running.size > 0);
    await new Promise((r) => setTimeout(r, 800));
    await server.restart('SIGKILL');
    const res = await result;
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/100%/);
    expect(res.stdout.trimEnd().endsWith('done')).toBe(true);
  });

  it('marks the execution lost when its runner dies, and never re-runs it', async () => {
    const { result } = spawnCli(['run', 'sleep_forever'], env);
    await waitFor('running', async () => runner.running.size > 0);
    const started = runner.stats.started;
    await runner.kill();
    const res = await result;
    expect(res.code).toBe(75);
    expect(res.stderr).toMatch(/lost: runner 127\.0\.0\.1 stopped heartbeating/);
    // A new runner for the project does not get the lost execution again.
    runner = new V1Runner({ serverUrl: server.url, apiKey: key, projectDir: example.dir, env: example.env, heartbeatIntervalMs: 300, pollIntervalMs: 200 });
    await runner.start();
    await new Promise((r) => setTimeout(r, 800));
    expect(runner.stats.started).toBe(0);
    expect(started).toBeGreaterThan(0);
  });

  it('stops a runner whose key was revoked', async () => {
    const list = JSON.parse((await server.admin(['list-projects', '--json'])).stdout);
    const prefix = list[0].keys[0].prefix;
    expect((await server.admin(['revoke-key', prefix])).code).toBe(0);
    await waitFor('the runner to back off', async () => runner.authState === 'backoff');
    const res = await run(['executions', '--json']);
    expect(res.code).toBe(0);
  });
});
