/**
 * Read-only database mode in the dashboard, in a real browser against a real server and our
 * runner: the run form's checkbox makes the run read-only (the write fails, the run view and the
 * history show the "read-only" badge, the database is unchanged), unticked the same command
 * writes, and a command read-only by default shows the box ticked and fixed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { launchBrowser, screenshot, type BrowserHandle, signIn } from '../support/browser.js';

const EMAIL = 'admin@localhost';
const PASSWORD = 'correct horse battery staple';
const terminalText = (page: Page) => page.evaluate(() => (window as unknown as { dcTerminal?: () => string }).dcTerminal?.() ?? '');

describe('read-only mode in the dashboard', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let browser: BrowserHandle;
  let example: ExampleProject;
  let page: Page;
  const notes = () => Number(example.manage(['write_notes', 'count']).stdout.toString().trim());

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const { key } = await setUpProject(server);
    example = exampleProject();
    runner = await startRunner(runnerEnv(server.url, key, example.env, { EXAMPLE_READONLY_COMMANDS: 'touch_note' }));
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, server.url + '/', EMAIL, PASSWORD);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    browser.problems.length = 0; // the 401 of the page asking whether someone is signed in, before sign-in
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  const runWriteNotes = async (readOnly: boolean) => {
    await page.goto(`${server.url}/#/projects/shop/commands/write_notes`);
    await page.getByRole('heading', { name: 'write_notes', level: 1 }).waitFor();
    await page.locator('label', { hasText: 'Free text' }).click();
    await page.getByTestId('free-args').fill('create');
    const box = page.getByTestId('read-only-checkbox');
    expect(await box.isChecked()).toBe(false);
    expect(await box.isDisabled()).toBe(false);
    if (readOnly) await page.getByLabel('Read-only database mode').check();
    await page.getByTestId('run').click();
    await page.waitForURL(/#\/executions\/[0-9a-f-]{36}$/);
  };

  it('the checkbox runs it read-only: the write fails naming read-only mode, badges say so, nothing is written', async () => {
    const before = notes();
    await runWriteNotes(true);
    await page.locator('[data-testid="status"] [data-status="failed"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-testid="status"] [data-testid="read-only"]').textContent()).toBe('read-only');
    await expect.poll(() => terminalText(page)).toContain('read-only mode: this run may not write to the database');
    expect(notes()).toBe(before);
    await screenshot(page, 'read-only-run');
    // "Run again…" keeps the mode.
    await page.getByRole('link', { name: 'Run again…' }).click();
    await page.getByRole('heading', { name: 'write_notes', level: 1 }).waitFor();
    expect(await page.getByTestId('read-only-checkbox').isChecked()).toBe(true);
    expect(await page.getByTestId('free-args').inputValue()).toBe('create');
    await page.goto(`${server.url}/#/history`);
    await page.locator('[data-testid="read-only"]').first().waitFor();
  });

  it('unticked, the same command writes, without a badge', async () => {
    const before = notes();
    await runWriteNotes(false);
    await page.locator('[data-testid="status"] [data-status="succeeded"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-testid="status"] [data-testid="read-only"]').count()).toBe(0);
    expect(notes()).toBe(before + 1);
  });

  it('a command read-only by default (DJANGOCOMMAND_READONLY_COMMANDS) shows the box ticked and fixed', async () => {
    await page.goto(`${server.url}/#/projects/shop/commands/touch_note`);
    await page.getByRole('heading', { name: 'touch_note', level: 1 }).waitFor();
    const box = page.getByTestId('read-only-checkbox');
    expect(await box.isChecked()).toBe(true);
    expect(await box.isDisabled()).toBe(true);
    // The run form's box (the command's settings below have checkboxes of their own).
    expect(await page.locator('.field-checkbox', { has: box }).textContent()).toContain('listed in DJANGOCOMMAND_READONLY_COMMANDS');
    expect(browser.problems).toEqual([]);
  });
});
