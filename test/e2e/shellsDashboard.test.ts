/**
 * Audited shells in the dashboard, in a real browser against a real server and our runner next
 * to the example project: turn shells on, open one in the xterm.js terminal (read-only: a write
 * fails; tab completion works), make it writable with a reason and a confirmation (the write
 * succeeds), end it, find it in the list as "became writable", follow the audit log's link to
 * the replay and play it fast with asciinema-player.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { launchBrowser, screenshot, type BrowserHandle, signIn } from '../support/browser.js';

const EMAIL = 'admin@localhost';
const PASSWORD = 'correct horse battery staple';

const terminalText = (page: Page) =>
  page.evaluate(() => {
    const t = (window as unknown as { dcShellTerminal?: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } }).dcShellTerminal;
    if (!t) return '';
    const b = t.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  });

describe('audited shells in the dashboard', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let browser: BrowserHandle;
  let example: ExampleProject;
  let page: Page;
  const notes = () => Number(example.manage(['shell', '-c', 'from demo.models import Note; print(Note.objects.count())']).stdout.toString().trim());
  const seen = (what: RegExp, ms = 20_000) =>
    waitFor(`${what} in the terminal`, async () => what.test(await terminalText(page)), ms, 100).catch(async (err: Error) => {
      throw new Error(`${err.message}; it shows:\n${await terminalText(page)}`);
    });
  const type = async (text: string) => {
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  };

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const { key } = await setUpProject(server);
    example = exampleProject();
    runner = await startRunner(runnerEnv(server.url, key, example.env), ['--no-warm']);
    browser = await launchBrowser();
    page = browser.page;
    page.on('dialog', (d) => void d.accept());
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

  it('opens a read-only shell, makes it writable with a reason, ends it, and replays it from the audit log', async () => {
    const before = notes();
    await page.getByRole('link', { name: 'Shells' }).click();
    await page.getByRole('heading', { name: 'Shells', level: 1 }).waitFor();
    expect(await page.getByTestId('shells-enabled').textContent()).toBe('off');
    await page.getByTestId('shells-on').click();
    await waitFor('shells on', async () => (await page.getByTestId('shells-enabled').textContent()) === 'on');

    await page.getByTestId('open-shell').click();
    await page.getByTestId('shell-terminal').waitFor();
    await seen(/READ-ONLY[\s\S]*>>> $/m);
    await page.getByTestId('shell-terminal').click();
    await type('from demo.models import Note');
    // Tab completion goes to the shell (readline's rlcompleter), not to the page.
    await page.keyboard.type('Note.objects.cou');
    await page.keyboard.press('Tab');
    await seen(/>>> Note\.objects\.count\($/m);
    await type(')');
    await seen(new RegExp(`^${before}$`, 'm'));
    await type("Note.objects.create(text='from the browser')");
    await seen(/ReadOnlyError: read-only mode/);
    expect(notes()).toBe(before);
    expect(await page.getByTestId('shell-mode').textContent()).toBe('read-only');

    await page.getByLabel('Reason to make this shell writable').fill('fix a note from the dashboard');
    await page.getByTestId('make-writable').click();
    await waitFor('the WRITABLE badge', async () => (await page.getByTestId('shell-mode').textContent()) === 'WRITABLE');
    await page.getByTestId('shell-terminal').click();
    await type("Note.objects.create(text='from the browser'); print('made', Note.objects.count())");
    await seen(new RegExp(`made ${before + 1}`));
    expect(notes()).toBe(before + 1);
    await screenshot(page, 'shell-writable');

    await page.getByTestId('end-shell').click();
    await page.getByText('The shell ended').waitFor();

    await page.goto(`${server.url}/#/audit`);
    const link = page.getByTestId('audit-shell-link').first();
    await link.waitFor();
    await link.click();
    await page.getByRole('heading', { name: 'Shell replay', level: 1 }).waitFor();
    await page.getByTestId('replay-speed').selectOption('16');
    await page.locator('.ap-player').waitFor();
    await page.evaluate(() => (window as unknown as { dcReplayPlayer?: { play(): Promise<unknown> } }).dcReplayPlayer?.play());
    await waitFor('the replay to show the writable create', async () => /made \d+/.test((await page.getByTestId('shell-replay').textContent()) ?? ''), 30_000, 200);
    await screenshot(page, 'shell-replay');

    await page.goto(`${server.url}/#/shells?project=shop`);
    await page.getByTestId('shell-sessions').waitFor();
    expect(await page.getByTestId('became-writable').count()).toBe(1);
    expect(browser.problems).toEqual([]);
  }, 120_000);
});
