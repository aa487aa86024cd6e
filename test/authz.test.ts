/**
 * Who may do what, route by route: every REST route × every kind of caller, each expecting
 * allow or its specific 401/403/404. The least role each route needs is written here by hand,
 * apart from src/domain/roles.ts, so a wrong entry there (or a route that checks nothing) fails.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { createToken, createUser } from '../src/core/accounts.js';
import { createExecution } from '../src/core/executions.js';
import { createRunnerKey } from '../src/core/projects.js';
import { createCiToken } from '../src/core/ciTokens.js';
import { updateCommandSettings } from '../src/core/commandSettings.js';
import { personGrants } from '../src/core/access.js';
import { SYSTEM_ACTOR } from '../src/core/audit.js';
import { newUserToken } from '../src/core/secrets.js';
import type { Project, User } from '../src/domain/model.js';

/** The least a route needs: nothing (public), any caller with a person or CI token, a person, a project role, or the owner. */
type Need = 'public' | 'any' | 'person' | 'viewer' | 'operator' | 'admin' | 'owner';

type Who = 'owner' | 'admin' | 'operator' | 'viewer' | 'nonMember' | 'readOnlyToken' | 'expiredToken' | 'ciOperator' | 'ownerLimitedToBlog' | 'runnerKeyShop' | 'runnerKeyBlog';
const EVERYONE: Who[] = ['owner', 'admin', 'operator', 'viewer', 'nonMember', 'readOnlyToken', 'expiredToken', 'ciOperator', 'ownerLimitedToBlog', 'runnerKeyShop', 'runnerKeyBlog'];

/** What each caller is in project shop, written out (not taken from roles.ts). */
const SHOP_ROLE: Record<Who, 'owner' | 'admin' | 'operator' | 'viewer' | 'none'> = {
  owner: 'owner',
  admin: 'admin',
  operator: 'operator',
  viewer: 'viewer',
  nonMember: 'none',
  readOnlyToken: 'viewer', // an admin's token, read-only
  expiredToken: 'admin',
  ciOperator: 'operator',
  ownerLimitedToBlog: 'none',
  runnerKeyShop: 'none',
  runnerKeyBlog: 'none',
};
const RANK = { none: 0, viewer: 1, operator: 2, admin: 3, owner: 4 } as const;

interface Expect {
  status: number;
  code?: string;
}

/** The answer a caller should get from a route that needs `need` (allowed: undefined). */
function expected(who: Who, need: Need, notFound: string): Expect | undefined {
  if (need === 'public') return undefined;
  if (who === 'expiredToken') return { status: 401, code: 'DC_TOKEN_EXPIRED' };
  if (who === 'runnerKeyShop' || who === 'runnerKeyBlog') return { status: 403, code: 'DC_WRONG_CREDENTIAL' };
  if (need === 'any') return undefined;
  if (need === 'person') return who === 'ciOperator' ? { status: 403, code: 'DC_FORBIDDEN' } : undefined;
  if (need === 'owner') return who === 'owner' ? undefined : { status: 403, code: 'DC_FORBIDDEN' };
  const role = SHOP_ROLE[who];
  if (role === 'none') return { status: 404, code: notFound };
  return RANK[role] >= RANK[need] ? undefined : { status: 403, code: 'DC_FORBIDDEN' };
}

interface Route {
  name: string;
  need: Need;
  /** The 404 code a caller who may not see the project gets. */
  notFound?: string;
  /** Only a person may (a CI token has none): shells. */
  personOnly?: boolean;
  /** What a caller without the role gets instead of 403 (a resource of someone else answers as unknown). */
  refused?: Expect;
  /** Status an allowed caller gets (default: any 2xx). */
  allowed?: Expect;
  /** Makes what the request needs (fresh for every caller) and returns the request. */
  request(f: Fixture): Promise<{ method: string; url: string; body?: unknown }>;
}

interface Fixture {
  t: TestApp;
  shop: Project;
  owner: User;
  /** A queued execution of shop, made by the owner. */
  execution(): Promise<string>;
  schedule(): Promise<string>;
  channel(): Promise<string>;
  runnerKey(): Promise<string>;
  ciToken(): Promise<string>;
  member(): Promise<string>;
  user(): Promise<string>;
  /** An execution of shop waiting for approval (asked for by the system: anyone may decide). */
  awaiting(): Promise<string>;
  /** A personal token of dev@example.com; its id. */
  devToken(): Promise<string>;
  /** A session of dev@example.com; its id. */
  session(): Promise<string>;
}

const ROUTES: Route[] = [
  // Before any credential: health and whether single sign-on is on (the sign-in page asks).
  { name: 'health', need: 'public', request: async () => ({ method: 'GET', url: '/api/v1/health' }) },
  { name: 'OpenAPI document', need: 'public', request: async () => ({ method: 'GET', url: '/api/v1/openapi.json' }) },
  { name: 'sign-in options', need: 'public', request: async () => ({ method: 'GET', url: '/api/v1/oidc' }) },
  { name: 'list projects', need: 'any', request: async () => ({ method: 'GET', url: '/api/v1/projects' }) },
  { name: 'who am I', need: 'any', request: async () => ({ method: 'GET', url: '/api/v1/me' }) },
  { name: 'audit chain status', need: 'any', request: async () => ({ method: 'GET', url: '/api/v1/audit/chain' }) },
  { name: 'get project', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop' }) },
  { name: 'list runners', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/runners' }) },
  { name: 'list commands', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/commands' }) },
  { name: 'get command', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/commands/check' }) },
  { name: 'change command limits', need: 'admin', request: async () => ({ method: 'PATCH', url: '/api/v1/projects/shop/commands/check', body: { max_concurrency: 100 } }) },
  { name: 'list runner keys', need: 'admin', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/keys' }) },
  { name: 'create runner key', need: 'admin', request: async () => ({ method: 'POST', url: '/api/v1/projects/shop/keys', body: { name: 'k' } }) },
  { name: 'revoke runner key', need: 'admin', request: async (f) => ({ method: 'POST', url: `/api/v1/projects/shop/keys/${await f.runnerKey()}/revoke` }) },
  { name: 'run a command', need: 'operator', request: async () => ({ method: 'POST', url: '/api/v1/projects/shop/executions', body: { command: 'check' } }) },
  { name: 'run (project in body)', need: 'operator', request: async () => ({ method: 'POST', url: '/api/v1/executions', body: { command: 'check', project: 'shop' } }) },
  { name: 'get command settings', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/commands/check/settings' }) },
  { name: 'change command settings', need: 'admin', request: async () => ({ method: 'PUT', url: '/api/v1/projects/shop/commands/check/settings', body: { default_timeout_seconds: 600 } }) },
  { name: 'approvals waiting', need: 'any', request: async () => ({ method: 'GET', url: '/api/v1/approvals' }) },
  { name: 'an approval request', need: 'viewer', notFound: 'DC_UNKNOWN_EXECUTION', request: async (f) => ({ method: 'GET', url: `/api/v1/executions/${await f.awaiting()}/approval` }) },
  { name: 'approve', need: 'operator', personOnly: true, notFound: 'DC_UNKNOWN_EXECUTION', request: async (f) => ({ method: 'POST', url: `/api/v1/executions/${await f.awaiting()}/approve`, body: { comment: 'ok' } }) },
  { name: 'list executions of shop', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/executions?project=shop' }) },
  { name: 'get execution', need: 'viewer', notFound: 'DC_UNKNOWN_EXECUTION', request: async (f) => ({ method: 'GET', url: `/api/v1/executions/${await f.execution()}` }) },
  { name: 'cancel execution', need: 'operator', notFound: 'DC_UNKNOWN_EXECUTION', request: async (f) => ({ method: 'POST', url: `/api/v1/executions/${await f.execution()}/cancel` }) },
  { name: 'output chunks', need: 'viewer', notFound: 'DC_UNKNOWN_EXECUTION', request: async (f) => ({ method: 'GET', url: `/api/v1/executions/${await f.execution()}/output/chunks` }) },
  { name: 'output download', need: 'viewer', notFound: 'DC_UNKNOWN_EXECUTION', request: async (f) => ({ method: 'GET', url: `/api/v1/executions/${await f.execution()}/output` }) },
  { name: 'audit of shop', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/audit?project=shop' }) },
  { name: 'audit export of shop', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/audit/export?project=shop&format=csv' }) },
  { name: 'preview a cron', need: 'any', request: async () => ({ method: 'GET', url: '/api/v1/schedules/preview?cron=0+*+*+*+*' }) },
  { name: 'list schedules', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/schedules?project=shop' }) },
  { name: 'schedule timeline', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/schedules/timeline?project=shop' }) },
  { name: 'create schedule', need: 'admin', request: async () => ({ method: 'POST', url: '/api/v1/schedules', body: { project: 'shop', command: 'check', cron: '0 * * * *' } }) },
  { name: 'get schedule', need: 'viewer', notFound: 'DC_UNKNOWN_SCHEDULE', request: async (f) => ({ method: 'GET', url: `/api/v1/schedules/${await f.schedule()}` }) },
  { name: 'schedule occurrences', need: 'viewer', notFound: 'DC_UNKNOWN_SCHEDULE', request: async (f) => ({ method: 'GET', url: `/api/v1/schedules/${await f.schedule()}/occurrences` }) },
  { name: 'edit schedule', need: 'admin', notFound: 'DC_UNKNOWN_SCHEDULE', request: async (f) => ({ method: 'PATCH', url: `/api/v1/schedules/${await f.schedule()}`, body: { cron: '5 * * * *' } }) },
  { name: 'pause schedule', need: 'admin', notFound: 'DC_UNKNOWN_SCHEDULE', request: async (f) => ({ method: 'POST', url: `/api/v1/schedules/${await f.schedule()}/pause` }) },
  { name: 'delete schedule', need: 'admin', notFound: 'DC_UNKNOWN_SCHEDULE', request: async (f) => ({ method: 'DELETE', url: `/api/v1/schedules/${await f.schedule()}` }) },
  { name: 'run schedule now', need: 'operator', notFound: 'DC_UNKNOWN_SCHEDULE', request: async (f) => ({ method: 'POST', url: `/api/v1/schedules/${await f.schedule()}/run` }) },
  { name: 'list channels of shop', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/channels?project=shop' }) },
  {
    name: 'create channel',
    need: 'admin',
    request: async () => ({ method: 'POST', url: '/api/v1/channels', body: { project: 'shop', kind: 'webhook', url: 'https://hooks.example.com/x' } }),
  },
  { name: 'get channel', need: 'viewer', notFound: 'DC_UNKNOWN_CHANNEL', request: async (f) => ({ method: 'GET', url: `/api/v1/channels/${await f.channel()}` }) },
  { name: 'channel deliveries', need: 'viewer', notFound: 'DC_UNKNOWN_CHANNEL', request: async (f) => ({ method: 'GET', url: `/api/v1/channels/${await f.channel()}/deliveries` }) },
  { name: 'test channel', need: 'admin', notFound: 'DC_UNKNOWN_CHANNEL', request: async (f) => ({ method: 'POST', url: `/api/v1/channels/${await f.channel()}/test`, body: {} }) },
  { name: 'delete channel', need: 'admin', notFound: 'DC_UNKNOWN_CHANNEL', request: async (f) => ({ method: 'DELETE', url: `/api/v1/channels/${await f.channel()}` }) },
  { name: 'server-wide channels', need: 'owner', request: async () => ({ method: 'GET', url: '/api/v1/channels?scope=server' }) },
  { name: 'create server-wide channel', need: 'owner', request: async () => ({ method: 'POST', url: '/api/v1/channels', body: { project: null, kind: 'webhook', url: 'https://hooks.example.com/s' } }) },
  { name: 'get retention', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/retention' }) },
  { name: 'set retention', need: 'admin', request: async () => ({ method: 'PUT', url: '/api/v1/projects/shop/retention', body: { days: 30 } }) },
  { name: 'get shell settings', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/shell-settings' }) },
  { name: 'set shell settings', need: 'admin', request: async () => ({ method: 'PUT', url: '/api/v1/projects/shop/shell-settings', body: { enabled: false } }) },
  { name: 'list shells', need: 'admin', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/shells' }) },
  // Shells are off in shop: a caller who may open one is told so; the role is checked first.
  { name: 'open a shell', need: 'operator', personOnly: true, allowed: { status: 409, code: 'DC_SHELLS_OFF' }, request: async () => ({ method: 'POST', url: '/api/v1/projects/shop/shells', body: {} }) },
  { name: 'list members', need: 'viewer', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/members' }) },
  { name: 'add member', need: 'admin', request: async (f) => ({ method: 'PUT', url: '/api/v1/projects/shop/members', body: { email: await f.user(), role: 'viewer' } }) },
  { name: 'remove member', need: 'admin', request: async (f) => ({ method: 'DELETE', url: `/api/v1/projects/shop/members/${await f.member()}` }) },
  { name: 'list CI tokens', need: 'admin', request: async () => ({ method: 'GET', url: '/api/v1/projects/shop/ci-tokens' }) },
  { name: 'create CI token', need: 'admin', request: async () => ({ method: 'POST', url: '/api/v1/projects/shop/ci-tokens', body: { name: 'deploy', role: 'operator' } }) },
  { name: 'revoke CI token', need: 'admin', request: async (f) => ({ method: 'POST', url: `/api/v1/projects/shop/ci-tokens/${await f.ciToken()}/revoke` }) },
  { name: 'create project', need: 'owner', request: async () => ({ method: 'POST', url: '/api/v1/projects', body: { name: `p${randomUUID().slice(0, 8)}` } }) },
  { name: 'list users', need: 'owner', request: async () => ({ method: 'GET', url: '/api/v1/users' }) },
  { name: 'create user', need: 'owner', request: async () => ({ method: 'POST', url: '/api/v1/users', body: { email: `n${randomUUID().slice(0, 8)}@example.com`, password: 'a long enough password' } }) },
  { name: 'disable user', need: 'owner', request: async (f) => ({ method: 'PATCH', url: `/api/v1/users/${await f.user()}`, body: { disabled: true } }) },
  { name: 'remove user', need: 'owner', request: async (f) => ({ method: 'DELETE', url: `/api/v1/users/${await f.user()}` }) },
  { name: "someone else's sessions", need: 'owner', request: async (f) => ({ method: 'GET', url: `/api/v1/users/${f.owner.email === 'admin@example.com' ? 'dev@example.com' : ''}/sessions` }) },
  { name: "end someone else's session", need: 'owner', request: async (f) => ({ method: 'DELETE', url: `/api/v1/users/dev@example.com/sessions/${await f.session()}` }) },
  { name: "everyone's tokens", need: 'owner', request: async () => ({ method: 'GET', url: '/api/v1/tokens?all=true' }) },
  {
    name: "revoke someone else's token",
    need: 'owner',
    refused: { status: 404, code: 'DC_UNKNOWN_TOKEN' },
    request: async (f) => ({ method: 'POST', url: `/api/v1/tokens/${await f.devToken()}/revoke` }),
  },
  { name: 'my tokens', need: 'person', request: async () => ({ method: 'GET', url: '/api/v1/tokens' }) },
  { name: 'create a personal token', need: 'person', request: async () => ({ method: 'POST', url: '/api/v1/tokens', body: { name: 'mine' } }) },
  // The compatibility endpoint waits for the end: no runner is there, so an allowed call waits 1 s.
  { name: '__manage__ (compatibility)', need: 'operator', allowed: { status: 504 }, request: async () => ({ method: 'POST', url: '/__manage__/check?project=shop&timeout=1', body: {} }) },
];

const ROUTES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/server/routes');

/** Routes (or whole paths) this table leaves to other tests, and why. */
const NOT_IN_TABLE: Record<string, string> = {
  '/*': 'the dashboard files: public',
  '/healthz': 'health: public (test/e2e/operations.test.ts)',
  '/readyz': 'readiness: public (test/e2e/operations.test.ts)',
  '/metrics': 'its own token, DJANGOCOMMAND_METRICS_TOKEN (test/e2e/operations.test.ts)',
  '${V1_PREFIX}/heartbeat/': 'runner API: runner keys (test/api.test.ts, test/e2e/revocation.test.ts)',
  '${V1_PREFIX}/commands/sync/': 'runner API',
  '${V1_PREFIX}/pending/': 'runner API',
  '${V1_PREFIX}/executions/:id/start/': 'runner API',
  '${V1_PREFIX}/executions/:id/complete/': 'runner API',
  '${V1_PREFIX}/executions/:id/cancel-status/': 'runner API',
  '/api/v1/session': 'signing in and out: the browser session itself (test/api.test.ts)',
  '/api/v1/me/password': 'the person themself, with their current password (test/access.test.ts)',
  '/api/v1/executions/:id/events': 'a live stream: the same check as GET /executions/:id (test/access.test.ts ends one on removal)',
  '/api/v1/shells/:id': 'needs a live shell on a runner (test/e2e/shellsProtocol.test.ts)',
  'DELETE /api/v1/shells/:id': 'needs a live shell on a runner (test/e2e/shellsProtocol.test.ts)',
  '/api/v1/shells/:id/recording': 'needs a shell session (test/e2e/shellsProtocol.test.ts)',
  '/auth/oidc/login': 'single sign-on redirects (test/oidc.test.ts)',
  '/auth/oidc/callback': 'single sign-on redirects (test/oidc.test.ts)',
};

describe('authorization: every route × every caller', () => {
  let t: TestApp;
  let f: Fixture;
  const secrets = {} as Record<Who, string>;

  beforeAll(async () => {
    t = await testApp('sqlite');
    const core = t.core;
    await syncCommands(t, 'shop', ['check', 'migrate', 'approveme']);
    await syncCommands(t, 'blog', ['check']);
    const shop = (await core.store.findProjectByName('shop'))!;
    const blog = (await core.store.findProjectByName('blog'))!;
    const owner = (await core.store.findUserByEmail('admin@example.com'))!;
    // Every caller runs the same commands many times here: no concurrency limit in the way.
    for (const c of ['check', 'migrate']) await core.store.setCommandConcurrency(shop.id, c, 10_000);
    const person = async (email: string, roles: Array<[Project, 'viewer' | 'operator' | 'admin']>) => {
      const u = await createUser(core, SYSTEM_ACTOR, { email, password: 'correct horse battery', isAdmin: false });
      for (const [p, r] of roles) await core.store.access.setMember(p.id, u.id, r, core.now());
      return u;
    };
    const admin = await person('padmin@example.com', [[shop, 'admin']]);
    const token = async (u: User, limits = {}) => (await createToken(core, SYSTEM_ACTOR, u, 'authz', limits)).secret;
    secrets.owner = t.token;
    secrets.admin = await token(admin);
    secrets.operator = await token(await person('op@example.com', [[shop, 'operator']]));
    secrets.viewer = await token(await person('viewer@example.com', [[shop, 'viewer']]));
    secrets.nonMember = await token(await person('outsider@example.com', [[blog, 'admin']]));
    secrets.readOnlyToken = await token(admin, { readOnly: true });
    secrets.ownerLimitedToBlog = await token(owner, { projects: ['blog'] });
    // An expired token: stored as if made long ago (a new one cannot be made already expired).
    const old = newUserToken();
    await core.store.createToken({
      id: randomUUID(),
      userId: admin.id,
      name: 'old',
      prefix: old.prefix,
      tokenHash: old.hash,
      createdAt: core.now() - 86_400_000,
      lastUsedAt: null,
      revokedAt: null,
      projectIds: null,
      readOnly: false,
      expiresAt: core.now() - 1,
    });
    secrets.expiredToken = old.secret;
    const ownerPrincipal = { user: owner, actor: SYSTEM_ACTOR, grants: await personGrants(core, owner), credential: { kind: 'token' as const, id: 'setup' } };
    secrets.ciOperator = (await createCiToken(core, ownerPrincipal, shop, { name: 'ci', role: 'operator' })).secret;
    secrets.runnerKeyShop = t.projects.shop.key;
    await updateCommandSettings(core, ownerPrincipal, shop, 'approveme', { requiresApproval: true, maxConcurrency: 1000 });
    secrets.runnerKeyBlog = t.projects.blog.key;

    let n = 0;
    f = {
      t,
      shop,
      owner,
      execution: async () => (await createExecution(core, SYSTEM_ACTOR, shop, { command: 'migrate', argv: [String(n++)] })).id,
      schedule: async () => {
        const res = await t.api('POST', '/api/v1/schedules', { project: 'shop', command: 'check', cron: '0 * * * *', name: `s${n++}` });
        return res.json().id;
      },
      channel: async () => (await t.api('POST', '/api/v1/channels', { project: 'shop', kind: 'webhook', url: 'https://hooks.example.com/c' })).json().id,
      runnerKey: async () => (await createRunnerKey(core, SYSTEM_ACTOR, shop, `k${n++}`)).key.id,
      ciToken: async () => (await createCiToken(core, ownerPrincipal, shop, { name: `c${n++}`, role: 'viewer' })).token.id,
      member: async () => {
        const u = await person(`m${n++}@example.com`, [[shop, 'viewer']]);
        return u.email;
      },
      awaiting: async () => (await createExecution(core, SYSTEM_ACTOR, shop, { command: 'approveme', argv: [String(n++)] })).id,
      devToken: async () => {
        const dev = (await core.store.findUserByEmail('dev@example.com'))!;
        return (await createToken(core, SYSTEM_ACTOR, dev, `d${n++}`)).token.id;
      },
      session: async () => {
        const dev = (await core.store.findUserByEmail('dev@example.com'))!;
        const idHash = randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '');
        await core.store.createSession({ idHash, userId: dev.id, csrfToken: 'x', address: null, createdAt: core.now(), expiresAt: core.now() + 3600_000 });
        return idHash;
      },
      user: async () => (await createUser(core, SYSTEM_ACTOR, { email: `u${n++}@example.com`, password: 'correct horse battery', isAdmin: false })).email,
    };
  });
  afterAll(() => t.close());

  for (const route of ROUTES) {
    it(`${route.name}: needs ${route.need}`, async () => {
      const wrong: string[] = [];
      for (const who of EVERYONE) {
        const req = await route.request(f);
        const res = await t.api(req.method, req.url, req.body, secrets[who]);
        const personOnly = route.personOnly && who === 'ciOperator' ? { status: 403, code: 'DC_FORBIDDEN' } : undefined;
        let want = expected(who, route.need, route.notFound ?? 'DC_UNKNOWN_PROJECT') ?? personOnly ?? route.allowed;
        if (route.refused && want?.code === 'DC_FORBIDDEN') want = route.refused;
        const code = res.headers['content-type']?.toString().includes('json') ? (res.json() as { code?: string }).code : undefined;
        const ok = want ? res.statusCode === want.status && (want.code === undefined || code === want.code) : res.statusCode >= 200 && res.statusCode < 300;
        if (!ok) wrong.push(`${who}: got ${res.statusCode} ${code ?? ''}, wanted ${want ? `${want.status} ${want.code ?? ''}` : '2xx'}`);
      }
      expect(wrong).toEqual([]);
    });
  }

  it('has a row for every REST route the server registers (or says why not)', async () => {
    const registered: string[] = [];
    for (const file of fs.readdirSync(ROUTES_DIR)) {
      const text = fs.readFileSync(path.join(ROUTES_DIR, file), 'utf8');
      for (const m of text.matchAll(/app\.(get|post|put|patch|delete)\(\s*(['`])([^'`]+)\2/g)) {
        // A route made in a loop over verbs: a row for one of them is enough.
        registered.push(`${m[1].toUpperCase()} ${m[3].replace('${verb}', ':verb')}`);
      }
    }
    const tested = await Promise.all(ROUTES.map(async (r) => r.request(f)));
    const matches = (route: string, req: { method: string; url: string }) => {
      const [method, pattern] = route.split(' ');
      const want = pattern.split('/');
      const got = req.url.split('?')[0].split('/');
      return method === req.method && want.length === got.length && want.every((w, i) => w.startsWith(':') || w === got[i]);
    };
    const missing = registered.filter((route) => !Object.hasOwn(NOT_IN_TABLE, route.split(' ')[1]) && !Object.hasOwn(NOT_IN_TABLE, route) && !tested.some((req) => matches(route, req)));
    expect(missing).toEqual([]);
  });

  it('lists only what a caller may see: projects, executions, audit, schedules, channels', async () => {
    await f.execution();
    await f.schedule();
    await f.channel();
    const names = async (who: Who) => ((await t.api('GET', '/api/v1/projects', undefined, secrets[who])).json().items as Array<{ name: string }>).map((p) => p.name).sort();
    expect(await names('owner')).toEqual(expect.arrayContaining(['blog', 'shop']));
    expect(await names('nonMember')).toEqual(['blog']);
    expect(await names('viewer')).toEqual(['shop']);
    expect(await names('ownerLimitedToBlog')).toEqual(['blog']);
    for (const [path, key] of [
      ['/api/v1/executions?limit=200', 'project'],
      ['/api/v1/schedules', 'project'],
      ['/api/v1/channels', 'project'],
    ] as const) {
      const items = (await t.api('GET', path, undefined, secrets.nonMember)).json().items as Array<Record<string, unknown>>;
      expect(items.filter((x) => x[key] === 'shop'), path).toEqual([]);
      const mine = (await t.api('GET', path, undefined, secrets.viewer)).json().items as Array<Record<string, unknown>>;
      expect(mine.some((x) => x[key] === 'shop'), path).toBe(true);
    }
    const blogId = t.projects.blog.id;
    const audit = (await t.api('GET', '/api/v1/audit?limit=200', undefined, secrets.nonMember)).json().items as Array<{ project_id: string | null }>;
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.filter((e) => e.project_id !== blogId)).toEqual([]);
    const all = (await t.api('GET', '/api/v1/audit?limit=200', undefined, secrets.owner)).json().items as Array<{ project_id: string | null }>;
    expect(all.some((e) => e.project_id !== blogId)).toBe(true);
  });
});
