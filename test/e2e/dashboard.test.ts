/**
 * The dashboard in a real browser (Debian's Chromium) against a real server and a real runner
 * next to the example Django project: sign in with the session cookie, run a command from the
 * form made of its argparse definition (refused before anything runs when a value is wrong),
 * watch its output live, cancel a slow one from the run view, find both in the history and
 * the audit log. Screenshots of every main page land in test-results/dashboard/.
 *
 * The tests follow one person's visit, in order, in one browser.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { REPO, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { launchBrowser, screenshot, type BrowserHandle, signIn as signInWith } from '../support/browser.js';
import { V1Client } from '../support/v1Client.js';

const EMAIL = 'admin@localhost';
const PASSWORD = 'correct horse battery staple';
const DASHBOARD_SRC = path.join(REPO, 'src/dashboard');
const DASHBOARD_DIST = path.join(REPO, 'dist/dashboard');

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

async function signIn(page: Page, url: string, password = PASSWORD): Promise<void> {
  await signInWith(page, url, EMAIL, password);
}

/** The terminal's text (scroll-back included), as the page shows it. */
const terminalText = (page: Page) => page.evaluate(() => (window as unknown as { dcTerminal?: () => string }).dcTerminal?.() ?? '');

describe('the dashboard', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let browser: BrowserHandle;
  let token: string;
  let page: Page;
  const ran: { rich?: string; slow?: string } = {};

  const api = async <T>(p: string): Promise<T> => {
    const res = await fetch(server.url + p, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status, p).toBe(200);
    return (await res.json()) as T;
  };
  const executionCount = async () => (await api<{ items: unknown[] }>('/api/v1/executions?limit=500')).items.length;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    let key: string;
    ({ key, token } = await setUpProject(server));
    const example = exampleProject();
    runner = await startRunner(runnerEnv(server.url, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }));
    browser = await launchBrowser();
    page = browser.page;
  }, 120_000);

  afterAll(async () => {
    if (browser?.problems.length) console.log(`browser reported:\n${browser.problems.join('\n')}`);
    await browser?.close();
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('is built into dist/dashboard, loads nothing from elsewhere, and never parses data as HTML', () => {
    for (const f of ['index.html', 'app.js', 'app.css']) expect(fs.existsSync(path.join(DASHBOARD_DIST, f)), f).toBe(true);
    const html = fs.readFileSync(path.join(DASHBOARD_DIST, 'index.html'), 'utf8');
    const css = fs.readFileSync(path.join(DASHBOARD_DIST, 'app.css'), 'utf8');
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(css).not.toMatch(/url\(\s*["']?(https?:)?\/\/|@import/i);
    for (const file of filesUnder(DASHBOARD_SRC).filter((f) => f.endsWith('.ts'))) {
      const text = fs.readFileSync(file, 'utf8');
      expect(text, path.relative(REPO, file)).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write\(/);
    }
  });

  it('refuses a wrong password, then signs in with the session cookie', async () => {
    await signIn(page, server.url + '/', 'not the password');
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/do not match/);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    const cookies = await browser.context.cookies(server.url);
    const session = cookies.find((c) => c.httpOnly);
    expect(session, 'an HttpOnly session cookie').toBeDefined();
    // The page never sees the cookie itself.
    expect(await page.evaluate(() => document.cookie)).not.toContain(session!.value);
  });

  it('shows the project with its runner online and its versions', async () => {
    const card = page.locator('[data-project="shop"]');
    await card.locator('.runner[data-online="true"]').waitFor();
    await expect.poll(() => card.locator('.runner').textContent()).toMatch(/online.*runner \S+ \(v2\).*Python 3\.\d+.*Django \d/s);
  });

  it('builds a form from rich_args\u2019 argparse definition and refuses a bad value next to its field before anything runs', async () => {
    await page.locator('[data-testid="run-in-shop"]').click();
    await page.getByTestId('command-search').fill('rich');
    await page.getByTestId('command-search').press('Enter');
    await page.getByRole('heading', { name: 'rich_args', level: 1 }).waitFor();
    const field = (dest: string) => page.locator(`.args-form > .fields > [data-dest="${dest}"]`);
    const before = await executionCount();

    // Run with the required positional missing: the error shows next to it.
    await page.getByTestId('run').click();
    await expect.poll(() => field('target').locator('.field-error').textContent()).toContain('the following arguments are required: target');

    await field('target').locator('input').fill('alpha');
    await field('mode').locator('select').selectOption('fast'); // a choice
    await field('dry_run').locator('input[type="checkbox"]').check(); // a checkbox
    await field('tag').locator('input').first().fill('one'); // a repeated value…
    await field('tag').getByRole('button', { name: '+ Add value' }).click();
    await field('tag').locator('input').nth(1).fill('two words'); // …given twice
    await field('count').locator('input').fill('1.5'); // not an int
    await expect.poll(() => field('count').locator('.field-error').textContent()).toBe("argument --count: invalid int value: '1.5'");
    expect(await field('count').locator('input').getAttribute('aria-invalid')).toBe('true');
    await page.getByTestId('run').click();
    await page.waitForTimeout(500);
    expect(page.url()).toContain('/commands/rich_args');
    expect(await executionCount()).toBe(before);

    await field('count').locator('input').fill('3');
    await expect.poll(() => field('count').locator('.field-error').textContent()).toBe('');
    expect(await page.locator('.preview code').textContent()).toBe("manage.py rich_args alpha --count 3 --mode fast --dry-run --tag one --tag 'two words'");
    await screenshot(page, 'catalogue-form-desktop-light');
  });

  it('runs it and shows its output in the terminal as it arrives', async () => {
    await page.getByTestId('run').click();
    await page.waitForURL(/#\/executions\/[0-9a-f-]{36}$/);
    ran.rich = page.url().split('/').pop()!;
    await page.locator('[data-testid="status"] [data-status="succeeded"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => terminalText(page)).toContain('"mode": "fast"');
    const printed = JSON.parse((await terminalText(page)).trim());
    expect(printed).toMatchObject({ target: 'alpha', count: 3, mode: 'fast', dry_run: true, tag: ['one', 'two words'] });
    expect(await page.getByTestId('exit-code').textContent()).toBe('0');
    expect(await page.getByTestId('created-by').textContent()).toContain(EMAIL);
    expect(await page.getByTestId('cancel').isDisabled()).toBe(true);
    expect(await page.getByTestId('force-kill').isDisabled()).toBe(true);
    expect(await page.getByTestId('download').getAttribute('href')).toBe(`/api/v1/executions/${ran.rich}/output`);
  });

  it('cancels slow --steps 200 --delay 0.1 from the run view while its output streams', async () => {
    await page.goto(`${server.url}/#/projects/shop/commands/slow`);
    await page.getByRole('heading', { name: 'slow', level: 1 }).waitFor();
    await page.locator('label', { hasText: 'Free text' }).click();
    expect(await page.getByRole('radio', { name: 'Free text' }).isChecked()).toBe(true);
    await page.getByTestId('free-args').fill('--steps 200 --delay 0.1');
    await page.getByTestId('run').click();
    await page.waitForURL(/#\/executions\/[0-9a-f-]{36}$/);
    ran.slow = page.url().split('/').pop()!;
    await page.locator('[data-testid="status"] [data-status="running"]').waitFor({ timeout: 30_000 });
    // Live: the progress bar moves while it runs.
    await expect.poll(() => terminalText(page), { timeout: 15_000 }).toMatch(/\[#+\s*\]\s+\d+%/);
    expect(await page.getByTestId('cancel').isEnabled()).toBe(true);
    await screenshot(page, 'run-running-desktop-light');
    await page.getByTestId('cancel').click();
    await page.locator('[data-testid="status"] [data-status="cancelled"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => terminalText(page)).toMatch(/interrupted at step \d+ of 200/);
    expect(await page.getByTestId('exit-code').textContent()).toBe('130');
    expect(await page.getByTestId('force-kill').isDisabled()).toBe(true);
  });

  it('finds both in the history, filtered by command, with the duration chart', async () => {
    await page.getByRole('link', { name: 'History' }).first().click();
    await page.getByTestId('history-table').waitFor();
    const rows = page.locator('[data-testid="history-table"] tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    await page.getByLabel('Command').fill('slow');
    await page.getByLabel('Command').press('Enter');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-execution')).toBe(ran.slow);
    expect(await rows.first().locator('[data-status]').getAttribute('data-status')).toBe('cancelled');
    expect(page.url()).toContain('command=slow');
    await page.getByLabel('Command').fill('rich_args');
    await page.getByLabel('Command').press('Enter');
    await expect.poll(() => rows.first().getAttribute('data-execution')).toBe(ran.rich);
    await page.getByLabel('Command').fill('');
    await page.getByLabel('Command').press('Enter');
    await expect.poll(() => rows.count()).toBe(2);
    // One point per finished run, one series per command.
    await expect.poll(() => page.locator('svg.chart circle').count()).toBe(2);
    expect((await page.locator('svg.chart .series').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-series')))).sort()).toEqual(['rich_args', 'slow']);
  });

  it('finds both in the audit log, and offers the export', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-table').waitFor();
    await page.getByLabel('Action').fill('execution.create');
    await page.getByLabel('Action').press('Enter');
    const rows = page.locator('[data-testid="audit-table"] tbody tr');
    await expect.poll(async () => (await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-execution')))).sort()).toEqual([ran.rich, ran.slow].sort());
    await page.getByLabel('Action').fill('execution.cancel');
    await page.getByLabel('Action').press('Enter');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-execution')).toBe(ran.slow);
    expect(await rows.first().textContent()).toContain(EMAIL);
    expect(await page.getByTestId('export-csv').getAttribute('href')).toBe('/api/v1/audit/export?action=execution.cancel&format=csv');
    expect(await page.getByTestId('export-jsonl').getAttribute('href')).toBe('/api/v1/audit/export?action=execution.cancel&format=jsonl');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-jsonl').click()]);
    const lines = fs.readFileSync((await download.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; execution_id: string });
    expect(lines).toEqual([expect.objectContaining({ action: 'execution.cancel', execution_id: ran.slow })]);
  });

  it('shows only the end of a huge output, without replaying it, and earlier parts on request', async () => {
    const res = await fetch(`${server.url}/api/v1/projects/shop/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'spew', argv: ['--lines', '100000', '--stderr-every', '1000'] }), // 8 MB
    });
    const { id } = (await res.json()) as { id: string };
    await waitFor('spew to end', async () => (await api<{ status: string }>(`/api/v1/executions/${id}`)).status === 'succeeded', 60_000, 200);
    const chunkRequests: string[] = [];
    const count = (r: { url(): string }) => void (r.url().includes('/output/chunks') && chunkRequests.push(r.url()));
    page.on('request', count);
    const started = Date.now();
    await page.goto(`${server.url}/#/executions/${id}`);
    await expect.poll(() => terminalText(page), { timeout: 20_000 }).toContain('100000 xxxx');
    const shownAfter = Date.now() - started;
    page.off('request', count);
    expect(await page.locator('.notice-error').allTextContents()).toEqual([]);
    // The view says where the output ends: no probing for it, a few reads backwards from there.
    expect(chunkRequests.length, chunkRequests.join('\n')).toBeLessThanOrEqual(8);
    const text = await terminalText(page);
    expect(text).not.toContain('000001 xxxx');
    expect(text).toMatch(/7\.7 MiB of output: showing the end/);
    expect(shownAfter, 'the tail shows in a few seconds').toBeLessThan(10_000);
    // Every 1000th line is written to stderr too: both copies are in the tail.
    expect(text.match(/^099000 x+$/gm)).toHaveLength(2);
    await page.getByRole('button', { name: 'Load earlier output' }).click();
    await expect.poll(() => page.locator('.earlier-text').textContent()).toMatch(/\d{6} x+\n/);
    // Where the two meet no line is missing or repeated (stdout lines only: stderr copies lag).
    const numbers = (t: string) => [...t.matchAll(/^(\d{6}) x/gm)].map((m) => Number(m[1])).filter((n) => n % 1000 !== 0);
    const lastEarlier = Math.max(...numbers((await page.locator('.earlier-text').textContent())!));
    const firstInTerminal = Math.min(...numbers(text));
    expect(firstInTerminal - lastEarlier).toBeGreaterThanOrEqual(1);
    expect(firstInTerminal - lastEarlier).toBeLessThanOrEqual(2);
  });

  it('switches between light and dark with the toggle', async () => {
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await background();
    await page.getByTestId('theme-toggle').click(); // system → light
    expect(await background()).toBe(light);
    await page.getByTestId('theme-toggle').click(); // light → dark
    expect(await background()).not.toBe(light);
    await page.getByTestId('theme-toggle').click(); // dark → system (light here)
    expect(await background()).toBe(light);
  });

  async function screenshotsOfEveryPage(p: Page, suffix: string): Promise<string[]> {
    const shots: string[] = [];
    const visit = async (name: string, hash: string, ready: string) => {
      await p.goto(`${server.url}/${hash}`);
      await p.locator(ready).first().waitFor();
      await p.waitForTimeout(300);
      shots.push(await screenshot(p, `${name}-${suffix}`));
    };
    await visit('projects', '#/', '.runner');
    await visit('catalogue', '#/projects/shop', '.command-list');
    await visit('command', '#/projects/shop/commands/rich_args', '.run-form');
    await visit('run', `#/executions/${ran.slow}`, '[data-status="cancelled"]');
    await visit('history', '#/history', '[data-testid="history-table"]');
    await visit('audit', '#/audit', '[data-testid="audit-table"]');
    await visit('settings', '#/settings', '[data-testid="tokens-table"], .settings .notice');
    return shots;
  }

  it('takes screenshots of every page on a laptop and on a phone, light and dark', async () => {
    // A few more runs, so that the duration chart draws lines.
    for (const steps of [2, 5, 3]) {
      const res = await fetch(`${server.url}/api/v1/projects/shop/executions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ command: 'slow', argv: ['--steps', String(steps), '--delay', '0.05'] }),
      });
      const { id } = (await res.json()) as { id: string };
      await waitFor(`slow ${id} to end`, async () => (await api<{ status: string }>(`/api/v1/executions/${id}`)).status === 'succeeded', 30_000, 100);
    }
    const shots: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      shots.push(...(await screenshotsOfEveryPage(page, `desktop-${scheme}`)));
    }
    for (const scheme of ['light', 'dark'] as const) {
      const phone = await launchBrowser({ viewport: { width: 390, height: 844 }, colorScheme: scheme, isMobile: true });
      try {
        await phone.page.goto(server.url + '/');
        await phone.page.getByRole('button', { name: 'Sign in' }).waitFor();
        shots.push(await screenshot(phone.page, `login-phone-${scheme}`));
        await signIn(phone.page, server.url + '/');
        await phone.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
        shots.push(...(await screenshotsOfEveryPage(phone.page, `phone-${scheme}`)));
        expect(phone.problems.filter((p) => !p.startsWith('HTTP 401 GET /api/v1/session'))).toEqual([]);
      } finally {
        await phone.close();
      }
    }
    for (const f of shots) expect(fs.statSync(f).size, f).toBeGreaterThan(5_000);
  });

  it('lets a newcomer run migrate on the right project and watch it finish, by keyboard alone, within a minute', async () => {
    const newcomer = await launchBrowser();
    try {
      const p = newcomer.page;
      const tabTo = async (selector: string) => {
        for (let i = 0; i < 60; i++) {
          if (await p.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
          await p.keyboard.press('Tab');
        }
        throw new Error(`Tab never reached ${selector}`);
      };
      await p.goto(server.url + '/');
      await p.getByRole('button', { name: 'Sign in' }).waitFor();
      const started = Date.now();
      await p.keyboard.type(EMAIL); // the email field has the focus
      await p.keyboard.press('Tab');
      await p.keyboard.type(PASSWORD);
      await p.keyboard.press('Enter');
      await p.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
      await tabTo('[data-testid="run-in-shop"]');
      await p.keyboard.press('Enter');
      await p.getByTestId('command-search').waitFor();
      await p.keyboard.type('migrate'); // the search box has the focus
      await p.keyboard.press('Enter');
      await p.getByRole('heading', { name: 'migrate', level: 1 }).waitFor();
      await tabTo('[data-dest="app_label"] input');
      await p.keyboard.press('Enter'); // submits the form: Run
      await p.waitForURL(/#\/executions\//);
      await p.locator('[data-testid="status"] [data-status="succeeded"]').waitFor({ timeout: 30_000 });
      await expect.poll(() => terminalText(p)).toMatch(/Operations to perform|No migrations to apply/);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(p.url()).toMatch(/#\/executions\/[0-9a-f-]{36}$/);
      expect(newcomer.problems.filter((x) => !x.startsWith('HTTP 401 GET /api/v1/session'))).toEqual([]);
    } finally {
      await newcomer.close();
    }
  });

  it('creates and revokes an API token, a runner key, a project and a user in Settings', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${server.url}/#/settings`);
    await page.getByTestId('tokens-table').waitFor();
    const me = (bearer: string) => fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${bearer}` } }).then((r) => r.status);

    // A personal token, shown once, that works until it is revoked.
    await page.getByTestId('token-name').fill('laptop');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.locator('#tokens .secret-value').inputValue();
    expect(secret).toMatch(/^dct_/);
    expect(await me(secret)).toBe(200);
    const row = page.locator('[data-testid="tokens-table"] tr', { hasText: 'laptop' });
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.getByText('revoked').waitFor();
    expect(await me(secret)).toBe(401);

    // A runner key for shop, shown once.
    await page.locator('#keys input[name="key-name"]').fill('web-2');
    await page.getByRole('button', { name: 'Create key' }).click();
    expect(await page.locator('#keys .secret-value').inputValue()).toMatch(/^dc_/);
    await page.locator('[data-testid="keys-table"] tr', { hasText: 'web-2' }).waitFor();

    // A project, with its first runner key and the settings to paste.
    await page.getByTestId('project-name').fill('blog');
    await page.getByRole('button', { name: 'Create project' }).click();
    expect(await page.locator('#projects .secret-value').inputValue()).toMatch(/^dc_/);
    expect(await page.locator('#projects .snippet').textContent()).toContain(`DJANGOCOMMAND_SERVER_URL = "${server.url}"`);
    await page.locator('#projects li', { hasText: 'blog' }).waitFor();
    // The runner key shown above stays until the page is left, and so does the chosen project.
    expect(await page.locator('#keys .secret-value').inputValue()).toMatch(/^dc_/);
    expect(await page.locator('#keys select').inputValue()).toBe('shop');
    expect(await page.locator('#keys select option').allTextContents()).toEqual(['blog', 'shop']);
    await page.locator('#projects').scrollIntoViewIfNeeded();
    await screenshot(page, 'settings-key-shown-once-desktop-light');

    // A user, who can then sign in.
    await page.locator('#users input[name="email"]').fill('dev@example.com');
    await page.locator('#users input[name="password"]').fill('a long enough password');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.locator('[data-testid="users-table"] tr', { hasText: 'dev@example.com' }).waitFor();
    const login = await fetch(`${server.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'dev@example.com', password: 'a long enough password' }) });
    expect(login.status).toBe(200);
  });

  it('says when an output has holes (a v1 runner dropped a chunk), never showing it as whole', async () => {
    const created = await server.admin(['create-project', 'v1-legacy', '--json']);
    const v1 = new V1Client({ serverUrl: server.url, apiKey: JSON.parse(created.stdout).key });
    await v1.syncCommands([{ name: 'check', app_label: 'django.core', help_text: 'usage: manage.py check' }]);
    const res = await fetch(`${server.url}/api/v1/projects/v1-legacy/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'check' }),
    });
    const { id } = (await res.json()) as { id: string };
    await v1.start(id);
    await v1.output(id, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: Date.now() / 1000, content: 'first part\n' }] });
    await v1.output(id, { chunk_number: 3, is_stderr: false, segments: [{ timestamp: Date.now() / 1000, content: 'third part\n' }] });
    await v1.complete(id, { exit_code: 0, status: 'success' });
    await page.goto(`${server.url}/#/executions/${id}`);
    await expect.poll(() => terminalText(page), { timeout: 20_000 }).toContain('third part');
    await expect.poll(() => page.getByTestId('output-incomplete').textContent()).toMatch(/The output is incomplete: 1 chunk\(s\) never reached the server/);
  });

  it('signs out, and the session is gone', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${server.url}/#/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await screenshot(page, 'login-desktop-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'login-desktop-dark');
    const status = await page.evaluate(async () => (await fetch('/api/v1/session', { credentials: 'same-origin' })).status);
    expect(status).toBe(401);
    // Asking whether a session exists (before signing in) and the wrong password are the only refusals.
    expect(browser.problems.filter((p) => !/^HTTP 401 (GET|POST) \/api\/v1\/session$/.test(p))).toEqual([]);
  });
});
