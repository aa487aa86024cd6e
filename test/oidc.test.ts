/**
 * Single sign-on against a real OpenID Connect provider: `oidc-provider` listening on 127.0.0.1
 * in the test, with a registered confidential client that must use PKCE and a `groups` claim.
 * The server is the real app on a real port; a "browser" here is fetch with a cookie jar that
 * follows redirects and fills in the provider's sign-in and consent forms.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import Provider from 'oidc-provider';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/server/app.js';
import { DEFAULT_CORE_SETTINGS, type Core } from '../src/core/context.js';
import { LocalNotifier } from '../src/core/notifier.js';
import { SecretBox } from '../src/core/notifications/secretBox.js';
import { createToken, createUser } from '../src/core/accounts.js';
import { createProject } from '../src/core/projects.js';
import { SYSTEM_ACTOR } from '../src/core/audit.js';
import { resolveServerConfig } from '../src/config/serverConfig.js';
import { mapRoles, parseRoleMap, roleFor } from '../src/domain/oidcRoleMap.js';
import { isUserError } from '../src/shared/errors.js';
import { DB_KINDS, freshDatabase, freshStore, type DbKind, type FreshDatabase } from './support/databases.js';
import { startServer } from './support/serverProcess.js';
import { launchBrowser, screenshot } from './support/browser.js';

const ROLE_MAP = 'shop-admins=shop:admin,blog-ops=blog:operator,all-viewers=*:viewer,dc-owners=owner';

interface Person {
  email?: string;
  email_verified?: boolean;
  groups: string[];
}

/** A cookie jar per host: enough for the provider's and our cookies (paths are not needed here). */
class Jar {
  private readonly cookies = new Map<string, Map<string, string>>();
  take(url: URL, res: Response): void {
    const jar = this.cookies.get(url.host) ?? new Map<string, string>();
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
    this.cookies.set(url.host, jar);
  }
  header(url: URL): string {
    return [...(this.cookies.get(url.host) ?? new Map()).entries()].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  get(url: URL, name: string): string | undefined {
    return this.cookies.get(url.host)?.get(name);
  }
}

interface Harness {
  kind: DbKind;
  url: string;
  issuer: string;
  core: Core;
  db: FreshDatabase;
  ownerToken: string;
  people: Map<string, Person>;
  app: FastifyInstance;
  close(): Promise<void>;
}

const open: Harness[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** An OpenID Connect provider on `server`: one confidential client that must use PKCE, and a groups claim. */
function serveProvider(server: http.Server, issuer: string, redirectUri: string, people: Map<string, Person>): void {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'djangocommand',
        client_secret: 'a-client-secret-of-some-length',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    async findAccount(_ctx: unknown, id: string) {
      return {
        accountId: id,
        async claims() {
          const p = people.get(id) ?? { groups: [] };
          return { sub: id, name: id, groups: p.groups, ...(p.email !== undefined ? { email: p.email } : {}), ...(p.email_verified !== undefined ? { email_verified: p.email_verified } : {}) };
        },
      };
    },
  } as never);
  server.on('request', provider.callback());
}

async function harness(kind: DbKind, env: Record<string, string> = {}): Promise<Harness> {
  const { store, db, close } = await freshStore(kind);
  const core: Core = { store, notifier: new LocalNotifier(), now: Date.now, settings: DEFAULT_CORE_SETTINGS };
  core.notifications = { box: new SecretBox(randomBytes(32)), publicUrl: undefined, smtpUrl: null, emailFrom: 'dc@localhost', sendTimeoutMs: 1000, retryBaseMs: 30_000 } as never;
  const owner = await createUser(core, SYSTEM_ACTOR, { email: 'admin@example.com', password: 'correct horse battery', isAdmin: true });
  await createUser(core, SYSTEM_ACTOR, { email: 'dev@example.com', password: 'correct horse battery', isAdmin: false });
  const ownerToken = (await createToken(core, SYSTEM_ACTOR, owner, 'test')).secret;
  for (const name of ['shop', 'blog', 'ops']) await createProject(core, SYSTEM_ACTOR, name);
  const app = await buildApp({ core, maxApiBodyBytes: 1024 * 1024, maxRunnerBodyBytes: 1024 * 1024, trustProxy: false, logLevel: 'silent' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  // The provider: any login name signs in as that person (dev interactions), whose claims the test sets.
  const people = new Map<string, Person>();
  const providerServer = http.createServer();
  const issuer = `http://127.0.0.1:${await listen(providerServer)}`;
  serveProvider(providerServer, issuer, `${url}/auth/oidc/callback`, people);

  const config = resolveServerConfig(
    {},
    {
      DJANGOCOMMAND_OIDC_ISSUER: issuer,
      DJANGOCOMMAND_OIDC_CLIENT_ID: 'djangocommand',
      DJANGOCOMMAND_OIDC_CLIENT_SECRET: 'a-client-secret-of-some-length',
      DJANGOCOMMAND_OIDC_SCOPES: 'openid email profile groups',
      DJANGOCOMMAND_OIDC_ROLE_MAP: ROLE_MAP,
      DJANGOCOMMAND_OIDC_NAME: 'Acme ID',
      ...env,
    },
  );
  core.signIn = config.signIn;
  const h: Harness = {
    kind,
    url,
    issuer,
    core,
    db,
    ownerToken,
    people,
    app,
    close: async () => {
      await app.close();
      await new Promise((r) => providerServer.close(r));
      providerServer.closeAllConnections();
      await close();
    },
  };
  open.push(h);
  return h;
}

interface SignOn {
  /** Where the callback sent the browser: "/" when signed in, "/#/login?sso_error=..." when not. */
  location: string;
  session: string | undefined;
  jar: Jar;
  /** The authorization request our server sent the browser to. */
  authorizeUrl: URL;
  callbackUrl: URL | undefined;
}

/**
 * A browser signing on: GET /auth/oidc/login, then every redirect, the provider's login form
 * (as `login`) and its consent form, until our callback answers. `atCallback` may change the
 * provider's answer (or the browser's cookies) before it reaches the callback.
 */
async function signOn(h: Harness, login: string, atCallback?: (url: URL, jar: Jar) => Promise<void> | void): Promise<SignOn> {
  const jar = new Jar();
  const server = new URL(h.url);
  let authorizeUrl: URL | undefined;
  let callbackUrl: URL | undefined;
  let next: { url: URL; method: 'GET' | 'POST'; body?: URLSearchParams } = { url: new URL('/auth/oidc/login', h.url), method: 'GET' };
  for (let hop = 0; hop < 20; hop++) {
    if (next.url.host === server.host && next.url.pathname === '/auth/oidc/callback') {
      callbackUrl = next.url;
      await atCallback?.(next.url, jar);
    }
    const res = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: { cookie: jar.header(next.url), ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: next.body?.toString(),
    });
    jar.take(next.url, res);
    const location = res.headers.get('location');
    if (next.url.host === server.host && next.url.pathname === '/auth/oidc/callback') {
      if (!location) throw new Error(`callback answered ${res.status}: ${await res.text()}`);
      return { location, session: jar.get(server, 'dc_session'), jar, authorizeUrl: authorizeUrl!, callbackUrl };
    }
    if (res.status >= 300 && res.status < 400 && location) {
      const target = new URL(location, next.url);
      if (!authorizeUrl && target.origin === h.issuer) authorizeUrl = target;
      if (target.host === server.host && target.pathname !== '/auth/oidc/callback') {
        return { location, session: jar.get(server, 'dc_session'), jar, authorizeUrl: authorizeUrl!, callbackUrl };
      }
      next = { url: target, method: 'GET' };
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (res.status !== 200 || !action) throw new Error(`unexpected page ${res.status} at ${next.url}: ${html.slice(0, 500)}`);
    const form = new URLSearchParams();
    if (html.includes('name="login"')) {
      form.set('prompt', 'login');
      form.set('login', login);
      form.set('password', 'anything');
    } else {
      form.set('prompt', 'consent');
    }
    next = { url: new URL(action.replace(/&amp;/g, '&'), next.url), method: 'POST', body: form };
  }
  throw new Error('too many hops');
}

async function me(h: Harness, session: string): Promise<{ email: string; owner: boolean; roles: Record<string, string> }> {
  const res = await fetch(`${h.url}/api/v1/me`, { headers: { cookie: `dc_session=${session}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as never;
}

async function asOwner(h: Harness, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${h.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${h.ownerToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}

async function auditActions(h: Harness): Promise<{ action: string; outcome: string; details: Record<string, unknown> }[]> {
  const res = await asOwner(h, 'GET', '/api/v1/audit?limit=200');
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: { action: string; outcome: string; details: Record<string, unknown> }[] }).items;
}

/** A statement straight on the test's database (to change what the server stored). */
async function onDatabase(h: Harness, statement: string): Promise<void> {
  if (h.kind === 'sqlite') {
    const db = new Database(`${h.db.dataDir}/djangocommand.sqlite3`);
    try {
      db.exec(statement);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: h.db.databaseUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

describe('the role map (DJANGOCOMMAND_OIDC_ROLE_MAP)', () => {
  it('gives the highest role any value maps to, covers what it names, and leaves the rest alone', () => {
    const map = parseRoleMap(' shop-admins = shop:admin , dc-ops=*:operator, shop-view=shop:viewer,dc-owners=owner ');
    const ops = mapRoles(map, ['dc-ops', 'shop-view']);
    expect(roleFor(ops, 'shop')).toEqual({ covered: true, role: 'operator' });
    expect(roleFor(ops, 'anything')).toEqual({ covered: true, role: 'operator' });
    expect(ops.owner).toBe(false);
    const admin = mapRoles(map, ['shop-admins', 'dc-owners']);
    expect(roleFor(admin, 'shop')).toEqual({ covered: true, role: 'admin' });
    expect(roleFor(admin, 'blog')).toEqual({ covered: true, role: null });
    expect(admin.owner).toBe(true);
    const narrow = mapRoles(parseRoleMap('a=shop:viewer'), ['a']);
    expect(roleFor(narrow, 'blog')).toEqual({ covered: false, role: null });
    expect(narrow.owner).toBeUndefined();
  });

  it.each([
    ['no-target', 'VALUE=TARGET'],
    ['a=shop', 'PROJECT:ROLE'],
    ['a=shop:superuser', 'viewer, operator, admin'],
    ['=shop:admin', 'VALUE=TARGET'],
  ])('refuses %s', (text, hint) => {
    expect(() => parseRoleMap(text)).toThrow(hint);
  });
});

describe('single sign-on settings', () => {
  const base = { DJANGOCOMMAND_OIDC_ISSUER: 'https://login.example.com/realms/acme', DJANGOCOMMAND_OIDC_CLIENT_ID: 'dc' };
  const configError = (env: Record<string, string>) => {
    try {
      resolveServerConfig({}, env);
    } catch (err) {
      if (isUserError(err)) return { code: err.code, message: err.message };
      throw err;
    }
    return undefined;
  };

  it('is off without an issuer, with local passwords on by default', () => {
    const c = resolveServerConfig({}, {});
    expect(c.signIn).toEqual({ localPasswords: true, oidc: undefined });
    expect(resolveServerConfig({}, { DJANGOCOMMAND_LOCAL_PASSWORDS: 'off' }).signIn.localPasswords).toBe(false);
  });

  it('reads every setting, with the documented defaults', () => {
    const c = resolveServerConfig({}, { ...base, DJANGOCOMMAND_OIDC_ROLE_MAP: 'dc-owners=owner', DJANGOCOMMAND_PUBLIC_URL: 'https://dc.example.com/' });
    expect(c.signIn.oidc).toMatchObject({
      issuer: base.DJANGOCOMMAND_OIDC_ISSUER,
      clientId: 'dc',
      clientSecret: undefined,
      scopes: 'openid email profile',
      rolesClaim: 'groups',
      roleMap: [{ value: 'dc-owners', target: { kind: 'owner' } }],
      name: 'single sign-on',
      publicUrl: 'https://dc.example.com',
    });
  });

  it.each([
    [{ DJANGOCOMMAND_LOCAL_PASSWORDS: 'maybe' }, 'DJANGOCOMMAND_LOCAL_PASSWORDS'],
    [{ ...base, DJANGOCOMMAND_OIDC_ISSUER: 'http://login.example.com' }, 'https://'],
    [{ ...base, DJANGOCOMMAND_OIDC_ISSUER: 'not a url' }, 'absolute URL'],
    [{ DJANGOCOMMAND_OIDC_ISSUER: base.DJANGOCOMMAND_OIDC_ISSUER }, 'DJANGOCOMMAND_OIDC_CLIENT_ID'],
    [{ DJANGOCOMMAND_OIDC_CLIENT_ID: 'dc' }, 'DJANGOCOMMAND_OIDC_ISSUER set too'],
    [{ ...base, DJANGOCOMMAND_OIDC_SCOPES: 'email profile' }, 'including openid'],
    [{ ...base, DJANGOCOMMAND_OIDC_ROLE_MAP: 'dc-ops=shop:root' }, 'DJANGOCOMMAND_OIDC_ROLE_MAP'],
    [{ ...base, DJANGOCOMMAND_OIDC_ROLES_CLAIM: 'my groups' }, 'DJANGOCOMMAND_OIDC_ROLES_CLAIM'],
  ])('refuses a wrong value at start: %j', (env, named) => {
    const err = configError(env as Record<string, string>);
    expect(err?.code).toBe('DC_CONFIG');
    expect(err?.message).toContain(named);
  });

  it('never shows the client secret in an error', () => {
    const err = configError({ DJANGOCOMMAND_OIDC_CLIENT_SECRET: 'super-secret-value' });
    expect(err?.code).toBe('DC_CONFIG');
    expect(err?.message).not.toContain('super-secret-value');
  });
});

for (const kind of DB_KINDS) {
  describe(`single sign-on with a real OpenID Connect provider (${kind})`, () => {
    it('creates the user just in time with mapped roles, and updates and removes them on later sign-ins', async () => {
      const h = await harness(kind);
      const status = await (await fetch(`${h.url}/api/v1/oidc`)).json();
      expect(status).toEqual({ enabled: true, name: 'Acme ID', login_url: '/auth/oidc/login', local_passwords: true });

      h.people.set('alice', { email: 'Alice@Example.com', email_verified: true, groups: ['shop-admins', 'blog-ops', 'unrelated'] });
      const first = await signOn(h, 'alice');
      expect(first.location).toBe('/');
      expect(first.session).toBeTruthy();
      // PKCE (S256), state and nonce went to the provider.
      expect(first.authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
      expect(first.authorizeUrl.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(first.authorizeUrl.searchParams.get('state')).toBeTruthy();
      expect(first.authorizeUrl.searchParams.get('nonce')).toBeTruthy();
      expect(first.authorizeUrl.searchParams.get('redirect_uri')).toBe(`${h.url}/auth/oidc/callback`);
      const alice = await me(h, first.session!);
      expect(alice).toMatchObject({ email: 'alice@example.com', owner: false, roles: { shop: 'admin', blog: 'operator' } });
      expect(Object.keys(alice.roles).sort()).toEqual(['blog', 'shop']);
      // The session is the same as a password sign-in's: it carries a CSRF token and can change things.
      const session = await (await fetch(`${h.url}/api/v1/session`, { headers: { cookie: `dc_session=${first.session}` } })).json();
      expect(session.user.email).toBe('alice@example.com');
      const token = await fetch(`${h.url}/api/v1/tokens`, {
        method: 'POST',
        headers: { cookie: `dc_session=${first.session}`, 'x-csrf-token': session.csrf_token, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'laptop' }),
      });
      expect(token.status).toBe(201);
      // A JIT user has no usable password.
      const pw = await fetch(`${h.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'alice@example.com', password: 'correct horse battery' }) });
      expect(pw.status).toBe(401);

      // Groups change at the provider: roles follow at the next sign-in.
      h.people.set('alice', { email: 'alice@example.com', email_verified: true, groups: ['all-viewers'] });
      const second = await signOn(h, 'alice');
      expect(second.location).toBe('/');
      expect((await me(h, second.session!)).roles).toEqual({ shop: 'viewer', blog: 'viewer', ops: 'viewer' });

      h.people.set('alice', { email: 'alice@example.com', email_verified: true, groups: [] });
      const third = await signOn(h, 'alice');
      expect(third.location).toBe('/');
      expect((await me(h, third.session!)).roles).toEqual({});
      // Still one user, linked by issuer and subject.
      const users = (await (await asOwner(h, 'GET', '/api/v1/users')).json()).items.filter((u: { email: string }) => u.email === 'alice@example.com');
      expect(users).toHaveLength(1);

      // The owner role follows its group too.
      h.people.set('bob', { email: 'bob@example.com', email_verified: true, groups: ['dc-owners'] });
      const bob = await signOn(h, 'bob');
      expect(await me(h, bob.session!)).toMatchObject({ owner: true, roles: { shop: 'admin', blog: 'admin', ops: 'admin' } });

      const events = await auditActions(h);
      const actions = events.map((e) => `${e.action}:${e.outcome}`);
      for (const a of ['user.create:ok', 'oidc.link:ok', 'member.add:ok', 'member.role:ok', 'member.remove:ok', 'user.owner_grant:ok', 'session.login:ok']) expect(actions).toContain(a);
      const logins = events.filter((e) => e.action === 'session.login' && e.outcome === 'ok' && e.details.method === 'oidc');
      expect(logins).toHaveLength(4);
    });

    it('refuses a disabled user, and a removed one', async () => {
      const h = await harness(kind);
      h.people.set('carol', { email: 'carol@example.com', email_verified: true, groups: ['shop-admins'] });
      const ok = await signOn(h, 'carol');
      expect(ok.location).toBe('/');
      expect((await asOwner(h, 'PATCH', '/api/v1/users/carol@example.com', { disabled: true })).status).toBe(200);
      // Disabling ended the session she had.
      expect((await fetch(`${h.url}/api/v1/me`, { headers: { cookie: `dc_session=${ok.session}` } })).status).toBe(401);
      const refused = await signOn(h, 'carol');
      expect(refused.location).toBe('/#/login?sso_error=DC_ACCOUNT_DISABLED');
      expect(refused.session).toBeUndefined();
      const denied = (await auditActions(h)).find((e) => e.action === 'session.login' && e.outcome === 'denied');
      expect(denied?.details).toMatchObject({ method: 'oidc' });

      expect((await asOwner(h, 'PATCH', '/api/v1/users/carol@example.com', { disabled: false })).status).toBe(200);
      expect((await asOwner(h, 'DELETE', '/api/v1/users/carol@example.com')).status).toBe(200);
      const removed = await signOn(h, 'carol');
      expect(removed.location).toBe('/#/login?sso_error=DC_ACCOUNT_DISABLED');
      expect(removed.session).toBeUndefined();
    });

    it('refuses a tampered state, a replayed answer and an answer without the browser cookie', async () => {
      const h = await harness(kind);
      h.people.set('dave', { email: 'dave@example.com', email_verified: true, groups: ['shop-admins'] });
      const tampered = await signOn(h, 'dave', (url) => {
        url.searchParams.set('state', url.searchParams.get('state')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
      });
      expect(tampered.location).toBe('/#/login?sso_error=DC_OIDC_STATE_MISMATCH');
      expect(tampered.session).toBeUndefined();

      // Another browser's answer (login CSRF): this browser has no sign-on cookie for it.
      const foreign = await signOn(h, 'dave', (_url, jar) => {
        jar.take(new URL(h.url), new Response(null, { headers: { 'set-cookie': 'dc_oidc=; Max-Age=0' } }));
      });
      expect(foreign.location).toBe('/#/login?sso_error=DC_OIDC_LOGIN_EXPIRED');
      expect(foreign.session).toBeUndefined();

      // A good answer works once; the same answer again is refused.
      let cookie = '';
      const good = await signOn(h, 'dave', (url, jar) => {
        cookie = jar.header(url);
      });
      expect(good.location).toBe('/');
      const replay = await fetch(good.callbackUrl!, { redirect: 'manual', headers: { cookie } });
      expect(replay.headers.get('location')).toBe('/#/login?sso_error=DC_OIDC_LOGIN_EXPIRED');
      expect(replay.headers.getSetCookie().some((c) => c.startsWith('dc_session='))).toBe(false);
      // No user was made by the refused attempts before the good one; the good one made dave.
      const users = (await (await asOwner(h, 'GET', '/api/v1/users')).json()).items.map((u: { email: string }) => u.email);
      expect(users.filter((e: string) => e === 'dave@example.com')).toHaveLength(1);
    });

    it('uses PKCE, which the provider requires: a wrong verifier or none fails', async () => {
      const h = await harness(kind);
      h.people.set('erin', { email: 'erin@example.com', email_verified: true, groups: [] });
      // Without a code challenge the provider refuses the authorization request outright.
      const plain = new URL(`${h.issuer}/auth`);
      for (const [k, v] of Object.entries({ client_id: 'djangocommand', response_type: 'code', scope: 'openid', redirect_uri: `${h.url}/auth/oidc/callback`, state: 'x', nonce: 'y' })) plain.searchParams.set(k, v);
      const refused = await fetch(plain, { redirect: 'manual' });
      const back = new URL(refused.headers.get('location')!);
      expect(back.searchParams.get('error')).toBe('invalid_request');
      expect(back.searchParams.get('error_description')).toContain('PKCE');
      // The verifier our server keeps is the one the provider checks: change it and the code is refused.
      const wrong = await signOn(h, 'erin', async () => {
        await onDatabase(h, `UPDATE oidc_logins SET code_verifier = '${'x'.repeat(43)}'`);
      });
      expect(wrong.location).toBe('/#/login?sso_error=DC_OIDC_FAILED');
      expect(wrong.session).toBeUndefined();
      const failed = (await auditActions(h)).find((e) => e.action === 'session.login' && e.outcome === 'denied');
      expect(String(failed?.details.error)).toContain('invalid_grant');
      expect(JSON.stringify(failed)).not.toContain('a-client-secret-of-some-length');
    });

    it('checks the email: unverified is refused, an existing user is linked only when the provider vouches', async () => {
      const h = await harness(kind);
      h.people.set('frank', { email: 'frank@example.com', email_verified: false, groups: ['shop-admins'] });
      expect((await signOn(h, 'frank')).location).toBe('/#/login?sso_error=DC_OIDC_EMAIL_UNVERIFIED');
      h.people.set('nomail', { groups: [] });
      expect((await signOn(h, 'nomail')).location).toBe('/#/login?sso_error=DC_OIDC_NO_EMAIL');
      let users = (await (await asOwner(h, 'GET', '/api/v1/users')).json()).items.map((u: { email: string }) => u.email);
      expect(users).not.toContain('frank@example.com');

      // dev@example.com has a local password. Without email_verified the accounts are not linked.
      h.people.set('dev-at-idp', { email: 'dev@example.com', groups: ['blog-ops'] });
      expect((await signOn(h, 'dev-at-idp')).location).toBe('/#/login?sso_error=DC_OIDC_EMAIL_TAKEN');
      h.people.set('dev-at-idp', { email: 'dev@example.com', email_verified: true, groups: ['blog-ops'] });
      const linked = await signOn(h, 'dev-at-idp');
      expect(linked.location).toBe('/');
      expect(await me(h, linked.session!)).toMatchObject({ email: 'dev@example.com', roles: { blog: 'operator' } });
      users = (await (await asOwner(h, 'GET', '/api/v1/users')).json()).items.map((u: { email: string }) => u.email);
      expect(users.filter((e: string) => e === 'dev@example.com')).toHaveLength(1);

      // A user an owner made with a one-time password, linked through the provider: the one-time
      // password stops working and nothing asks the person to change a password they never use.
      expect((await asOwner(h, 'POST', '/api/v1/users', { email: 'new@example.com', password: 'one time password 1' })).status).toBe(201);
      h.people.set('new-at-idp', { email: 'new@example.com', email_verified: true, groups: ['blog-ops'] });
      const fresh = await signOn(h, 'new-at-idp');
      expect(fresh.location).toBe('/');
      expect(await me(h, fresh.session!)).toMatchObject({ email: 'new@example.com', must_change_password: false, roles: { blog: 'operator' } });
      const old = await fetch(`${h.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'new@example.com', password: 'one time password 1' }) });
      expect(old.status).toBe(401);
    });

    it('shows a refusal at the provider as DC_OIDC_DENIED', async () => {
      const h = await harness(kind);
      const res = await signOn(h, 'x', (url) => {
        url.searchParams.delete('code');
        url.searchParams.set('error', 'access_denied');
        url.searchParams.set('error_description', 'End-User aborted interaction');
      });
      expect(res.location).toBe('/#/login?sso_error=DC_OIDC_DENIED');
    });

    it('with local passwords off refuses password sign-in with its own code; single sign-on still works', async () => {
      const h = await harness(kind, { DJANGOCOMMAND_LOCAL_PASSWORDS: 'off' });
      expect(await (await fetch(`${h.url}/api/v1/oidc`)).json()).toMatchObject({ enabled: true, local_passwords: false });
      const pw = await fetch(`${h.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@example.com', password: 'correct horse battery' }) });
      expect(pw.status).toBe(403);
      expect((await pw.json()).code).toBe('DC_LOCAL_PASSWORDS_OFF');
      h.people.set('gina', { email: 'gina@example.com', email_verified: true, groups: ['blog-ops'] });
      const sso = await signOn(h, 'gina');
      expect(sso.location).toBe('/');
      expect((await me(h, sso.session!)).roles).toEqual({ blog: 'operator' });
    });
  });
}

describe('the sign-in page with local passwords on (sqlite, chromium)', () => {
  it('shows the password form and the single sign-on button', async () => {
    // The page asks /api/v1/oidc only: no provider needs to answer until the button is used.
    const db = await freshDatabase('sqlite');
    const server = await startServer(db, { DJANGOCOMMAND_OIDC_ISSUER: 'https://login.example.com', DJANGOCOMMAND_OIDC_CLIENT_ID: 'dc', DJANGOCOMMAND_OIDC_NAME: 'Acme ID' });
    const browser = await launchBrowser();
    try {
      await browser.page.goto(`${server.url}/#/login`);
      await browser.page.getByRole('link', { name: 'Sign in with Acme ID' }).waitFor();
      expect(await browser.page.getByLabel('Password').count()).toBe(1);
      expect(await browser.page.getByRole('link', { name: 'Sign in with Acme ID' }).getAttribute('href')).toBe('/auth/oidc/login');
      await screenshot(browser.page, 'login-sso-and-password');
    } finally {
      await browser.close();
      await server.stop();
      await db.drop();
    }
  });
});

describe('without single sign-on configured', () => {
  it('says so, and its routes send the browser back with DC_OIDC_OFF', async () => {
    const h = await harness('sqlite');
    h.core.signIn = undefined;
    expect(await (await fetch(`${h.url}/api/v1/oidc`)).json()).toEqual({ enabled: false, name: null, login_url: null, local_passwords: true });
    const res = await fetch(`${h.url}/auth/oidc/login`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/#/login?sso_error=DC_OIDC_OFF');
  });
});

describe('single sign-on in the real server and dashboard (sqlite, chromium)', () => {
  it('configured by environment: the sign-in page offers only the provider; the admin CLI still works', async () => {
    const people = new Map<string, Person>([['hana', { email: 'hana@example.com', email_verified: true, groups: ['shop-admins'] }]]);
    const providerServer = http.createServer();
    const issuer = `http://127.0.0.1:${await listen(providerServer)}`;
    const db = await freshDatabase('sqlite');
    const server = await startServer(db, {
      DJANGOCOMMAND_OIDC_ISSUER: issuer,
      DJANGOCOMMAND_OIDC_CLIENT_ID: 'djangocommand',
      DJANGOCOMMAND_OIDC_CLIENT_SECRET: 'a-client-secret-of-some-length',
      DJANGOCOMMAND_OIDC_SCOPES: 'openid email profile groups',
      DJANGOCOMMAND_OIDC_ROLE_MAP: ROLE_MAP,
      DJANGOCOMMAND_OIDC_NAME: 'Acme ID',
      DJANGOCOMMAND_LOCAL_PASSWORDS: 'off',
    });
    serveProvider(providerServer, issuer, `${server.url}/auth/oidc/callback`, people);
    const browser = await launchBrowser();
    try {
      expect((await server.admin(['create-project', 'shop', '--json'])).code).toBe(0);
      // Local passwords are off: the first admin cannot sign in with one, but `admin` on the host works.
      const pw = await fetch(`${server.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@localhost', password: 'correct horse battery staple' }) });
      expect((await pw.json()).code).toBe('DC_LOCAL_PASSWORDS_OFF');
      const t = await server.admin(['create-token', '--json']);
      expect(t.code).toBe(0);
      const token = JSON.parse(t.stdout).token as string;
      expect((await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);

      const { page } = browser;
      await page.goto(`${server.url}/#/login`);
      const button = page.getByRole('link', { name: 'Sign in with Acme ID' });
      await button.waitFor();
      expect(await page.locator('input[type=password]').count()).toBe(0);
      await screenshot(page, 'login-sso-only');
      await button.click();
      await page.locator('input[name=login]').fill('hana');
      await page.locator('input[name=password]').fill('anything');
      await page.locator('button[type=submit]').click();
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.locator('.user-email', { hasText: 'hana@example.com' }).waitFor({ state: 'attached', timeout: 20_000 });
      expect(new URL(page.url()).origin).toBe(server.url);
      const roles = await page.evaluate(async () => (await (await fetch('/api/v1/me')).json()).roles);
      expect(roles).toEqual({ shop: 'admin' });

      // A failed sign-on comes back to the sign-in page, which words the code.
      await page.evaluate(async () => fetch('/api/v1/session', { method: 'DELETE', headers: { 'x-csrf-token': (await (await fetch('/api/v1/session')).json()).csrf_token } }));
      await page.goto(`${server.url}/auth/oidc/callback?code=x&state=y`);
      await page.getByText('That sign-on attempt took too long or was used already').waitFor();
      expect(await page.locator('.error-code').textContent()).toBe('DC_OIDC_LOGIN_EXPIRED');
      await screenshot(page, 'login-sso-error');
    } finally {
      await browser.close();
      await server.stop();
      await new Promise((r) => providerServer.close(r));
      providerServer.closeAllConnections();
      await db.drop();
    }
  }, 90_000);
});
