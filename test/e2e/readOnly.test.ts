/**
 * Read-only database mode end to end: a real server, our runner (protocol v2) next to the example
 * Django project on PostgreSQL, and the CLI. `run --read-only` of a writing command fails
 * non-zero naming read-only mode and writes nothing; without it the same command writes; the
 * defaults (DJANGOCOMMAND_READONLY_COMMANDS, the server's per-command setting, a read-only
 * schedule) apply whatever a request says; the execution and the audit log record the mode; and
 * a project whose online runners all speak v1 gets a refusal instead of a writable run.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { EXAMPLE_DIR, PYTHON, runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { V1Client } from '../support/v1Client.js';
import { connectV2, hello } from '../support/v2Socket.js';
import type { Execute, ServerMessage } from '../../src/shared/protocolV2.js';

describe('read-only database mode (server + TypeScript runner + CLI, example project on PostgreSQL)', () => {
  let serverDb: FreshDatabase;
  let djangoDb: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let cli: Record<string, string>;
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
  const ended = (id: string) =>
    waitFor(`execution ${id} to end`, async () => {
      const e = (await api(`/api/v1/executions/${id}`)).body;
      return ['succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'lost', 'expired'].includes(e.status) ? e : undefined;
    }, 30_000, 100);
  const output = async (id: string) => (await fetch(`${server.url}/api/v1/executions/${id}/output`, { headers: { authorization: `Bearer ${token}` } })).text();

  beforeAll(async () => {
    [serverDb, djangoDb] = await Promise.all([freshDatabase('sqlite'), freshDatabase('postgres')]);
    const exampleEnv = { DJANGOCOMMAND_EXAMPLE_DATABASE_URL: djangoDb.databaseUrl!, PYTHONUNBUFFERED: '1' };
    execFileSync(PYTHON, ['manage.py', 'migrate', '-v', '0'], { cwd: EXAMPLE_DIR, env: { ...process.env, ...exampleEnv } });
    execFileSync(PYTHON, ['manage.py', 'write_notes', 'create'], { cwd: EXAMPLE_DIR, env: { ...process.env, ...exampleEnv } });
    server = await startServer(serverDb, { DJANGOCOMMAND_RUNNER_OFFLINE_AFTER: '5' });
    let key: string;
    ({ key, token } = await setUpProject(server));
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    // touch_note is read-only on the Django side, and runs cold: the cold path is enforced too.
    runner = await startRunner(runnerEnv(server.url, key, exampleEnv, { EXAMPLE_READONLY_COMMANDS: 'touch_note', DJANGOCOMMAND_COLD_COMMANDS: 'touch_note' }));
  });
  afterAll(async () => {
    if (process.env.DEBUG_RUNNER) console.log(runner?.logs());
    await runner?.stop();
    await server?.stop();
    await serverDb?.drop();
    await djangoDb?.drop();
  });

  it('run --read-only: a write fails non-zero naming read-only mode and how to get a writable run; nothing is written', async () => {
    const before = await notes();
    const res = await runCli(['run', '--read-only', '--project', 'shop', 'write_notes', 'create'], cli);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('(read-only database mode)');
    expect(res.stderr).toContain("read-only mode: this run may not write to the database (INSERT refused on database 'default')");
    expect(res.stderr).toContain('without --read-only (CLI)');
    expect(res.stderr).toContain('write_notes failed with exit code 1 (it ran in read-only database mode: writes are refused)');
    expect(await notes()).toBe(before);
    const { items } = (await api('/api/v1/executions?command=write_notes&limit=1')).body;
    expect(items[0]).toMatchObject({ read_only: true, status: 'failed', exit_code: 1 });
    const audit = (await api(`/api/v1/audit?execution=${items[0].id}&action=execution.create`)).body;
    expect(audit.items[0].details).toMatchObject({ read_only: true, read_only_sources: ['requested'] });
    expect(runner.logs()).toMatch(/write_notes create started \(warm, read-only/);
  });

  it('without --read-only the same command writes; raw SQL through the API with "read_only": true does not', async () => {
    const before = await notes();
    const res = await runCli(['run', '--project', 'shop', 'write_notes', 'create'], cli);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(String(before + 1));
    expect(await notes()).toBe(before + 1);

    for (const how of ['raw_insert', 'executemany', 'bulk_create', 'update', 'delete', 'select_for_update']) {
      const made = await api('/api/v1/projects/shop/executions', { method: 'POST', body: JSON.stringify({ command: 'write_notes', argv: [how], read_only: true }) });
      expect(made.status).toBe(201);
      expect(made.body.read_only).toBe(true);
      const e = await ended(made.body.id);
      expect(e.status, how).toBe('failed');
      expect(await output(made.body.id)).toContain('read-only mode: this run may not write to the database');
    }
    expect(await notes()).toBe(before + 1);
  });

  it('DJANGOCOMMAND_READONLY_COMMANDS: reported with the commands, and applied (cold) without being asked', async () => {
    const c = (await api('/api/v1/projects/shop/commands/touch_note')).body;
    expect(c).toMatchObject({ read_only: true, django_read_only: true, read_only_default: false });
    expect((await api('/api/v1/projects/shop/commands/write_notes')).body.read_only).toBe(false);
    // The list joins the catalogue hash both sides compute, so a change of the setting alone is resent.
    expect((await api('/api/v1/projects/shop')).body.commands_hash).toMatch(/^sha256:[0-9a-f]{64};readonly=[0-9a-f]{32}$/);
    const before = await notes();
    const res = await runCli(['run', '--project', 'shop', 'touch_note'], cli);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('read-only mode: this run may not write to the database');
    expect(await notes()).toBe(before);
    const { items } = (await api('/api/v1/executions?command=touch_note&limit=1')).body;
    expect(items[0].read_only).toBe(true);
    expect(runner.logs()).toMatch(/touch_note\s+started \(cold, read-only/);
    // "read_only": false does not make it writable.
    const made = await api('/api/v1/projects/shop/executions', { method: 'POST', body: JSON.stringify({ command: 'touch_note', read_only: false }) });
    expect(made.body.read_only).toBe(true);
    expect((await ended(made.body.id)).status).toBe('failed');
    expect(await notes()).toBe(before);
  });

  it('the server-side default per command (CLI `command --read-only`), audited', async () => {
    const set = await runCli(['command', 'write_notes', '--project', 'shop', '--read-only'], cli);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('read-only by default: yes (server setting: yes; DJANGOCOMMAND_READONLY_COMMANDS: no)');
    const before = await notes();
    const res = await runCli(['run', '--project', 'shop', 'write_notes', 'create'], cli);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('read-only mode');
    expect(await notes()).toBe(before);
    const audit = (await api('/api/v1/audit?action=command.settings')).body;
    expect(audit.items[0].details).toMatchObject({ command: 'write_notes', changes: { readOnlyDefault: { from: false, to: true } } });
    const unset = await runCli(['command', 'write_notes', '--project', 'shop', '--writable', '--json'], cli);
    expect(JSON.parse(unset.stdout)).toMatchObject({ read_only: false, read_only_default: false });
    expect((await runCli(['run', '--project', 'shop', 'write_notes', 'create'], cli)).code).toBe(0);
    expect(await notes()).toBe(before + 1);
    expect((await api('/api/v1/projects/shop/commands/nosuch', { method: 'PATCH', body: JSON.stringify({ read_only_default: true }) })).body.code).toBe('DC_UNKNOWN_COMMAND');
  });

  it('a read-only schedule runs read-only; schedules say from_code for DJANGOCOMMAND_SCHEDULES', async () => {
    const made = await runCli(['schedule', 'create', '--project', 'shop', '--read-only', '--cron', '@yearly', '--json', 'write_notes', 'create'], cli);
    expect(made.code, made.stderr).toBe(0);
    const s = JSON.parse(made.stdout);
    expect(s).toMatchObject({ read_only: true, from_code: false });
    const before = await notes();
    const now = await runCli(['schedule', 'run-now', s.id, '--json'], cli);
    expect(now.code, now.stderr).toBe(0);
    const e = await ended(JSON.parse(now.stdout).execution_id);
    expect(e).toMatchObject({ read_only: true, status: 'failed', schedule_id: s.id });
    expect(await notes()).toBe(before);
    const edited = await runCli(['schedule', 'edit', s.id, '--writable', '--json'], cli);
    expect(JSON.parse(edited.stdout).read_only).toBe(false);
  });

  it('protocol v1 cannot enforce it: refused while only v1 runners are online, never handed to one', async () => {
    const legacy = await setUpProject(server, 'legacy');
    const v1 = new V1Client({ serverUrl: server.url, apiKey: legacy.key, maxRetries: 0 });
    await v1.syncCommands([{ name: 'write_notes', app_label: 'demo', help_text: '' }, { name: 'check', app_label: 'core', help_text: '' }]);
    // The v1 runner is online (it just synced): refused, nothing made.
    const refused = await api('/api/v1/projects/legacy/executions', { method: 'POST', body: JSON.stringify({ command: 'write_notes', argv: ['create'], read_only: true }) });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('DC_READ_ONLY_UNSUPPORTED');
    expect(refused.body.error).toContain('protocol v1');
    const cliRun = await runCli(['run', '--read-only', '--project', 'legacy', 'write_notes', 'create'], cli);
    expect(cliRun.code).not.toBe(0);
    expect(cliRun.stderr).toContain('DC_READ_ONLY_UNSUPPORTED');
    // Made while no runner is online (a v2 runner may come): a v1 runner is never given it.
    await waitFor('the v1 runner to count as offline', async () => (await api('/api/v1/projects/legacy')).body.runners_online === 0, 15_000, 250);
    const queued = await api('/api/v1/projects/legacy/executions', { method: 'POST', body: JSON.stringify({ command: 'write_notes', argv: ['create'], read_only: true }) });
    expect(queued.status).toBe(201);
    await v1.heartbeat({ runner_version: '1.0', python_version: '3.11', django_version: '4.2', commands_hash: '' });
    expect((await v1.pending()).map((p) => p.id)).not.toContain(queued.body.id);
    const started = await v1.start(queued.body.id).catch((err: Error) => err);
    expect(String(started)).toMatch(/409|read-only/);
    expect((await api(`/api/v1/executions/${queued.body.id}`)).body.status).toBe('queued');
    // A writable run is still fine for the v1 runner.
    const writable = await api('/api/v1/projects/legacy/executions', { method: 'POST', body: JSON.stringify({ command: 'check' }) });
    expect(writable.status).toBe(201);
    expect((await v1.pending()).map((p) => p.id)).toContain(writable.body.id);
    const audit = (await api('/api/v1/audit?action=execution.create')).body;
    expect(audit.items.some((a: { outcome: string; details: { reason?: string } }) => a.outcome === 'denied' && a.details.reason === 'read-only mode needs a v2 runner')).toBe(true);
  });

  it('an older v2 runner (no "read_only" feature in its hello) is never sent a read-only execution; one that has it is', async () => {
    const older = await setUpProject(server, 'older');
    const isExecute = (m: ServerMessage): m is Execute => m.type === 'execute';
    const old = await connectV2(server.url, older.key, Date.now());
    try {
      old.send(hello());
      await old.next((m): m is ServerMessage => m.type === 'welcome');
      old.send({ type: 'commands', commands: [{ name: 'write_notes', app_label: 'demo', help_text: '', schema: null }, { name: 'check', app_label: 'core', help_text: '', schema: null }] });
      await old.settle();
      const ro = await api('/api/v1/projects/older/executions', { method: 'POST', body: JSON.stringify({ command: 'write_notes', argv: ['create'], read_only: true }) });
      expect(ro.status).toBe(201);
      const rw = await api('/api/v1/projects/older/executions', { method: 'POST', body: JSON.stringify({ command: 'check' }) });
      const sent = await old.next((m): m is Execute => isExecute(m) && m.execution_id === rw.body.id);
      expect(sent.read_only).toBe(false);
      await old.settle();
      expect(old.received.filter(isExecute).map((m) => m.execution_id)).not.toContain(ro.body.id);
      expect((await api(`/api/v1/executions/${ro.body.id}`)).body.status).toBe('queued');
      const capable = await connectV2(server.url, older.key, Date.now());
      try {
        capable.send(hello({ features: ['read_only'] }));
        const got = await capable.next((m): m is Execute => isExecute(m) && m.execution_id === ro.body.id);
        expect(got).toMatchObject({ command: 'write_notes', argv: ['create'], read_only: true });
      } finally {
        await capable.close();
      }
    } finally {
      await old.close();
    }
  });
});
