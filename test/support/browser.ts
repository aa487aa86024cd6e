/**
 * A real browser for end-to-end tests: Debian's Chromium, headless, driven by playwright-core
 * (no browser download: `npx playwright install` is never needed). Each launch gets a fresh
 * profile folder, so cookies and storage never leak between tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { tempDir } from './databases.js';
import { REPO } from './serverProcess.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO, 'test-results', 'dashboard');

export interface BrowserHandle {
  context: BrowserContext;
  page: Page;
  /** Console errors, page errors and failed requests ("HTTP 401 GET /api/v1/session"). */
  problems: string[];
  close(): Promise<void>;
}

export interface LaunchOptions {
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
  isMobile?: boolean;
}

export async function launchBrowser(opts: LaunchOptions = {}): Promise<BrowserHandle> {
  const profile = tempDir('dc-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? 'light',
    isMobile: opts.isMobile,
    hasTouch: opts.isMobile,
    deviceScaleFactor: 1,
    acceptDownloads: true,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('console', (m) => {
    // Failed requests are reported below, with their method and URL.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return {
    context,
    page,
    problems,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as test-results/dashboard/NAME.png and returns its path. */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage, animations: 'disabled' });
  return file;
}

/** Opens the dashboard at `url` and signs in with the form, as a person does. */
export async function signIn(page: Page, url: string, email: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Waits until the dashboard shows a signed-in page. Waiting on the URL is not enough: the login
 * page's own `#/login` matches `#/`, and a navigation made before the sign-in answered is
 * replaced by the page the sign-in goes to.
 */
export async function signedIn(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}
