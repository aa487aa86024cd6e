/**
 * Four-eyes approvals in the dashboard, in a real browser against a real server and our runner:
 * the run view of an execution waiting for approval shows who asked and Approve / Deny with a
 * comment; approving another member's request lets it run to the end; trying to approve one's
 * own request shows the server's DC_SELF_APPROVAL error and changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { launchBrowser, screenshot, signIn, type BrowserHandle } from '../support/browser.js';

const EMAIL = 'admin@localhost';
const PASSWORD = 'correct horse battery staple';

describe('four-eyes approvals in the dashboard', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let browser: BrowserHandle;
  let page: Page;
  let adminToken: string;
  let devToken: string;

  const api = async (path: string, init: RequestInit = {}, token = adminToken) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const runCheck = async (token: string): Promise<string> => {
    const res = await api('/api/v1/projects/shop/executions', { method: 'POST', body: JSON.stringify({ command: 'check' }) }, token);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.status).toBe('awaiting_approval');
    return res.body.id;
  };

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const { key, token } = await setUpProject(server);
    adminToken = token;
    expect((await api('/api/v1/users', { method: 'POST', body: JSON.stringify({ email: 'dev@example.com', password: 'correct horse battery', one_time_password: false }) })).status).toBe(201);
    expect((await api('/api/v1/projects/shop/members', { method: 'PUT', body: JSON.stringify({ email: 'dev@example.com', role: 'operator' }) })).status).toBeLessThan(300);
    const t = await server.admin(['create-token', '--user', 'dev@example.com', '--json']);
    devToken = JSON.parse(t.stdout).token;
    runner = await startRunner(runnerEnv(server.url, key, exampleProject().env));
    await waitFor('the catalogue', async () => (await api('/api/v1/projects/shop/commands/check')).status === 200, 30_000, 100);
    expect((await api('/api/v1/projects/shop/commands/check/settings', { method: 'PUT', body: JSON.stringify({ requires_approval: true, max_concurrency: 5 }) })).status).toBe(200);
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, server.url + '/', EMAIL, PASSWORD);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    browser.problems.length = 0;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it("approves another member's request with a comment: the run goes on to the end", async () => {
    const id = await runCheck(devToken);
    await page.goto(`${server.url}/#/executions/${id}`);
    await page.getByTestId('approval-panel').waitFor();
    await expect.poll(() => page.getByTestId('approval-request').textContent()).toContain('Asked by dev@example.com');
    await page.getByTestId('approval-comment').fill('fine by me');
    await screenshot(page, 'approval-waiting');
    await page.getByTestId('approve').click();
    await page.locator('[data-testid="status"] [data-status="succeeded"]').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('approval-panel').count()).toBe(0);
    expect((await api(`/api/v1/executions/${id}/approval`)).body).toMatchObject({ status: 'approved', comment: 'fine by me', decided_by: 'admin@localhost' });
  }, 60_000);

  it('shows DC_SELF_APPROVAL when the requester tries to approve, and it keeps waiting', async () => {
    const id = await runCheck(adminToken);
    await page.goto(`${server.url}/#/executions/${id}`);
    await page.getByTestId('approve').click();
    await expect.poll(() => page.getByTestId('approval-error').textContent()).toContain('DC_SELF_APPROVAL');
    await screenshot(page, 'approval-self');
    expect((await api(`/api/v1/executions/${id}`)).body.status).toBe('awaiting_approval');
    browser.problems.length = 0; // the 403 is the point here
  }, 60_000);
});
