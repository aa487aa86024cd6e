/**
 * People and credentials over time: members, disabled and removed users, expiring, read-only and
 * project-limited tokens, CI tokens, one-time passwords, sessions. Ending someone's access ends
 * their open live streams at once. Both databases.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { DB_KINDS, freshStore } from './support/databases.js';
import { createUser, ensureFirstAdmin } from '../src/core/accounts.js';
import { createExecution } from '../src/core/executions.js';
import { SYSTEM_ACTOR } from '../src/core/audit.js';

interface Live {
  ended: Promise<string[]>;
}

async function openStream(url: string, token: string): Promise<Live> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const events: string[] = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
      for (const m of decoder.decode(piece, { stream: true }).matchAll(/^event: (\w+)$/gm)) events.push(m[1]);
    }
    return events;
  })();
  return { ended };
}

function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);
}

describe.each(DB_KINDS)('access on %s', (kind) => {
  let t: TestApp;
  let base: string;
  const login = async (email: string, password: string) =>
    t.app.inject({ method: 'POST', url: '/api/v1/session', headers: { 'content-type': 'application/json' }, payload: { email, password } });
  /** The person signs in and makes a token of their own (an owner cannot make one for them). */
  const tokenOf = async (email: string) => {
    const s = await login(email, 'correct horse battery');
    const cookie = String(s.headers['set-cookie']).split(';')[0];
    const csrf = s.json().csrf_token as string;
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, payload: { name: 'mine' } });
    return res.json().token as string;
  };

  beforeEach(async () => {
    t = await testApp(kind);
    await syncCommands(t, 'shop', ['check', 'migrate']);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = t.app.server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterEach(() => t.close());

  it('adds, changes and removes members; a removed member no longer sees the project, and their open stream ends', async () => {
    await createUser(t.core, SYSTEM_ACTOR, { email: 'ann@example.com', password: 'correct horse battery', isAdmin: false });
    const ann = await tokenOf('ann@example.com');
    expect((await t.api('GET', '/api/v1/projects/shop', undefined, ann)).statusCode).toBe(404);
    const added = await t.api('PUT', '/api/v1/projects/shop/members', { email: 'ann@example.com', role: 'viewer' });
    expect(added.statusCode).toBe(201);
    expect((await t.api('GET', '/api/v1/me', undefined, ann)).json().roles).toEqual({ shop: 'viewer' });
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, ann)).json()).toMatchObject({ code: 'DC_FORBIDDEN' });
    expect((await t.api('PUT', '/api/v1/projects/shop/members', { email: 'ann@example.com', role: 'operator' })).statusCode).toBe(200);
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, ann)).statusCode).toBe(201);
    const members = (await t.api('GET', '/api/v1/projects/shop/members', undefined, ann)).json().items as Array<{ email: string; role: string }>;
    expect(members).toEqual(expect.arrayContaining([expect.objectContaining({ email: 'ann@example.com', role: 'operator' })]));

    const e = await createExecution(t.core, SYSTEM_ACTOR, (await t.core.store.findProjectByName('shop'))!, { command: 'migrate' });
    const live = await openStream(`${base}/api/v1/executions/${e.id}/events`, ann);
    expect((await t.api('DELETE', '/api/v1/projects/shop/members/ann@example.com')).statusCode).toBe(200);
    expect(await within(3000, live.ended, 'the stream ending')).toContain('revoked');
    expect((await t.api('GET', `/api/v1/executions/${e.id}`, undefined, ann)).json()).toMatchObject({ code: 'DC_UNKNOWN_EXECUTION' });
    expect((await t.api('DELETE', '/api/v1/projects/shop/members/ann@example.com')).json()).toMatchObject({ code: 'DC_NOT_A_MEMBER' });
    expect((await t.api('PUT', '/api/v1/projects/shop/members', { email: 'nobody@example.com', role: 'viewer' })).json()).toMatchObject({ code: 'DC_UNKNOWN_USER' });
    expect((await t.api('PUT', '/api/v1/projects/shop/members', { email: 'ann@example.com', role: 'superuser' })).statusCode).toBe(400);
    const actions = (await t.api('GET', '/api/v1/audit?project=shop&limit=100')).json().items.map((a: { action: string }) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['member.add', 'member.role', 'member.remove', 'access.denied']));
  });

  it('disabling a user ends their sessions, tokens and live streams at once; enabling lets them sign in again', async () => {
    const token = t.userToken; // dev@example.com, operator of shop
    const e = await createExecution(t.core, SYSTEM_ACTOR, (await t.core.store.findProjectByName('shop'))!, { command: 'migrate' });
    const live = await openStream(`${base}/api/v1/executions/${e.id}/events`, token);
    const session = await login('dev@example.com', 'correct horse battery');
    expect(session.statusCode).toBe(200);
    const cookie = String(session.headers['set-cookie']).split(';')[0];
    const res = await t.api('PATCH', '/api/v1/users/dev@example.com', { disabled: true });
    expect(res.json()).toMatchObject({ email: 'dev@example.com', disabled: true });
    expect(await within(3000, live.ended, 'the stream ending')).toContain('revoked');
    expect((await t.api('GET', '/api/v1/me', undefined, token)).json()).toMatchObject({ code: 'DC_ACCOUNT_DISABLED' });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(401);
    expect((await login('dev@example.com', 'correct horse battery')).json()).toMatchObject({ code: 'DC_ACCOUNT_DISABLED' });
    await t.api('PATCH', '/api/v1/users/dev@example.com', { disabled: false });
    expect((await t.api('GET', '/api/v1/me', undefined, token)).statusCode).toBe(200);
    expect((await login('dev@example.com', 'correct horse battery')).statusCode).toBe(200);
  });

  it('removes a user: gone from lists, tokens revoked, history still names them; the last owner stays', async () => {
    const run = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, t.userToken);
    expect((await t.api('DELETE', '/api/v1/users/dev@example.com')).statusCode).toBe(200);
    expect((await t.api('GET', '/api/v1/users')).json().items.map((u: { email: string }) => u.email)).not.toContain('dev@example.com');
    expect((await t.api('GET', '/api/v1/me', undefined, t.userToken)).statusCode).toBe(401);
    expect((await t.api('GET', `/api/v1/executions/${run.json().id}`)).json().created_by).toContain('dev@example.com');
    expect((await t.api('DELETE', '/api/v1/users/admin@example.com')).json()).toMatchObject({ code: 'DC_VALIDATION' });
    expect((await t.api('PATCH', '/api/v1/users/admin@example.com', { owner: false })).json()).toMatchObject({ code: 'DC_LAST_OWNER' });
  });

  it('personal tokens: read-only, limited to projects, expiring; never more than the token that made them', async () => {
    const make = (body: unknown, token = t.token) => t.api('POST', '/api/v1/tokens', body, token);
    const ro = (await make({ name: 'ro', read_only: true })).json();
    expect(ro).toMatchObject({ read_only: true, project_ids: null });
    expect((await t.api('GET', '/api/v1/projects/shop/executions', undefined, ro.token)).statusCode).toBe(404); // no such route: listing is GET /executions
    expect((await t.api('GET', '/api/v1/executions?project=shop', undefined, ro.token)).statusCode).toBe(200);
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, ro.token)).json()).toMatchObject({ code: 'DC_FORBIDDEN', error: expect.stringContaining('read-only') });
    expect((await t.api('GET', '/api/v1/users', undefined, ro.token)).json()).toMatchObject({ code: 'DC_FORBIDDEN' });
    // A token made with a read-only token is read-only too.
    expect((await make({ name: 'child' }, ro.token)).json()).toMatchObject({ read_only: true });

    const blogOnly = (await make({ name: 'blog', projects: ['blog'] })).json();
    expect(blogOnly.project_ids).toEqual([t.projects.blog.id]);
    expect((await t.api('GET', '/api/v1/projects', undefined, blogOnly.token)).json().items.map((p: { name: string }) => p.name)).toEqual(['blog']);
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, blogOnly.token)).json()).toMatchObject({ code: 'DC_UNKNOWN_PROJECT' });
    expect((await make({ name: 'wider', projects: ['shop'] }, blogOnly.token)).json()).toMatchObject({ code: 'DC_UNKNOWN_PROJECT' });
    expect((await make({ name: 'x', projects: ['nope'] })).json()).toMatchObject({ code: 'DC_UNKNOWN_PROJECT' });

    const soon = (await make({ name: 'soon', expires_at: new Date(t.clock.now + 3600_000).toISOString() })).json();
    expect((await t.api('GET', '/api/v1/me', undefined, soon.token)).statusCode).toBe(200);
    expect((await make({ name: 'past', expires_at: new Date(t.clock.now - 1000).toISOString() })).json()).toMatchObject({ code: 'DC_VALIDATION' });
    expect((await make({ name: 'bad', expires_at: 'tomorrow' })).statusCode).toBe(400);
    t.clock.now += 3600_001;
    expect((await t.api('GET', '/api/v1/me', undefined, soon.token)).json()).toMatchObject({ code: 'DC_TOKEN_EXPIRED' });
    // An owner sees and revokes anyone's token; others cannot.
    const devTokens = (await t.api('GET', '/api/v1/tokens', undefined, t.userToken)).json().items as Array<{ id: string }>;
    expect((await t.api('POST', `/api/v1/tokens/${ro.id}/revoke`, undefined, t.userToken)).json()).toMatchObject({ code: 'DC_UNKNOWN_TOKEN' });
    expect((await t.api('GET', '/api/v1/tokens?all=true')).json().items.length).toBeGreaterThan(devTokens.length);
    expect((await t.api('POST', `/api/v1/tokens/${devTokens[0].id}/revoke`)).statusCode).toBe(200);
    expect((await t.api('GET', '/api/v1/me', undefined, t.userToken)).statusCode).toBe(401);
  });

  it('CI tokens: one role in one project, no person; revoked at once', async () => {
    const created = await t.api('POST', '/api/v1/projects/shop/ci-tokens', { name: 'deploy', role: 'operator' });
    expect(created.statusCode).toBe(201);
    const ci = created.json();
    expect(ci.token).toMatch(/^dct_/);
    const run = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' }, ci.token);
    expect(run.statusCode).toBe(201);
    expect(run.json().created_by).toBe('CI token deploy');
    expect((await t.api('GET', '/api/v1/me', undefined, ci.token)).json()).toMatchObject({ id: null, roles: { shop: 'operator' }, actor: 'CI token deploy' });
    expect((await t.api('POST', '/api/v1/projects/blog/executions', { command: 'check' }, ci.token)).json()).toMatchObject({ code: 'DC_UNKNOWN_PROJECT' });
    expect((await t.api('POST', '/api/v1/tokens', { name: 'x' }, ci.token)).json()).toMatchObject({ code: 'DC_FORBIDDEN' });
    // Operators may not make CI tokens.
    expect((await t.api('POST', '/api/v1/projects/shop/ci-tokens', { name: 'mine', role: 'admin' }, t.userToken)).json()).toMatchObject({ code: 'DC_FORBIDDEN' });
    const list = (await t.api('GET', '/api/v1/projects/shop/ci-tokens')).json().items;
    expect(list).toEqual([expect.objectContaining({ name: 'deploy', role: 'operator', created_by: expect.stringContaining('admin@example.com') })]);
    expect(JSON.stringify(list)).not.toContain(ci.token);
    expect((await t.api('POST', `/api/v1/projects/shop/ci-tokens/${ci.id}/revoke`)).statusCode).toBe(200);
    expect((await t.api('GET', '/api/v1/me', undefined, ci.token)).statusCode).toBe(401);
  });

  it("a first owner's generated password is one-time: nothing but setting a new one works until then", async () => {
    // ensureFirstAdmin makes one only when no user exists at all: a store of its own.
    const fresh = await freshStore(kind);
    try {
      const core = { ...t.core, store: fresh.store };
      const first = await ensureFirstAdmin(core, SYSTEM_ACTOR, { email: 'first@example.com' });
      expect(first?.generatedPassword).toBeTruthy();
      expect(first?.user.mustChangePassword).toBe(true);
      const { buildApp } = await import('../src/server/app.js');
      const app = await buildApp({ core, maxApiBodyBytes: 1 << 20, maxRunnerBodyBytes: 1 << 20, maxOutputChunkBytes: 1 << 20, trustProxy: false, logLevel: 'silent' });
      try {
        const s = await app.inject({ method: 'POST', url: '/api/v1/session', headers: { 'content-type': 'application/json' }, payload: { email: 'first@example.com', password: first!.generatedPassword } });
        expect(s.statusCode).toBe(200);
        expect(s.json().user.must_change_password).toBe(true);
        const headers = { cookie: String(s.headers['set-cookie']).split(';')[0], 'x-csrf-token': s.json().csrf_token as string, 'content-type': 'application/json' };
        expect((await app.inject({ method: 'GET', url: '/api/v1/projects', headers })).json()).toMatchObject({ code: 'DC_PASSWORD_CHANGE_REQUIRED' });
        expect((await app.inject({ method: 'GET', url: '/api/v1/me', headers })).json()).toMatchObject({ must_change_password: true });
        const wrong = await app.inject({ method: 'POST', url: '/api/v1/me/password', headers, payload: { current_password: 'nope', new_password: 'my own long password' } });
        expect(wrong.json()).toMatchObject({ code: 'DC_FORBIDDEN' });
        const short = await app.inject({ method: 'POST', url: '/api/v1/me/password', headers, payload: { current_password: first!.generatedPassword, new_password: 'short' } });
        expect(short.json()).toMatchObject({ code: 'DC_VALIDATION' });
        const set = await app.inject({ method: 'POST', url: '/api/v1/me/password', headers, payload: { current_password: first!.generatedPassword, new_password: 'my own long password' } });
        expect(set.statusCode).toBe(200);
        // The same browser stays signed in and may now do everything.
        expect((await app.inject({ method: 'GET', url: '/api/v1/projects', headers })).statusCode).toBe(200);
        const again = await app.inject({ method: 'POST', url: '/api/v1/session', headers: { 'content-type': 'application/json' }, payload: { email: 'first@example.com', password: first!.generatedPassword } });
        expect(again.statusCode).toBe(401);
      } finally {
        await app.close();
      }
    } finally {
      await fresh.close();
    }
  });

  it('lists and ends sessions: your own, or anyone’s for an owner', async () => {
    const a = await login('dev@example.com', 'correct horse battery');
    const b = await login('dev@example.com', 'correct horse battery');
    const cookieA = String(a.headers['set-cookie']).split(';')[0];
    const cookieB = String(b.headers['set-cookie']).split(';')[0];
    const mine = await t.app.inject({ method: 'GET', url: '/api/v1/users/dev@example.com/sessions', headers: { cookie: cookieA } });
    const items = mine.json().items as Array<{ id: string; current: boolean }>;
    expect(items).toHaveLength(2);
    expect(items.filter((s) => s.current)).toHaveLength(1);
    expect((await t.api('GET', '/api/v1/users/admin@example.com/sessions', undefined, t.userToken)).json()).toMatchObject({ code: 'DC_FORBIDDEN' });
    const other = items.find((s) => !s.current)!;
    expect((await t.api('DELETE', `/api/v1/users/dev@example.com/sessions/${other.id}`)).statusCode).toBe(200);
    const still = [cookieA, cookieB].map(async (cookie) => (await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode);
    expect((await Promise.all(still)).sort()).toEqual([200, 401]);
    expect((await t.api('DELETE', `/api/v1/users/dev@example.com/sessions/${other.id}`)).json()).toMatchObject({ code: 'DC_UNKNOWN_SESSION' });
  });
});
