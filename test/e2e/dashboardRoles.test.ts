/**
 * The dashboard follows roles, in a real browser (Debian's Chromium) against a real server and a
 * real runner next to the example Django project (SQLite): a viewer sees executions but no Run
 * button and no runner keys; an operator runs (and, demoted meanwhile, is refused with the
 * server's DC_ code and the page redrawn for the new role); a project admin adds a member and
 * makes a CI token; an owner disables a user whose open page is signed out on its next request;
 * a one-time password must be replaced before anything else. Screenshots of the new pages land
 * in test-results/dashboard/.
 *
 * The tests share one server and follow each other in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { launchBrowser, screenshot, signIn, type BrowserHandle } from '../support/browser.js';

const OWNER = 'admin@localhost';
const OWNER_PASSWORD = 'correct horse battery staple';
const PASSWORD = 'a long enough password';
const VIEWER = 'viewer@example.com';
const OPERATOR = 'operator@example.com';
const PROJECT_ADMIN = 'padmin@example.com';
const NEWBIE = 'newbie@example.com';

describe('the dashboard follows roles (sqlite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let token: string;
  let executionId: string;
  const browsers: BrowserHandle[] = [];
  const viewerPage: { page?: Page } = {};

  /** The REST API as the owner's token (setUpProject's). */
  const api = async <T>(method: string, p: string, body?: unknown, bearer = token): Promise<{ status: number; body: T }> => {
    const res = await fetch(server.url + p, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  /** `djangocommand admin ...` on the server's database. */
  const admin = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runCli(['admin', ...args, '--data-dir', db.dataDir], env);
    expect(r.code, `admin ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const member = async (email: string, role: string) => {
    await admin(['create-user', email, '--json'], { DJANGOCOMMAND_NEW_USER_PASSWORD: PASSWORD });
    if (role) await admin(['set-member', 'shop', email, '--role', role]);
  };
  const browserFor = async (email: string, password = PASSWORD): Promise<Page> => {
    const b = await launchBrowser();
    browsers.push(b);
    await signIn(b.page, server.url + '/', email, password);
    return b.page;
  };

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    let key: string;
    ({ key, token } = await setUpProject(server));
    runner = await startRunner(runnerEnv(server.url, key, exampleProject().env));
    await member(VIEWER, 'viewer');
    await member(OPERATOR, 'operator');
    await member(PROJECT_ADMIN, 'admin');
    await member(NEWBIE, '');
    await waitFor('the runner to report check', async () => (await api<{ items: Array<{ name: string }> }>('GET', '/api/v1/projects/shop/commands')).body.items.some((c) => c.name === 'check'));
    const run = await api<{ id: string }>('POST', '/api/v1/projects/shop/executions', { command: 'check' });
    expect(run.status).toBe(201);
    executionId = run.body.id;
    await waitFor('check to succeed', async () => (await api<{ status: string }>('GET', `/api/v1/executions/${executionId}`)).body.status === 'succeeded', 60_000);
  }, 180_000);

  afterAll(async () => {
    for (const b of browsers) {
      if (b.problems.length) console.log(`browser reported:\n${b.problems.join('\n')}`);
      await b.close();
    }
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('shows a viewer the executions but no Run button, and no runner keys in Settings', async () => {
    const page = await browserFor(VIEWER);
    viewerPage.page = page;
    const card = page.locator('[data-project="shop"]');
    await card.getByTestId('my-role').getByText('viewer').waitFor();
    expect(await card.getByTestId('run-in-shop').count()).toBe(0);
    await card.getByTestId('commands-of-shop').waitFor();

    await page.goto(`${server.url}/#/history`);
    await page.locator(`[data-testid="history-table"] a[href="#/executions/${executionId}"]`).first().waitFor();
    await page.goto(`${server.url}/#/executions/${executionId}`);
    await page.locator('[data-testid="status"] [data-status="succeeded"]').waitFor();
    expect(await page.getByTestId('cancel').count()).toBe(0);
    expect(await page.getByTestId('download').count()).toBe(1);

    await page.goto(`${server.url}/#/projects/shop/commands/check`);
    await page.getByRole('heading', { name: 'check', level: 1 }).waitFor();
    await page.getByTestId('no-run').waitFor();
    expect(await page.getByTestId('run').count()).toBe(0);
    await screenshot(page, 'roles-viewer-command-desktop-light');

    await page.goto(`${server.url}/#/settings`);
    await page.locator('#tokens').waitFor();
    await page.locator('#sessions [data-current="true"]').waitFor();
    for (const id of ['#keys', '#projects', '#users', '#all-tokens']) expect(await page.locator(id).count(), id).toBe(0);
    // The page only hides it: the server refuses the viewer the keys.
    const keys = await page.evaluate(async () => (await fetch('/api/v1/projects/shop/keys', { credentials: 'same-origin' })).json());
    expect(keys.code).toBe('DC_FORBIDDEN');
    await screenshot(page, 'settings-viewer-desktop-light');
    await page.goto(`${server.url}/#/`);
  });

  it('shows an operator Run; demoted meanwhile, the refusal shows its DC_ code and the page redraws for a viewer', async () => {
    const page = await browserFor(OPERATOR);
    await page.getByTestId('run-in-shop').click();
    await page.getByTestId('command-search').fill('check');
    await page.getByTestId('command-search').press('Enter');
    await page.getByRole('heading', { name: 'check', level: 1 }).waitFor();
    await page.getByTestId('run').click();
    await page.waitForURL(/#\/executions\/[0-9a-f-]{36}$/);
    await page.locator('[data-testid="status"] [data-status="succeeded"]').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('cancel').count()).toBe(1);

    await page.goto(`${server.url}/#/projects/shop/commands/check`);
    await page.getByTestId('run').waitFor();
    expect((await api('PUT', '/api/v1/projects/shop/members', { email: OPERATOR, role: 'viewer' })).status).toBe(200);
    await page.getByTestId('run').click();
    const changed = page.getByTestId('roles-changed');
    await changed.waitFor();
    expect(await changed.locator('.error-code').textContent()).toBe('DC_FORBIDDEN');
    await page.getByTestId('no-run').waitFor();
    expect(await page.getByTestId('run').count()).toBe(0);
    expect(page.url()).toContain('/commands/check');
  });

  it('lets a project admin add a member, change their role, and make and revoke a CI token', async () => {
    const page = await browserFor(PROJECT_ADMIN);
    await page.getByTestId('members-of-shop').click();
    await page.getByRole('heading', { name: 'Members of shop', level: 1 }).waitFor();
    await page.locator('[data-testid="members-table"] [data-member="viewer@example.com"]').waitFor();

    const add = page.getByTestId('add-member');
    await add.getByLabel('Email').fill(NEWBIE);
    await add.getByTestId('new-member-role').selectOption('viewer');
    await add.getByRole('button', { name: 'Add member' }).click();
    const row = page.locator(`[data-testid="members-table"] [data-member="${NEWBIE}"]`);
    await row.waitFor();
    await row.getByLabel(`Role of ${NEWBIE}`).selectOption('operator');
    await page.locator('#members .notice-success', { hasText: `${NEWBIE} is now operator of shop` }).waitFor();
    const members = (await api<{ items: Array<{ email: string; role: string }> }>('GET', '/api/v1/projects/shop/members')).body.items;
    expect(members.find((m) => m.email === NEWBIE)?.role).toBe('operator');

    await page.getByTestId('ci-token-name').fill('deploy pipeline');
    await page.getByTestId('ci-token-role').selectOption('operator');
    await page.locator('#ci-tokens').getByTestId('token-expiry').selectOption('30');
    await page.getByRole('button', { name: 'Create CI token' }).click();
    const secret = await page.locator('#ci-tokens .secret-value').inputValue();
    expect(secret.length).toBeGreaterThan(20);
    const tokenRow = page.locator('[data-testid="ci-tokens-table"] [data-ci-token="deploy pipeline"]');
    await tokenRow.waitFor();
    expect(await tokenRow.textContent()).toMatch(/operator/);
    const made = (await api<{ items: Array<{ name: string; expires_at: string | null }> }>('GET', '/api/v1/projects/shop/ci-tokens')).body.items.find((t) => t.name === 'deploy pipeline');
    const days = (Date.parse(made!.expires_at!) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThan(30.01);
    const asCi = await api<{ roles: Record<string, string> }>('GET', '/api/v1/me', undefined, secret);
    expect(asCi.status).toBe(200);
    expect(asCi.body.roles).toEqual({ shop: 'operator' });
    await page.locator('#members').scrollIntoViewIfNeeded();
    await screenshot(page, 'members-desktop-light', true);

    page.once('dialog', (d) => void d.accept());
    await tokenRow.getByRole('button', { name: 'Revoke' }).click();
    await tokenRow.getByText('revoked').waitFor();
    expect((await api('GET', '/api/v1/me', undefined, secret)).status).toBe(401);
  });

  it('does not show a viewer how to manage members', async () => {
    const page = viewerPage.page!;
    await page.goto(`${server.url}/#/projects/shop/members`);
    await page.locator(`[data-testid="members-table"] [data-member="${NEWBIE}"]`).waitFor();
    expect(await page.getByTestId('add-member').count()).toBe(0);
    expect(await page.locator('#ci-tokens').count()).toBe(0);
    expect(await page.locator('[data-testid="members-table"] select').count()).toBe(0);
    await page.goto(`${server.url}/#/`);
    await page.locator('[data-project="shop"]').waitFor();
  });

  it('lets an owner disable a user, whose open page is signed out on its next request', async () => {
    const page = await browserFor(OWNER, OWNER_PASSWORD);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    await page.goto(`${server.url}/#/settings`);
    const row = page.locator(`[data-testid="users-table"] [data-user="${VIEWER}"]`);
    await row.waitFor();
    expect(await row.getByTestId('user-state').textContent()).toBe('active');
    // The owner sees the viewer's session, and everyone's tokens.
    await page.getByTestId('sessions-of').selectOption(VIEWER);
    await page.locator('#sessions [data-testid="sessions-table"] tr[data-current="false"]').waitFor();
    await page.getByTestId('all-tokens-table').or(page.locator('#all-tokens p')).first().waitFor();

    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Disable' }).click();
    await expect.poll(() => row.getByTestId('user-state').textContent()).toBe('disabled');
    await screenshot(page, 'settings-owner-users-desktop-light', true);

    // The viewer's page, still open, goes to sign-in on its next request.
    const viewer = viewerPage.page!;
    // (Its refresh every few seconds may have been that request already.)
    if ((await viewer.getByRole('button', { name: 'Sign in' }).count()) === 0) await viewer.goto(`${server.url}/#/history`);
    await viewer.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 15_000 });
    await signIn(viewer, server.url + '/', VIEWER, PASSWORD);
    await expect.poll(() => viewer.getByRole('alert').textContent()).toMatch(/disabled|do not match/);

    await row.getByRole('button', { name: 'Enable' }).click();
    await expect.poll(() => row.getByTestId('user-state').textContent()).toBe('active');
  });

  it('asks for a new password at the first sign-in with a one-time password, then lands on the dashboard', async () => {
    const created = JSON.parse(await admin(['create-user', 'fresh@example.com', '--json'])) as { password: string };
    expect(created.password.length).toBeGreaterThanOrEqual(12);
    const b = await launchBrowser();
    browsers.push(b);
    const page = b.page;
    await signIn(page, `${server.url}/#/history`, 'fresh@example.com', created.password);
    await page.getByRole('heading', { name: 'Set your password', level: 1 }).waitFor();
    expect(page.url()).toContain('#/password');
    // Until then the server refuses everything else.
    const refused = await page.evaluate(async () => (await fetch('/api/v1/projects', { credentials: 'same-origin' })).json());
    expect(refused.code).toBe('DC_PASSWORD_CHANGE_REQUIRED');
    // Nor does another page get past it.
    await page.goto(`${server.url}/#/settings`);
    await page.getByRole('heading', { name: 'Set your password', level: 1 }).waitFor();
    await screenshot(page, 'password-desktop-light');

    const form = page.getByTestId('password-form');
    await form.getByLabel('Current (one-time) password').fill(created.password);
    await form.getByLabel('New password', { exact: true }).fill('my very own passphrase');
    await form.getByLabel('Repeat the new password').fill('my very own passphrase!');
    await form.getByRole('button', { name: 'Set password' }).click();
    await expect.poll(() => form.locator('.field-error').allTextContents()).toContain('The two new passwords differ.');
    await form.getByLabel('Repeat the new password').fill('my very own passphrase');
    await form.getByRole('button', { name: 'Set password' }).click();
    await page.getByRole('heading', { name: 'History', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Projects' }).first().click();
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();

    const login = (password: string) =>
      fetch(`${server.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'fresh@example.com', password }) }).then((r) => r.status);
    expect(await login(created.password)).toBe(401);
    expect(await login('my very own passphrase')).toBe(200);
  });
});
