/**
 * A command's settings in the dashboard, in a real browser against a real server and our runner:
 * the owner turns on "requires approval" with a pattern and a default timeout on the command's
 * page (only the changed fields are sent; the API then shows them and the audit log has
 * command.settings); a bad pattern shows the server's DC_ error next to the form and changes
 * nothing; a viewer sees the settings as a list, with no form, and the server refuses their PUT.
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
const VIEWER = 'viewer@example.com';
const VIEWER_PASSWORD = 'a long enough password';

describe('command settings in the dashboard', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let browser: BrowserHandle;
  let page: Page;
  let ownerToken: string;
  let viewerToken: string;

  const api = async (path: string, init: RequestInit = {}, token = ownerToken) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const admin = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runCli(['admin', ...args, '--data-dir', db.dataDir], env);
    expect(r.code, `admin ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const settingsAudits = async () => (await api('/api/v1/audit?action=command.settings')).body.items as Array<{ details: { command: string; changes: Record<string, { from: unknown; to: unknown }> } }>;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const { key, token } = await setUpProject(server);
    ownerToken = token;
    await admin(['create-user', VIEWER, '--json'], { DJANGOCOMMAND_NEW_USER_PASSWORD: VIEWER_PASSWORD });
    await admin(['set-member', 'shop', VIEWER, '--role', 'viewer']);
    viewerToken = JSON.parse(await admin(['create-token', '--user', VIEWER, '--json'])).token;
    runner = await startRunner(runnerEnv(server.url, key, exampleProject().env));
    await waitFor('the catalogue', async () => (await api('/api/v1/projects/shop/commands/check')).status === 200, 30_000, 100);
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, server.url + '/', OWNER, OWNER_PASSWORD);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    browser.problems.length = 0;
  }, 120_000);

  afterAll(async () => {
    if (browser?.problems.length) console.log(`browser reported:\n${browser.problems.join('\n')}`);
    await browser?.close();
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('the owner turns on approval with a pattern and a default timeout; the API and the audit log show it', async () => {
    await page.goto(`${server.url}/#/projects/shop/commands/check`);
    const form = page.getByTestId('command-settings-form');
    await form.waitFor();
    expect(await page.getByTestId('setting-requires-approval').isChecked()).toBe(false);
    expect(await page.getByTestId('setting-default-timeout').inputValue()).toBe('');

    await page.getByTestId('setting-requires-approval').check();
    await page.getByTestId('setting-approval-pattern').fill('^--deploy');
    await page.getByTestId('setting-default-timeout').fill('900');
    await page.getByTestId('command-settings-save').click();
    await expect.poll(() => page.getByTestId('command-settings-result').textContent()).toContain('Saved');
    await screenshot(page, 'command-settings-saved');

    const s = (await api('/api/v1/projects/shop/commands/check/settings')).body;
    expect(s).toMatchObject({ requires_approval: true, approval_pattern: '^--deploy', default_timeout_seconds: 900, max_concurrency: null, metadata_only: false, updated_by: OWNER });
    const audits = await settingsAudits();
    expect(audits).toHaveLength(1);
    expect(audits[0].details.command).toBe('check');
    // Only the changed fields were sent, so only they are in the audit.
    expect(Object.keys(audits[0].details.changes).sort()).toEqual(['approvalPattern', 'defaultTimeoutSeconds', 'requiresApproval']);
    expect(audits[0].details.changes.defaultTimeoutSeconds).toEqual({ from: null, to: 900 });

    // After a reload the form shows what the server holds.
    await page.reload();
    await form.waitFor();
    expect(await page.getByTestId('setting-requires-approval').isChecked()).toBe(true);
    expect(await page.getByTestId('setting-approval-pattern').inputValue()).toBe('^--deploy');
    expect(await page.getByTestId('setting-default-timeout').inputValue()).toBe('900');
  }, 60_000);

  it("shows the server's DC_ error next to the form for a pattern that is not a regular expression, and changes nothing", async () => {
    await page.getByTestId('setting-approval-pattern').fill('(unclosed');
    await page.getByTestId('command-settings-save').click();
    await expect.poll(() => page.getByTestId('command-settings-result').textContent()).toContain('DC_VALIDATION');
    expect(await page.getByTestId('setting-approval-pattern').getAttribute('aria-invalid')).toBe('true');
    expect((await api('/api/v1/projects/shop/commands/check/settings')).body.approval_pattern).toBe('^--deploy');
    expect(await settingsAudits()).toHaveLength(1);
    browser.problems.length = 0; // the 400 is the point here
  }, 60_000);

  it('a viewer sees the settings as a list, without the form; the server refuses their change', async () => {
    await browser.context.clearCookies();
    await signIn(page, server.url + '/', VIEWER, VIEWER_PASSWORD);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    browser.problems.length = 0; // the 401 of the signed-out page before the viewer signs in
    await page.goto(`${server.url}/#/projects/shop/commands/check`);
    const list = page.getByTestId('command-settings-list');
    await list.waitFor();
    expect(await list.textContent()).toContain('^--deploy');
    expect(await page.getByTestId('command-settings-form').count()).toBe(0);
    expect(await page.getByTestId('command-settings-save').count()).toBe(0);
    await screenshot(page, 'command-settings-viewer');

    const refused = await api('/api/v1/projects/shop/commands/check/settings', { method: 'PUT', body: JSON.stringify({ requires_approval: false }) }, viewerToken);
    expect(refused.status).toBe(403);
    expect((await api('/api/v1/projects/shop/commands/check/settings')).body.requires_approval).toBe(true);
  }, 60_000);
});
