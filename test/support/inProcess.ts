/**
 * The HTTP API in-process (fastify.inject) over a real store, with a clock the test moves.
 * For API behaviour; whole-system behaviour is tested with real processes (serverProcess.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SecretBox } from '../../src/core/notifications/secretBox.js';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import { DEFAULT_CORE_SETTINGS, type Core, type CoreSettings } from '../../src/core/context.js';
import { LocalNotifier } from '../../src/core/notifier.js';
import { createUser, createToken } from '../../src/core/accounts.js';
import { createProject } from '../../src/core/projects.js';
import { SYSTEM_ACTOR } from '../../src/core/audit.js';
import { freshStore, type DbKind } from './databases.js';

export interface TestApp {
  app: FastifyInstance;
  core: Core;
  clock: { now: number };
  token: string;
  userToken: string;
  projects: Record<string, { id: string; key: string }>;
  runner(project: string, method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  api(method: string, path: string, body?: unknown, token?: string): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function testApp(
  kind: DbKind = 'sqlite',
  settings: Partial<CoreSettings> = {},
  limits: { api: number; runner: number; output?: number } = { api: 1024 * 1024, runner: 4 * 1024 * 1024 },
): Promise<TestApp> {
  const { store, close } = await freshStore(kind);
  const clock = { now: Date.UTC(2026, 10, 22, 12, 0, 0) };
  const core: Core = { store, notifier: new LocalNotifier(), now: () => clock.now, settings: { ...DEFAULT_CORE_SETTINGS, ...settings } };
  // What serve.ts sets up for notifications; tests that deliver replace it with their receivers'.
  core.notifications = { box: new SecretBox(randomBytes(32)), publicUrl: 'http://dashboard.test', smtpUrl: null, emailFrom: 'dc@localhost', sendTimeoutMs: 1000, retryBaseMs: 30_000 };
  const admin = await createUser(core, SYSTEM_ACTOR, { email: 'admin@example.com', password: 'correct horse battery', isAdmin: true });
  const user = await createUser(core, SYSTEM_ACTOR, { email: 'dev@example.com', password: 'correct horse battery', isAdmin: false });
  const token = (await createToken(core, SYSTEM_ACTOR, admin, 'test')).secret;
  const userToken = (await createToken(core, SYSTEM_ACTOR, user, 'test')).secret;
  const projects: TestApp['projects'] = {};
  for (const name of ['shop', 'blog']) {
    const p = await createProject(core, SYSTEM_ACTOR, name);
    projects[name] = { id: p.project.id, key: p.secret };
    await store.access.setMember(p.project.id, user.id, 'operator', clock.now);
  }
  const app = await buildApp({
    core,
    maxApiBodyBytes: limits.api,
    maxRunnerBodyBytes: limits.runner,
    maxOutputChunkBytes: limits.output ?? limits.runner,
    trustProxy: false,
    logLevel: 'silent',
  });
  return {
    app,
    core,
    clock,
    token,
    userToken,
    projects,
    runner: (project, method, path, body, headers = {}) =>
      app.inject({
        method,
        url: `/api/runner${path}`,
        headers: {
          authorization: `Bearer ${projects[project].key}`,
          'x-request-timestamp': String(Math.floor(clock.now / 1000)),
          'x-request-nonce': randomUUID(),
          'content-type': 'application/json',
          ...headers,
        },
        payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    api: (method, path, body, t = token) =>
      app.inject({
        method: method as 'GET',
        url: path,
        headers: { authorization: `Bearer ${t}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    close: async () => {
      await app.close();
      await close();
    },
  };
}

/** Makes a project's runner report commands, as a v1 runner does on start. */
export async function syncCommands(t: TestApp, project: string, names: string[]): Promise<void> {
  const res = await t.runner(project, 'POST', '/commands/sync/', {
    commands: names.map((name) => ({ name, app_label: 'demo', help_text: `usage: manage.py ${name}` })),
  });
  if (res.statusCode !== 200) throw new Error(`sync failed: ${res.body}`);
}
