/**
 * Notifications in-process on both databases, with real receivers on loopback (an HTTP server
 * that checks the webhook signature, one that reads Slack's format, a real SMTP server) and the
 * test clock driving the deliverer one pass at a time.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { httpReceiver, mailText, smtpReceiver, verifySignature, type HttpReceiver, type SmtpReceiver } from './support/receivers.js';
import { SecretBox } from '../src/core/notifications/secretBox.js';
import { deliverOnce, startDeliverer } from '../src/core/notifications/deliverer.js';
import { raise } from '../src/core/notify.js';
import { sweep } from '../src/core/sweeper.js';
import type { WebhookPayload } from '../src/shared/notificationsApi.js';

const PUBLIC = 'https://dc.example.com';

describe.each(DB_KINDS)('notifications on %s', (kind) => {
  let t: TestApp;
  let hook: HttpReceiver;
  let slack: HttpReceiver;
  let smtp: SmtpReceiver;

  beforeEach(async () => {
    t = await testApp(kind);
    hook = await httpReceiver();
    slack = await httpReceiver();
    smtp = await smtpReceiver();
    t.core.notifications = { box: new SecretBox(randomBytes(32)), publicUrl: PUBLIC, smtpUrl: smtp.url, emailFrom: 'dc@example.com', sendTimeoutMs: 1000, retryBaseMs: 30_000 };
    await syncCommands(t, 'shop', ['migrate', 'check', 'clearsessions']);
    await syncCommands(t, 'blog', ['migrate']);
  });
  afterEach(async () => {
    await t.close();
    await Promise.all([hook.close(), slack.close(), smtp.close()]);
  });

  const channel = async (body: Record<string, unknown>, token?: string) => {
    const res = await t.api('POST', '/api/v1/channels', { project: 'shop', ...body }, token);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; secret: string | null; target: string };
  };
  const deliveries = async (id: string) => (await t.api('GET', `/api/v1/channels/${id}/deliveries`)).json().items as Array<{ status: string; summary: string; attempts: Array<{ ok: boolean; status_code: number | null; error: string | null; at: string }> }>;

  /** Runs a command through runner protocol v1 to its end; returns the execution id. */
  async function run(project: string, command: string, exitCode: number, output = '', argv: string[] = []): Promise<string> {
    const e = (await t.api('POST', `/api/v1/projects/${project}/executions`, { command, argv })).json();
    await t.runner(project, 'GET', '/pending/');
    expect((await t.runner(project, 'POST', `/executions/${e.id}/start/`)).statusCode).toBe(200);
    if (output) await t.runner(project, 'POST', `/executions/${e.id}/output/`, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: output }] });
    t.clock.now += 2500;
    await t.runner(project, 'POST', `/executions/${e.id}/complete/`, { exit_code: exitCode, status: exitCode === 0 ? 'success' : 'failed' });
    return e.id as string;
  }

  it('sends a failure to a signed webhook, Slack and email: project, command, arguments, who, status, exit code, duration, link and last lines', async () => {
    const wh = await channel({ kind: 'webhook', url: `${hook.url}/hook`, name: 'ops hook' });
    expect(wh.secret).toMatch(/^whsec_/);
    await channel({ kind: 'slack', url: `${slack.url}/services/T0/B0/XYZ` });
    await channel({ kind: 'email', to: ['ops@example.com', 'dev@example.com'] });
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\nTraceback: boom\n';
    const id = await run('shop', 'migrate', 3, lines, ['app', '0003']);

    expect(await deliverOnce(t.core)).toMatchObject({ routed: 1, sent: 3, failed: 0 });
    expect(hook.received).toHaveLength(1);
    const req = hook.received[0];
    expect(verifySignature(req.headers['x-djangocommand-signature'] as string, req.body, wh.secret!)).toBe(true);
    expect(verifySignature(req.headers['x-djangocommand-signature'] as string, req.body + ' ', wh.secret!)).toBe(false);
    expect(verifySignature(req.headers['x-djangocommand-signature'] as string, req.body, wh.secret!, Date.now() + 600_000)).toBe(false);
    const body = JSON.parse(req.body) as WebhookPayload;
    expect(body).toMatchObject({ type: 'execution.ended', kinds: ['failure'], project: 'shop', execution_id: id, url: `${PUBLIC}/#/executions/${id}` });
    expect(body.details).toMatchObject({ command: 'migrate', args: 'app 0003', status: 'failed', exit_code: 3, duration_ms: 2500, created_by: expect.stringContaining('admin@example.com') });
    expect(body.subject).toBe('shop: migrate failed (exit code 3)');
    expect(body.output_tail).toContain('Traceback: boom');
    expect(body.output_tail).toContain('line 30');
    expect(body.output_tail).not.toContain('line 5\n');
    expect(body.text).toMatch(/Duration: 2\.5 s/);

    const s = JSON.parse(slack.received[0].body);
    expect(slack.received[0].path).toBe('/services/T0/B0/XYZ');
    expect(s.text).toBe(`<${PUBLIC}/#/executions/${id}|shop: migrate failed (exit code 3)>`);
    expect(s.attachments[0]).toMatchObject({ color: '#d93f3f', title_link: `${PUBLIC}/#/executions/${id}` });
    expect(s.attachments[0].fields).toEqual(expect.arrayContaining([{ title: 'Project', value: 'shop', short: true }, { title: 'Exit code', value: '3', short: true }, { title: 'Arguments', value: 'app 0003', short: true }]));
    expect(s.attachments[0].text).toContain('Traceback: boom');

    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]).toMatchObject({ from: 'dc@example.com', to: ['ops@example.com', 'dev@example.com'], user: 'mailer' });
    expect(smtp.mails[0].raw).toMatch(/Subject: shop: migrate failed \(exit code 3\)/);
    const text = mailText(smtp.mails[0].raw);
    expect(text).toContain(`${PUBLIC}/#/executions/${id}`);
    expect(text).toContain('Traceback: boom');
    expect(text).toContain('Arguments: app 0003');

    // Every attempt is on record, per channel.
    const [d] = await deliveries(wh.id);
    expect(d).toMatchObject({ status: 'delivered', summary: 'shop: migrate failed (exit code 3)' });
    expect(d.attempts).toEqual([expect.objectContaining({ ok: true, status_code: 200, error: null })]);
    // A second pass sends nothing again.
    expect(await deliverOnce(t.core)).toMatchObject({ routed: 0, sent: 0 });
    expect(hook.received).toHaveLength(1);
  });

  it('marks events no channel hears routed together, and routes the others with their deliveries', async () => {
    const wh = await channel({ kind: 'webhook', url: `${hook.url}/hook`, name: 'ops hook' });
    await run('blog', 'migrate', 1);
    await run('shop', 'check', 0);
    await run('shop', 'migrate', 2);
    // The blog failure and the shop success reach no channel; the shop failure reaches the hook.
    expect(await deliverOnce(t.core)).toMatchObject({ routed: 3, sent: 1 });
    expect(await t.core.store.notifications.listUnroutedEvents(10)).toEqual([]);
    expect((await deliveries(wh.id)).map((d) => d.summary)).toEqual(['shop: migrate failed (exit code 2)']);
    expect(await deliverOnce(t.core)).toMatchObject({ routed: 0, sent: 0 });
  });

  it('never sends the output of a metadata-only command', async () => {
    await channel({ kind: 'webhook', url: `${hook.url}/hook` });
    const id = await run('shop', 'migrate', 1, 'SECRET ROW 42\n');
    await deliverOnce(t.core);
    expect(JSON.parse(hook.received[0].body).output_tail).toContain('SECRET ROW 42');
    await raise(t.core, { type: 'execution.ended', projectId: t.projects.shop.id, executionId: id, details: { command: 'migrate', status: 'failed', exit_code: 1, metadata_only: true } });
    await deliverOnce(t.core);
    expect(hook.received).toHaveLength(2);
    expect(hook.received[1].body).not.toContain('SECRET ROW 42');
    expect(JSON.parse(hook.received[1].body).output_tail).toBeNull();
  });

  it('retries a failing receiver with backoff, records every attempt, then delivers', async () => {
    const wh = await channel({ kind: 'webhook', url: `${hook.url}/hook` });
    hook.script = [500, 503];
    await run('shop', 'migrate', 1);
    expect(await deliverOnce(t.core)).toMatchObject({ sent: 0, failed: 1 });
    t.clock.now += 20_000;
    expect(await deliverOnce(t.core)).toMatchObject({ sent: 0, failed: 0 });
    t.clock.now += 11_000; // 31 s after the first attempt
    expect(await deliverOnce(t.core)).toMatchObject({ failed: 1 });
    t.clock.now += 50_000; // the second wait is 60 s: not yet
    expect(await deliverOnce(t.core)).toMatchObject({ sent: 0, failed: 0 });
    t.clock.now += 11_000;
    expect(await deliverOnce(t.core)).toMatchObject({ sent: 1 });
    expect(hook.received).toHaveLength(3);
    // Same delivery id on every retry: receivers can drop duplicates.
    expect(new Set(hook.received.map((r) => JSON.parse(r.body).delivery_id)).size).toBe(1);
    const [d] = await deliveries(wh.id);
    expect(d.status).toBe('delivered');
    expect(d.attempts.map((a) => [a.ok, a.status_code])).toEqual([[false, 500], [false, 503], [true, 200]]);
    expect(d.attempts[0].error).toBe('HTTP 500: receiver says no');
    expect(Date.parse(d.attempts[1].at) - Date.parse(d.attempts[0].at)).toBe(31_000);
  });

  it('gives up after a day of retries', async () => {
    const wh = await channel({ kind: 'webhook', url: `${hook.url}/hook` });
    hook.script = Array(100).fill(500);
    await run('shop', 'migrate', 1);
    for (let i = 0; i < 40; i++) {
      await deliverOnce(t.core);
      t.clock.now += 3600_000;
    }
    const [d] = await deliveries(wh.id);
    expect(d.status).toBe('failed');
    expect(d.attempts.length).toBeGreaterThan(20);
    expect(d.attempts.length).toBeLessThan(35);
    expect(Date.parse(d.attempts.at(-1)!.at) - Date.parse(d.attempts[0].at)).toBeLessThanOrEqual(24 * 3600_000);
  });

  it('does not let a receiver that never answers delay the others', async () => {
    const stuck = await channel({ kind: 'webhook', url: `${hook.url}/stuck` });
    await channel({ kind: 'slack', url: `${slack.url}/services/x` });
    hook.script = [0];
    await run('shop', 'migrate', 1);
    const started = Date.now();
    expect(await deliverOnce(t.core)).toMatchObject({ sent: 1, failed: 1 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(slack.received).toHaveLength(1);
    expect((await deliveries(stuck.id))[0].attempts[0]).toMatchObject({ ok: false, status_code: null, error: 'no answer within 1 s' });
  });

  it('collapses a storm: 10 messages in a minute, then one digest of the rest', async () => {
    const wh = await channel({ kind: 'webhook', url: `${hook.url}/hook` });
    for (let i = 0; i < 25; i++) {
      await raise(t.core, { type: 'execution.ended', projectId: t.projects.shop.id, executionId: `00000000-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`, details: { command: 'migrate', status: 'failed', exit_code: i } });
      t.clock.now += 1000;
    }
    await deliverOnce(t.core);
    expect(hook.received).toHaveLength(10);
    t.clock.now += 30_000;
    await deliverOnce(t.core);
    expect(hook.received).toHaveLength(10);
    t.clock.now += 31_000;
    await deliverOnce(t.core);
    expect(hook.received).toHaveLength(11);
    const digest = JSON.parse(hook.received[10].body) as WebhookPayload;
    expect(digest.type).toBe('digest');
    expect(digest.items).toHaveLength(15);
    expect(digest.subject).toMatch(/^15 notifications collapsed into one .*15 failures/);
    expect(digest.items[0].url).toBe(`${PUBLIC}/#/executions/00000000-0000-4000-8000-000000000010`);
    const list = await deliveries(wh.id);
    expect(list.filter((d) => d.status === 'digested')).toHaveLength(15);
    // The storm is over a minute later: messages go out one by one again.
    t.clock.now += 120_000;
    await raise(t.core, { type: 'execution.ended', projectId: t.projects.shop.id, executionId: null, details: { command: 'check', status: 'failed' } });
    await deliverOnce(t.core);
    expect(hook.received).toHaveLength(12);
    expect(JSON.parse(hook.received[11].body).subject).toBe('shop: check failed');
  });

  it('tells a recovery once, successes to those who want them, and filters by command glob and project', async () => {
    const recovery = await channel({ kind: 'webhook', url: `${hook.url}/recovery`, on: ['recovery'] });
    const success = await channel({ kind: 'webhook', url: `${hook.url}/success`, on: ['success'] });
    const glob = await channel({ kind: 'webhook', url: `${hook.url}/glob`, on: ['failure'], commands: 'clear*,check' });
    const everywhere = await channel({ project: null, kind: 'webhook', url: `${hook.url}/server-wide`, on: ['failure'] });
    await run('shop', 'migrate', 1);
    await run('shop', 'migrate', 0);
    await run('shop', 'migrate', 0);
    await run('shop', 'clearsessions', 1);
    await run('blog', 'migrate', 1);
    await deliverOnce(t.core);
    // Sent at once, they may arrive in any order: read them in the order they were raised.
    const subjects = (path: string) =>
      hook.received
        .filter((r) => r.path === path)
        .map((r) => JSON.parse(r.body) as WebhookPayload)
        .sort((a, b) => a.delivery_id - b.delivery_id)
        .map((b) => b.subject);
    expect(subjects('/recovery')).toEqual(['shop: migrate recovered: it succeeded after failing']);
    expect(subjects('/success')).toEqual(['shop: migrate recovered: it succeeded after failing', 'shop: migrate succeeded']);
    expect(subjects('/glob')).toEqual(['shop: clearsessions failed (exit code 1)']);
    expect(subjects('/server-wide')).toEqual(['shop: migrate failed (exit code 1)', 'shop: clearsessions failed (exit code 1)', 'blog: migrate failed (exit code 1)']);
    for (const c of [recovery, success, glob, everywhere]) expect((await deliveries(c.id)).every((d) => d.status === 'delivered')).toBe(true);
  });

  it('reports an execution running past a channel\u2019s threshold, once', async () => {
    await channel({ kind: 'webhook', url: `${hook.url}/slow`, on: ['failure'], slow_after: 300 });
    const e = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate' })).json();
    await t.runner('shop', 'GET', '/pending/');
    await t.runner('shop', 'POST', `/executions/${e.id}/start/`);
    t.clock.now += 299_000;
    await deliverOnce(t.core);
    expect(hook.received).toHaveLength(0);
    t.clock.now += 2000;
    expect(await deliverOnce(t.core)).toMatchObject({ slow: 1, sent: 1 });
    t.clock.now += 60_000;
    expect(await deliverOnce(t.core)).toMatchObject({ slow: 0, sent: 0 });
    const body = JSON.parse(hook.received[0].body) as WebhookPayload;
    expect(body).toMatchObject({ type: 'execution.slow', kinds: ['slow'], subject: 'shop: migrate has been running for over 5 min', execution_id: e.id });
  });

  it('announces a runner going offline and coming back once, and events other parts raise by their prefix', async () => {
    await channel({ kind: 'webhook', url: `${hook.url}/ops`, on: ['runner', 'shell', 'missed', 'health'] });
    const beat = () => t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' });
    await beat();
    await sweep(t.core);
    t.clock.now += 100_000;
    await sweep(t.core);
    await sweep(t.core);
    await beat();
    await sweep(t.core); // runner states are read every 5 s at most, not on every sweep: nothing yet
    t.clock.now += 5_000;
    await beat();
    await sweep(t.core);
    await raise(t.core, { type: 'shell.writable', projectId: t.projects.shop.id, details: { reason: 'fix a row', requested_by: 'dev@example.com' } });
    await raise(t.core, { type: 'schedule.missed', projectId: t.projects.shop.id, scheduleId: 's1', details: { schedule_id: 's1', schedule_name: 'nightly', command: 'clearsessions', due_at: '2026-11-22T03:00:00Z', reason: 'no runner online' } });
    await raise(t.core, { type: 'backup.done', projectId: t.projects.shop.id, details: {} });
    await deliverOnce(t.core);
    const got = hook.received.map((r) => JSON.parse(r.body) as WebhookPayload).sort((a, b) => a.delivery_id - b.delivery_id);
    expect(got.map((b) => [b.type, b.kinds])).toEqual([
      ['runner.offline', ['runner']],
      ['runner.online', ['runner']],
      ['shell.writable', ['shell']],
      ['schedule.missed', ['missed']],
    ]);
    expect(got[0].subject).toMatch(/^shop: runner .* is offline$/);
    expect(got[3].subject).toBe('shop: schedule nightly did not run clearsessions due at 2026-11-22T03:00:00Z');
    expect(got[3].text).toContain('Reason: no runner online');
  });

  it('starts passes at most every 0.1 s while events keep coming, and routes every event', async () => {
    const notifications = t.core.store.notifications;
    const listChannels = notifications.listChannels.bind(notifications);
    let passes = 0;
    notifications.listChannels = () => {
      passes++;
      return listChannels();
    };
    const deliverer = startDeliverer(t.core, { idleMs: 60_000 });
    try {
      await new Promise((r) => setTimeout(r, 50));
      passes = 0;
      const started = Date.now();
      for (let i = 0; i < 30; i++) {
        await raise(t.core, { type: 'execution.ended', projectId: t.projects.shop.id, executionId: null, details: { command: 'check', status: 'succeeded', i } });
        await new Promise((r) => setTimeout(r, 10));
      }
      const deadline = Date.now() + 5_000;
      while ((await notifications.listUnroutedEvents(100)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await notifications.listUnroutedEvents(100)).toEqual([]);
      // One pass an event would be 30; one a 0.1 s is what the time allowed, and one more.
      expect(passes).toBeGreaterThan(0);
      expect(passes).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 100) + 1);
      expect(passes).toBeLessThan(15);
    } finally {
      await deliverer.stop();
      notifications.listChannels = listChannels;
    }
  });

  it('sends a test to the one channel, and cancels what a deleted channel had not sent', async () => {
    const a = await channel({ kind: 'webhook', url: `${hook.url}/a` });
    const b = await channel({ kind: 'webhook', url: `${hook.url}/b` });
    const test = await t.api('POST', `/api/v1/channels/${a.id}/test`, {});
    expect(test.statusCode).toBe(200);
    // Queued in the outbox; the deliverer routes and sends it.
    expect(test.json()).toMatchObject({ event_id: expect.any(Number), delivery: null });
    await deliverOnce(t.core);
    expect(hook.received.map((r) => [r.path, JSON.parse(r.body).type])).toEqual([['/a', 'channel.test']]);
    hook.script = [500];
    await run('shop', 'migrate', 1);
    await deliverOnce(t.core);
    expect((await t.api('DELETE', `/api/v1/channels/${b.id}`)).statusCode).toBe(200);
    t.clock.now += 3600_000;
    await deliverOnce(t.core);
    expect((await t.api('GET', `/api/v1/channels/${b.id}/deliveries`)).statusCode).toBe(404);
    expect((await t.api('GET', '/api/v1/channels')).json().items.map((c: { id: string }) => c.id)).toEqual([a.id]);
    const actions = (await t.api('GET', '/api/v1/audit?action=channel.test')).json().items;
    expect(actions).toHaveLength(1);
  });

  it('keeps secrets out of every answer and the audit log, and lets only admins change channels', async () => {
    const url = `${hook.url}/services/T000/B000/S3CR3TPATH`;
    const secret = 'my-own-signing-secret-1234';
    const created = await t.api('POST', '/api/v1/channels', { project: 'shop', kind: 'webhook', url, secret });
    expect(created.json()).toMatchObject({ secret, target: `${hook.url}/…`, signed: true });
    const smtpPass = 'per-channel-smtp-pass';
    await t.api('POST', '/api/v1/channels', { project: 'shop', kind: 'email', to: ['a@example.com'], url: `smtp://u:${smtpPass}@127.0.0.1:1` });
    const id = created.json().id;
    for (const [path, token] of [
      ['/api/v1/channels', t.token],
      ['/api/v1/channels', t.userToken],
      [`/api/v1/channels/${id}`, t.userToken],
      [`/api/v1/channels/${id}/deliveries`, t.userToken],
      ['/api/v1/audit', t.token],
    ]) {
      const res = await t.api('GET', path, undefined, token);
      expect(res.statusCode, path).toBe(200);
      for (const s of ['S3CR3TPATH', secret, smtpPass]) expect(res.body, path).not.toContain(s);
    }
    expect((await t.api('GET', `/api/v1/channels/${id}`, undefined, t.userToken)).json()).toMatchObject({ target: `${hook.url}/…`, kind: 'webhook' });
    for (const [method, path, body] of [
      ['POST', '/api/v1/channels', { project: 'shop', kind: 'webhook', url }],
      ['POST', `/api/v1/channels/${id}/test`, {}],
      ['DELETE', `/api/v1/channels/${id}`, undefined],
    ] as const) {
      const res = await t.api(method, path, body, t.userToken);
      expect(res.statusCode, `${method} ${path}`).toBe(403);
    }
    expect((await t.api('GET', '/api/v1/channels')).json().items).toHaveLength(2);
    // An error from the receiver never carries the URL's secret path.
    hook.script = [404];
    await t.api('POST', `/api/v1/channels/${id}/test`, {});
    await deliverOnce(t.core);
    expect((await t.api('GET', `/api/v1/channels/${id}/deliveries`)).body).not.toContain('S3CR3TPATH');
  });

  it('refuses wrong channels with the field and the fix', async () => {
    const bad = async (body: Record<string, unknown>, pattern: RegExp) => {
      const res = await t.api('POST', '/api/v1/channels', { project: 'shop', ...body });
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toMatch(pattern);
    };
    await bad({ kind: 'pager', url: 'https://x.example.com' }, /kind/);
    await bad({ kind: 'webhook', url: 'https://x.example.com', on: ['failures'] }, /did you mean failure/);
    await bad({ kind: 'webhook', url: 'http://hooks.example.com/x' }, /https/);
    await bad({ kind: 'webhook' }, /needs the URL/);
    await bad({ kind: 'webhook', url: 'https://x.example.com', on: ['slow'] }, /slow_after/);
    await bad({ kind: 'email' }, /recipients/);
    await bad({ kind: 'email', to: ['not-an-address'] }, /not an email address/);
    await bad({ kind: 'slack', url: 'https://hooks.slack.com/x', secret: 'abcdefghijklmnopq' }, /no signing secret/);
    await bad({ kind: 'webhook', url: 'https://x.example.com', commands: 'migrate; rm' }, /glob/);
    expect((await t.api('POST', '/api/v1/channels', { project: 'nope', kind: 'webhook', url: 'https://x.example.com' })).statusCode).toBe(404);
    expect((await t.api('GET', '/api/v1/channels')).json().items).toEqual([]);
  });
});
