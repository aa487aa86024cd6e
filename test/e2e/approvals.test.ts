/**
 * Four-eyes approvals end to end: a real server, our runner (protocol v2) next to the example
 * Django project on PostgreSQL, and the CLI. An admin turns approval on with
 * `command-settings`; an operator's `run` waits, saying so with the dashboard link, and nothing
 * is written meanwhile; the operator cannot approve it; another member's `approve` lets it run,
 * and the write really happens; a denied run exits 126 without running. Metadata-only set on the
 * server reaches the runner.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { EXAMPLE_DIR, PYTHON, runCli, setUpProject, spawnCli, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';

describe('four-eyes approvals (server + TypeScript runner + CLI, example project on PostgreSQL)', () => {
  let serverDb: FreshDatabase;
  let djangoDb: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let adminCli: Record<string, string>;
  let devCli: Record<string, string>;
  let token: string;

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const notes = async (): Promise<number> => {
    const client = new pg.Client({ connectionString: djangoDb.databaseUrl });
    await client.connect();
    try {
      return Number((await client.query('SELECT count(*) AS n FROM demo_note')).rows[0].n);
    } finally {
      await client.end();
    }
  };
  const waiting = () =>
    waitFor('a request waiting for approval', async () => {
      const { items } = (await api('/api/v1/approvals?project=shop')).body as { items: Array<{ execution_id: string; command: string }> };
      return items[0];
    }, 20_000, 100);

  beforeAll(async () => {
    [serverDb, djangoDb] = await Promise.all([freshDatabase('sqlite'), freshDatabase('postgres')]);
    const exampleEnv = { DJANGOCOMMAND_EXAMPLE_DATABASE_URL: djangoDb.databaseUrl!, PYTHONUNBUFFERED: '1' };
    execFileSync(PYTHON, ['manage.py', 'migrate', '-v', '0'], { cwd: EXAMPLE_DIR, env: { ...process.env, ...exampleEnv } });
    server = await startServer(serverDb, { DJANGOCOMMAND_RUNNER_OFFLINE_AFTER: '5' });
    let key: string;
    ({ key, token } = await setUpProject(server));
    adminCli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    expect((await api('/api/v1/users', { method: 'POST', body: JSON.stringify({ email: 'dev@example.com', password: 'correct horse battery', one_time_password: false }) })).status).toBe(201);
    expect((await api('/api/v1/projects/shop/members', { method: 'PUT', body: JSON.stringify({ email: 'dev@example.com', role: 'operator' }) })).status).toBeLessThan(300);
    const devToken = await server.admin(['create-token', '--user', 'dev@example.com', '--json']);
    expect(devToken.code, devToken.stderr).toBe(0);
    devCli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: JSON.parse(devToken.stdout).token };
    runner = await startRunner(runnerEnv(server.url, key, exampleEnv));
    await waitFor('the catalogue', async () => (await api('/api/v1/projects/shop/commands/write_notes')).status === 200, 30_000, 100);
  }, 120_000);
  afterAll(async () => {
    if (process.env.DEBUG_RUNNER) console.log(runner?.logs());
    await runner?.stop();
    await server?.stop();
    await serverDb?.drop();
    await djangoDb?.drop();
  });

  it('an operator\'s run waits for approval (nothing runs), cannot be self-approved, and runs once another member approves it', async () => {
    const set = await runCli(['command-settings', 'shop', 'write_notes', '--requires-approval', 'on', '--timeout', '10m'], adminCli);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('requires approval: on');
    expect(set.stdout).toContain('default timeout:   10 min');

    const before = await notes();
    const run = spawnCli(['run', '--project', 'shop', 'write_notes', 'create'], devCli);
    const request = await waiting();
    // It waits: a second look after the runner had every chance to take it.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await api(`/api/v1/executions/${request.execution_id}`)).body.status).toBe('awaiting_approval');
    expect(await notes()).toBe(before);

    const list = await runCli(['approvals', '--project', 'shop'], adminCli);
    expect(list.stdout).toContain(`${request.execution_id}  shop  write_notes create  asked by dev@example.com`);
    const self = await runCli(['approve', request.execution_id], devCli);
    expect(self.code).toBe(1);
    expect(self.stderr).toMatch(/another member must approve it.*\[DC_SELF_APPROVAL\]/);

    const ok = await runCli(['approve', request.execution_id, '--comment', 'looks right'], adminCli);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`${request.execution_id} approved`);

    const result = await run.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('write_notes create on shop needs approval by another member before it runs');
    expect(result.stderr).toContain(`${server.url}/#/executions/${request.execution_id}`);
    expect(result.stderr).toContain('djangocommand: approved; write_notes is');
    expect(await notes()).toBe(before + 1);
    const e = (await api(`/api/v1/executions/${request.execution_id}`)).body;
    expect(e).toMatchObject({ status: 'succeeded', timeout: 600 });
  }, 90_000);

  it('metadata-only set on the server reaches the runner (protocol v2): the output is not captured', async () => {
    const plain = await runCli(['run', '--project', 'shop', 'check'], adminCli);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('System check identified no issues');
    const set = await runCli(['command-settings', 'shop', 'check', '--metadata-only', 'on'], adminCli);
    expect(set.code, set.stderr).toBe(0);
    const quiet = await runCli(['run', '--project', 'shop', 'check'], adminCli);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).not.toContain('System check identified');
    expect(quiet.stdout).toContain('metadata-only');
  }, 60_000);

  it('a denied run exits 126 and writes nothing', async () => {
    const before = await notes();
    const run = spawnCli(['run', '--project', 'shop', 'write_notes', 'create'], devCli);
    const request = await waiting();
    const no = await runCli(['deny', request.execution_id, '--comment', 'not today'], adminCli);
    expect(no.code, no.stderr).toBe(0);
    const result = await run.result;
    expect(result.code).toBe(126);
    expect(result.stderr).toMatch(/write_notes rejected: denied by .*: not today/);
    expect(await notes()).toBe(before);
  }, 60_000);
});
