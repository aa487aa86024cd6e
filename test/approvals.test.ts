/**
 * Four-eyes approvals through the HTTP API (in-process, real store), on SQLite and PostgreSQL:
 * runs of a command that requires approval wait in awaiting_approval; every way the requester
 * could approve their own request is refused with its own error; so are people without the
 * right (viewer, read-only token, CI token); an approval is bound to what was asked; requests
 * expire; the request reaches the notification outbox and the audit log.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { createToken, createUser } from '../src/core/accounts.js';
import { SYSTEM_ACTOR } from '../src/core/audit.js';
import { sweep } from '../src/core/sweeper.js';
import { cliExitCode } from '../src/domain/execution.js';
import { Scheduler } from '../src/core/schedules/scheduler.js';
import type { ProjectRole } from '../src/domain/roles.js';
import type { NewNotificationEvent } from '../src/store/notificationStore.js';
import { recordEvents } from './schedules/support.js';

interface Person {
  email: string;
  token: string;
}

describe.each(DB_KINDS)('four-eyes approvals (%s)', (kind) => {
  let t: TestApp;
  /** dev@example.com: operator, the requester in most tests. */
  let dev: Person;
  /** Another operator, the usual approver. */
  let ops: Person;
  let viewer: Person;
  let projectAdmin: Person;
  let events: NewNotificationEvent[];

  const person = async (email: string, role: ProjectRole | null, limits: { readOnly?: boolean } = {}): Promise<Person> => {
    const user = (await t.core.store.findUserByEmail(email)) ?? (await createUser(t.core, SYSTEM_ACTOR, { email, password: 'correct horse battery', isAdmin: false }));
    if (role) await t.core.store.access.setMember(t.projects.shop.id, user.id, role, t.clock.now);
    return { email, token: (await createToken(t.core, SYSTEM_ACTOR, user, `t${Math.random()}`, limits)).secret };
  };
  const settings = async (body: Record<string, unknown>, command = 'migrate') => {
    const res = await t.api('PUT', `/api/v1/projects/shop/commands/${command}/settings`, body);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const run = async (token: string, body: Record<string, unknown> = {}) => {
    const res = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: ['shop', '0042'], ...body }, token);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; status: string; args: string; timeout: number };
  };
  const decide = (verb: 'approve' | 'deny', id: string, token: string, comment?: string) => t.api('POST', `/api/v1/executions/${id}/${verb}`, comment === undefined ? {} : { comment }, token);
  const status = async (id: string) => (await t.api('GET', `/api/v1/executions/${id}`)).json() as { status: string; status_reason: string | null };
  const pendingV1 = async () => (await t.runner('shop', 'GET', '/pending/')).json().executions as Array<{ id: string }>;
  const audit = async (action: string, executionId?: string) =>
    (await t.api('GET', `/api/v1/audit?action=${action}&limit=100${executionId ? `&execution=${executionId}` : ''}`)).json().items as Array<{ actor: string; outcome: string; details: Record<string, unknown> }>;
  const refused = (res: { statusCode: number; json(): { code: string; error: string } }, status: number, code: string, message?: RegExp) => {
    expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
    expect(res.json().code).toBe(code);
    if (message) expect(res.json().error).toMatch(message);
  };
  const db = () => (t.core.store as unknown as { db: Kysely<any> }).db;

  beforeEach(async () => {
    t = await testApp(kind);
    await syncCommands(t, 'shop', ['migrate', 'check']);
    dev = { email: 'dev@example.com', token: t.userToken };
    ops = await person('ops@example.com', 'operator');
    viewer = await person('viewer@example.com', 'viewer');
    projectAdmin = await person('padmin@example.com', 'admin');
    await settings({ requires_approval: true });
    events = recordEvents(t);
  });
  afterEach(async () => t.close());

  it('a run waits in awaiting_approval, is not offered to runners, and is announced to the channels and the audit log', async () => {
    const e = await run(dev.token);
    expect(e.status).toBe('awaiting_approval');
    expect(await pendingV1()).toEqual([]);
    const [event] = events.filter((x) => x.type === 'approval.requested');
    expect(event).toMatchObject({ executionId: e.id, details: { command: 'migrate', args: 'shop 0042', requested_by: 'dev@example.com (token test)', approver_role: 'operator' } });
    expect((await audit('approval.request', e.id))[0]).toMatchObject({ actor: 'dev@example.com (token test)', outcome: 'ok' });
    const list = (await t.api('GET', '/api/v1/approvals?project=shop', undefined, viewer.token)).json().items;
    expect(list).toMatchObject([{ execution_id: e.id, command: 'migrate', args: 'shop 0042', status: 'pending', requested_by: 'dev@example.com (token test)' }]);
    // A command without the setting is queued at once.
    const check = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, dev.token);
    expect(check.json().status).toBe('queued');
  });

  it('refuses the requester by the same token, another token of theirs, and their browser session', async () => {
    const e = await run(dev.token);
    refused(await decide('approve', e.id, dev.token), 403, 'DC_SELF_APPROVAL', /another member must approve it/);
    const second = await person(dev.email, null);
    refused(await decide('approve', e.id, second.token), 403, 'DC_SELF_APPROVAL');
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: dev.email, password: 'correct horse battery' }) });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    const viaSession = await t.app.inject({
      method: 'POST',
      url: `/api/v1/executions/${e.id}/approve`,
      headers: { cookie, 'x-csrf-token': login.json().csrf_token, 'content-type': 'application/json' },
      payload: '{}',
    });
    refused(viaSession, 403, 'DC_SELF_APPROVAL');
    // Denying is deciding too: the requester withdraws by cancelling.
    refused(await decide('deny', e.id, dev.token), 403, 'DC_SELF_APPROVAL', /cancel the execution/);
    expect((await status(e.id)).status).toBe('awaiting_approval');
    const denied = await audit('approval.approve', e.id);
    expect(denied.filter((a) => a.outcome === 'denied' && a.details.reason === 'requester')).toHaveLength(3);
  });

  it('refuses a viewer, a read-only token, a CI token and a non-member, each with its own error', async () => {
    const e = await run(dev.token);
    refused(await decide('approve', e.id, viewer.token), 403, 'DC_FORBIDDEN', /your role in project shop is viewer/);
    const readOnly = await person('ops@example.com', null, { readOnly: true });
    refused(await decide('approve', e.id, readOnly.token), 403, 'DC_FORBIDDEN', /this token is read-only/);
    const ci = await t.api('POST', '/api/v1/projects/shop/ci-tokens', { name: 'deploy', role: 'operator' });
    expect(ci.statusCode, ci.body).toBe(201);
    refused(await decide('approve', e.id, ci.json().token), 403, 'DC_FORBIDDEN', /CI token acts for no person/);
    const outsider = await person('outsider@example.com', null);
    refused(await decide('approve', e.id, outsider.token), 404, 'DC_UNKNOWN_EXECUTION');
    expect((await status(e.id)).status).toBe('awaiting_approval');
    expect(await pendingV1()).toEqual([]);
  });

  it('another operator approves with a comment: queued, offered to the runner, audited; a second decision is refused', async () => {
    const e = await run(dev.token);
    const res = await decide('approve', e.id, ops.token, 'checked the migration plan');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().status).toBe('queued');
    expect((await pendingV1()).map((x) => x.id)).toEqual([e.id]);
    expect((await audit('approval.approve', e.id))[0]).toMatchObject({ actor: expect.stringMatching(/^ops@example.com \(token /), outcome: 'ok', details: { comment: 'checked the migration plan' } });
    const view = (await t.api('GET', `/api/v1/executions/${e.id}/approval`, undefined, viewer.token)).json();
    expect(view).toMatchObject({ status: 'approved', comment: 'checked the migration plan', decided_by: expect.stringContaining('ops@example.com') });
    refused(await decide('approve', e.id, projectAdmin.token), 409, 'DC_NOT_AWAITING_APPROVAL', /was approved by ops@example.com/);
    refused(await decide('deny', e.id, projectAdmin.token), 409, 'DC_NOT_AWAITING_APPROVAL');
    expect((await t.api('GET', '/api/v1/approvals?project=shop')).json().items).toEqual([]);
  });

  it('deny: the execution ends rejected with who and why; the CLI exit code for it is 126', async () => {
    const e = await run(dev.token);
    const res = await decide('deny', e.id, ops.token, 'not during business hours');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: 'rejected', status_reason: expect.stringMatching(/^denied by ops@example.com .*: not during business hours$/) });
    expect(await pendingV1()).toEqual([]);
    refused(await decide('approve', e.id, projectAdmin.token), 409, 'DC_NOT_AWAITING_APPROVAL');
    expect(cliExitCode('rejected', null)).toBe(126);
  });

  it('a CI token run: the person who created the CI token may not approve it', async () => {
    const ci = (await t.api('POST', '/api/v1/projects/shop/ci-tokens', { name: 'deploy', role: 'operator' }, projectAdmin.token)).json().token as string;
    const e = await run(ci);
    expect(e.status).toBe('awaiting_approval');
    refused(await decide('approve', e.id, projectAdmin.token), 403, 'DC_SELF_APPROVAL');
    expect((await decide('approve', e.id, ops.token)).statusCode).toBe(200);
  });

  it("a schedule's run: whoever created or changed the schedule may not approve it, by any token", async () => {
    const created = await t.api('POST', '/api/v1/schedules', { project: 'shop', name: 'nightly', command: 'migrate', argv: [], cron: '*/5 * * * *' }, projectAdmin.token);
    expect(created.statusCode, created.body).toBe(201);
    const scheduleId = created.json().id as string;
    t.clock.now += 5 * 60_000;
    expect((await new Scheduler(t.core, { owner: 'test' }).pass()).started).toBe(1);
    const [fired] = (await t.api('GET', '/api/v1/approvals?project=shop')).json().items as Array<{ execution_id: string; requested_by: string }>;
    expect(fired.requested_by).toBe('schedule "nightly"');
    refused(await decide('approve', fired.execution_id, projectAdmin.token), 403, 'DC_SELF_APPROVAL');
    const otherToken = await person('padmin@example.com', null);
    refused(await decide('approve', fired.execution_id, otherToken.token), 403, 'DC_SELF_APPROVAL');
    // Edited by the owner (admin@example.com): now they are behind its runs too.
    expect((await t.api('PATCH', `/api/v1/schedules/${scheduleId}`, { argv: ['shop'] })).statusCode).toBe(200);
    refused(await decide('approve', fired.execution_id, t.token), 403, 'DC_SELF_APPROVAL');
    expect((await decide('approve', fired.execution_id, ops.token)).statusCode).toBe(200);
  });

  it('run-now of a schedule by a project admin: they may not approve the run, nor may its creator', async () => {
    const created = await t.api('POST', '/api/v1/schedules', { project: 'shop', name: 'weekly', command: 'migrate', argv: [], cron: '0 3 * * 0' }, t.token);
    expect(created.statusCode, created.body).toBe(201);
    const scheduleId = created.json().id as string;
    const res = await t.api('POST', `/api/v1/schedules/${scheduleId}/run`, undefined, projectAdmin.token);
    expect(res.statusCode, res.body).toBeLessThan(300);
    const [waiting] = (await t.api('GET', '/api/v1/approvals?project=shop')).json().items as Array<{ execution_id: string }>;
    refused(await decide('approve', waiting.execution_id, projectAdmin.token), 403, 'DC_SELF_APPROVAL');
    refused(await decide('approve', waiting.execution_id, t.token), 403, 'DC_SELF_APPROVAL'); // created the schedule
    expect((await decide('approve', waiting.execution_id, ops.token)).statusCode).toBe(200);
  });

  it('an approval is bound to the command, arguments and project: a changed row is rejected, never run', async () => {
    const e = await run(dev.token);
    await db().updateTable('executions').set({ args: 'shop zero', argv_json: JSON.stringify(['shop', 'zero']) }).where('id', '=', e.id).execute();
    refused(await decide('approve', e.id, ops.token), 409, 'DC_APPROVAL_MISMATCH', /no longer matches what was asked/);
    expect(await status(e.id)).toMatchObject({ status: 'rejected', status_reason: expect.stringContaining('changed after approval was asked for') });
    expect(await pendingV1()).toEqual([]);
    // The same for the command name.
    const f = await run(dev.token, { argv: ['blog'] });
    await db().updateTable('executions').set({ command: 'check' }).where('id', '=', f.id).execute();
    refused(await decide('approve', f.id, ops.token), 409, 'DC_APPROVAL_MISMATCH');
    expect(await pendingV1()).toEqual([]);
  });

  it('settings changed after the request: turning approval off does not release it; a stricter approver role applies', async () => {
    const e = await run(dev.token);
    await settings({ requires_approval: false });
    expect((await status(e.id)).status).toBe('awaiting_approval');
    expect(await pendingV1()).toEqual([]);
    await settings({ approver_role: 'admin' });
    refused(await decide('approve', e.id, ops.token), 403, 'DC_FORBIDDEN', /needs the admin role; your role in project shop is operator/);
    expect((await decide('approve', e.id, projectAdmin.token)).statusCode).toBe(200);
  });

  it('approver role admin set when asked stays required even when lowered later', async () => {
    await settings({ approver_role: 'admin' });
    const e = await run(dev.token);
    await settings({ approver_role: 'operator' });
    refused(await decide('approve', e.id, ops.token), 403, 'DC_FORBIDDEN');
    expect((await decide('approve', e.id, projectAdmin.token)).statusCode).toBe(200);
  });

  it('a pattern narrows approval to runs whose arguments match', async () => {
    await settings({ approval_pattern: '^\\S+ \\d{4}$', max_concurrency: 2 });
    expect((await run(dev.token, { argv: ['shop', '0042'] })).status).toBe('awaiting_approval');
    expect((await run(dev.token, { argv: [] })).status).toBe('queued');
  });

  it('expires: the sweep rejects an unanswered request ("approval expired"), audited; then nobody can approve it', async () => {
    await settings({ approval_expiry_seconds: 3600 });
    const e = await run(dev.token);
    t.clock.now += 3599_000;
    await sweep(t.core);
    expect((await status(e.id)).status).toBe('awaiting_approval');
    t.clock.now += 2000;
    const report = await sweep(t.core);
    expect(report.approvalsExpired).toBe(1);
    expect(await status(e.id)).toMatchObject({ status: 'rejected', status_reason: 'approval expired' });
    expect((await audit('approval.expire', e.id))).toHaveLength(1);
    refused(await decide('approve', e.id, ops.token), 409, 'DC_NOT_AWAITING_APPROVAL', /expired/);
  });

  it("an approved run's start deadline counts from its approval, not from the request", async () => {
    const e = await run(dev.token, { start_timeout: 60 });
    t.clock.now += 2 * 3600_000;
    await sweep(t.core);
    expect((await decide('approve', e.id, ops.token)).statusCode).toBe(200);
    await sweep(t.core);
    expect((await status(e.id)).status).toBe('queued');
    t.clock.now += 61_000;
    await sweep(t.core);
    expect((await status(e.id)).status).toBe('expired');
  });

  it('a cancelled request cannot be approved, and leaves the list', async () => {
    const e = await run(dev.token);
    expect((await t.api('POST', `/api/v1/executions/${e.id}/cancel`, {}, dev.token)).json().status).toBe('cancelled');
    refused(await decide('approve', e.id, ops.token), 409, 'DC_NOT_AWAITING_APPROVAL');
    expect((await t.api('GET', '/api/v1/approvals')).json().items).toEqual([]);
    expect((await t.api('GET', `/api/v1/executions/${e.id}/approval`)).json()).toMatchObject({ status: 'closed', execution_status: 'cancelled' });
  });
});
