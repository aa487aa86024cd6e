/**
 * The schedules pages in a real browser (Debian's Chromium) against a real server: the form's
 * live preview (a wrong cron field shown next to the field; the spring-forward day of a 02:30
 * Amsterdam job marked, with what happens), saving, and the "next 24 hours" timeline.
 * Screenshots land in test-results/dashboard/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';
import { launchBrowser, screenshot, type BrowserHandle, signIn } from '../support/browser.js';
import { V1Client } from '../support/v1Client.js';

describe('the schedules pages', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let browser: BrowserHandle;
  let page: Page;
  let token: string;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    let key: string;
    ({ key, token } = await setUpProject(server));
    await new V1Client({ serverUrl: server.url, apiKey: key }).syncCommands(['clearsessions', 'check'].map((name) => ({ name, app_label: 'demo', help_text: `usage: manage.py ${name}` })));
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, server.url, 'admin@localhost', 'correct horse battery staple');
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await db?.drop();
  });

  it('previews live, marks the spring-forward day of a 02:30 Amsterdam job, shows a wrong field at the field, and saves', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
    await page.getByTestId('new-schedule').click();
    const cron = page.getByTestId('schedule-cron');
    await cron.fill('61 * * * *');
    const cronError = page.locator(`#${await cron.getAttribute('id')}-error`);
    await expect.poll(() => cronError.textContent()).toContain('The minute field "61" is invalid');
    await cron.fill('30 2 * 3 0'); // Sundays in March: the last one is the spring-forward day
    await page.getByTestId('schedule-timezone').fill('Europe/Amsterdam');
    const dstRow = page.locator('[data-testid="preview-runs"] tr[data-dst="spring_forward"]').first();
    await dstRow.waitFor();
    expect(await dstRow.locator('[data-testid="dst-note"]').textContent()).toContain('02:30 does not exist on this day: the run happens once, at 03:00 (+02:00).');
    expect(await dstRow.locator('td').first().textContent()).toContain('03:00');
    expect(await page.locator('[data-testid="preview-runs"] th').allTextContents()).toEqual(['Europe/Amsterdam', 'UTC', expect.stringMatching(/^Your time \(.+\)$/)]);
    await page.getByTestId('schedule-name').fill('march sundays');
    await screenshot(page, 'schedule-form');
    await page.getByTestId('schedule-save').click();
    await page.getByRole('heading', { name: 'march sundays' }).waitFor();
    expect(await page.locator('tr[data-dst="spring_forward"]').count()).toBeGreaterThanOrEqual(1);
  });

  it('shows the next 24 hours across projects, and each schedule with its strip of results', async () => {
    const res = await fetch(`${server.url}/api/v1/schedules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'check', cron: '0 * * * *', name: 'hourly check' }),
    });
    expect(res.status).toBe(201);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
    const rows = page.getByTestId('timeline-row');
    await rows.first().waitFor();
    // The March job has no run in the next 24 hours; the hourly one has 24.
    expect(await rows.count()).toBe(1);
    expect(await rows.first().locator('a').textContent()).toBe('shop: hourly check');
    expect(await rows.first().locator('.timeline-mark').count()).toBe(24);
    expect(await page.locator('tr[data-schedule]').count()).toBe(2);
    expect(await page.getByTestId('result-strip').first().getAttribute('aria-label')).toBe('No runs yet');
    await screenshot(page, 'schedules', true);
    // The only failed request is the preview of the wrong expression above, answered 400 on purpose.
    // (and the session check before signing in, 401).
    expect(browser.problems.filter((p) => p !== 'HTTP 401 GET /api/v1/session')).toEqual(['HTTP 400 GET /api/v1/schedules/preview']);
  });
});
