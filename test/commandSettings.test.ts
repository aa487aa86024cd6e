/**
 * Command settings through the HTTP API (in-process, real store), on SQLite and PostgreSQL: who
 * may read and change them, validation, the audit of each change, survival across catalogue
 * syncs, and their effect on runs: metadata-only reaches a v1 runner as use_metadata_only_mode,
 * the default timeout applies when a run names none, the concurrency limit.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { createToken, createUser } from '../src/core/accounts.js';
import { SYSTEM_ACTOR } from '../src/core/audit.js';

describe.each(DB_KINDS)('command settings (%s)', (kind) => {
  let t: TestApp;
  let viewerToken: string;
  const path = (command = 'migrate', project = 'shop') => `/api/v1/projects/${project}/commands/${command}/settings`;
  const put = (body: unknown, token?: string, command?: string) => t.api('PUT', path(command), body, token);
  const run = async (body: Record<string, unknown>) => t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', ...body }, t.userToken);
  const pending = async () => (await t.runner('shop', 'GET', '/pending/')).json().executions as Array<{ id: string; use_metadata_only_mode: boolean; timeout: number }>;

  beforeEach(async () => {
    t = await testApp(kind);
    await syncCommands(t, 'shop', ['migrate', 'check']);
    const viewer = await createUser(t.core, SYSTEM_ACTOR, { email: 'viewer@example.com', password: 'correct horse battery', isAdmin: false });
    await t.core.store.access.setMember(t.projects.shop.id, viewer.id, 'viewer', t.clock.now);
    viewerToken = (await createToken(t.core, SYSTEM_ACTOR, viewer, 'v')).secret;
  });
  afterEach(async () => t.close());

  it('shows the defaults to any member; only a project admin changes them, and each change is audited with before and after', async () => {
    const get = await t.api('GET', path(), undefined, viewerToken);
    expect(get.statusCode, get.body).toBe(200);
    expect(get.json()).toEqual({
      project: 'shop',
      command: 'migrate',
      metadata_only: false,
      default_timeout_seconds: null,
      max_concurrency: null,
      read_only_default: false,
      requires_approval: false,
      approval_pattern: null,
      approver_role: 'operator',
      approval_expiry_seconds: 86400,
      updated_at: null,
      updated_by: null,
    });
    const byOperator = await put({ requires_approval: true }, t.userToken);
    expect(byOperator.statusCode).toBe(403);
    expect(byOperator.json().code).toBe('DC_FORBIDDEN');
    expect((await put({ metadata_only: true }, viewerToken)).statusCode).toBe(403);
    const res = await put({ requires_approval: true, approver_role: 'admin', default_timeout_seconds: 1800, metadata_only: true });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ requires_approval: true, approver_role: 'admin', default_timeout_seconds: 1800, metadata_only: true, updated_by: 'admin@example.com (token test)' });
    const [event] = (await t.api('GET', '/api/v1/audit?action=command.settings')).json().items;
    expect(event.details).toEqual({
      command: 'migrate',
      changes: {
        requiresApproval: { from: false, to: true },
        approverRole: { from: 'operator', to: 'admin' },
        defaultTimeoutSeconds: { from: null, to: 1800 },
        metadataOnly: { from: false, to: true },
      },
    });
    expect((await t.api('GET', path())).json()).toMatchObject({ requires_approval: true, approver_role: 'admin' });
  });

  it('refuses bad values with the field named, and unknown commands and projects', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ requires_approval: true, approval_pattern: '([a-z' }, 400, 'DC_VALIDATION'],
      [{ approval_pattern: '^\\d+$' }, 400, 'DC_VALIDATION'],
      [{ approver_role: 'viewer' }, 400, 'DC_VALIDATION'],
      [{ default_timeout_seconds: 0 }, 400, 'DC_VALIDATION'],
      [{ approval_expiry_seconds: 5 }, 400, 'DC_VALIDATION'],
      [{ max_concurrency: 0 }, 400, 'DC_VALIDATION'],
      [{}, 400, 'DC_VALIDATION'],
      [{ colour: 'red' }, 400, 'DC_VALIDATION'],
    ];
    for (const [body, status, code] of cases) {
      const res = await put(body);
      expect(res.statusCode, JSON.stringify(body) + res.body).toBe(status);
      expect(res.json().code).toBe(code);
    }
    expect((await put({ requires_approval: true, approval_pattern: '([a-z' })).json().error).toMatch(/approval_pattern is not a regular expression/);
    expect((await put({ metadata_only: true }, undefined, 'nosuch')).json().code).toBe('DC_UNKNOWN_COMMAND');
    expect((await t.api('PUT', path('migrate', 'nosuch'), { metadata_only: true })).json().code).toBe('DC_UNKNOWN_PROJECT');
    // Nothing was written by the refusals.
    expect((await t.api('GET', path())).json()).toMatchObject({ requires_approval: false, approval_pattern: null, updated_at: null });
  });

  it('survive catalogue syncs, also when a deploy drops the command for a while', async () => {
    await put({ requires_approval: true, approval_pattern: '^shop', metadata_only: true, read_only_default: true, max_concurrency: 3 });
    await syncCommands(t, 'shop', ['migrate', 'check', 'clearsessions']);
    expect((await t.api('GET', path())).json()).toMatchObject({ requires_approval: true, approval_pattern: '^shop', metadata_only: true, read_only_default: true, max_concurrency: 3 });
    await syncCommands(t, 'shop', ['check']);
    await syncCommands(t, 'shop', ['migrate', 'check']);
    // Approval and metadata-only are kept by name; what lives on the catalogue row does not outlive it.
    expect((await t.api('GET', path())).json()).toMatchObject({ requires_approval: true, approval_pattern: '^shop', metadata_only: true });
    expect((await run({ argv: ['shop'] })).json().status).toBe('awaiting_approval');
  });

  it('metadata-only: protocol v1 pending carries use_metadata_only_mode=true when on, false when off', async () => {
    await put({ metadata_only: true, max_concurrency: 5 });
    const on = (await run({})).json();
    await put({ metadata_only: false });
    const off = (await run({})).json();
    const offered = await pending();
    expect(offered.find((e) => e.id === on.id)?.use_metadata_only_mode).toBe(true);
    expect(offered.find((e) => e.id === off.id)?.use_metadata_only_mode).toBe(false);
  });

  it('the default timeout applies when a run names none; a run that names one keeps it', async () => {
    await put({ default_timeout_seconds: 1800, max_concurrency: 5 });
    expect((await run({})).json().timeout).toBe(1800);
    expect((await run({ timeout: 60 })).json().timeout).toBe(60);
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' })).json().timeout).toBe(3600);
  });

  it('max concurrency from the settings limits active runs', async () => {
    await put({ max_concurrency: 2 });
    expect((await run({})).statusCode).toBe(201);
    expect((await run({})).statusCode).toBe(201);
    const third = await run({});
    expect(third.statusCode).toBe(409);
    expect(third.json().code).toBe('DC_CONCURRENCY_LIMIT');
  });
});
