/**
 * The dashboard's Notifications page in a real browser against a real server: an admin creates a
 * Slack channel with the form, presses "Send a test", sees the outcome and the attempt, and the
 * receiver on loopback got the message; a webhook's signing secret is shown once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';
import { launchBrowser, screenshot, type BrowserHandle, signIn } from '../support/browser.js';
import { httpReceiver, type HttpReceiver } from '../support/receivers.js';

describe('the Notifications page', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let browser: BrowserHandle;
  let hook: HttpReceiver;
  let page: Page;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    await setUpProject(server);
    hook = await httpReceiver();
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, server.url + '/#/notifications?project=shop', 'admin@localhost', 'correct horse battery staple');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await hook?.close();
    await db?.drop();
  });

  it('creates a channel, sends a test and shows the attempt', async () => {
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
    await expect(page.getByLabel('Channels of').inputValue()).resolves.toBe('shop');
    await page.getByText('No channel for shop yet.').waitFor();
    const form = page.getByTestId('channel-form');
    await form.getByLabel('Kind').selectOption('slack');
    await form.getByLabel('Name').fill('ops room');
    await form.getByLabel('URL').fill(`${hook.url}/services/T1/B1/secretpart`);
    await form.getByLabel('success', { exact: true }).check();
    await form.getByRole('button', { name: 'Create channel' }).click();
    await page.getByText('Channel ops room created.').waitFor();
    const row = page.getByTestId('channels-table').locator('tr', { hasText: 'ops room' });
    await expect(row.textContent()).resolves.toContain(`${hook.url}/…`);
    await expect(row.textContent()).resolves.not.toContain('secretpart');

    await row.getByRole('button', { name: 'Send a test' }).click();
    await page.getByText(/Test to ops room: delivered \(HTTP 200\)/).waitFor({ timeout: 20_000 });
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0].path).toBe('/services/T1/B1/secretpart');
    expect(JSON.parse(hook.received[0].body).text).toContain('Test message from djangocommand for shop');
    const deliveries = page.getByTestId('deliveries-table');
    await deliveries.waitFor();
    await expect(deliveries.textContent()).resolves.toMatch(/Test message from djangocommand for shop.*delivered.*HTTP 200/s);
    await screenshot(page, 'notifications-desktop-light', true);

    // A failing receiver: the button says so, with the receiver's answer.
    hook.script = [500];
    await row.getByRole('button', { name: 'Send a test' }).click();
    await page.getByText(/Test to ops room: failed: HTTP 500: receiver says no/).waitFor({ timeout: 20_000 });
  }, 60_000);

  it('shows a webhook\u2019s signing secret once', async () => {
    await page.getByLabel('Channels of').selectOption('');
    await page.getByText('No server-wide channel yet.').waitFor();
    const form = page.getByTestId('channel-form');
    await form.getByLabel('Kind').selectOption('webhook');
    await form.getByLabel('URL').fill(`${hook.url}/hook`);
    await form.getByRole('button', { name: 'Create channel' }).click();
    const secret = await page.locator('.secret-value').inputValue();
    expect(secret).toMatch(/^whsec_/);
    await page.reload();
    await page.getByTestId('channels-table').waitFor();
    expect(await page.content()).not.toContain(secret);
    expect(browser.problems.filter((p) => !p.includes('HTTP 401 GET /api/v1/session'))).toEqual([]);
  }, 60_000);
});
