/**
 * Secrets stay on the host: a command of the example project prints the Django SECRET_KEY and
 * the database password (whole, split across flushes with a pause, one character at a time, on
 * stdout and stderr) and a token matching DJANGOCOMMAND_REDACT_PATTERNS. Through a real server
 * and our runner (protocol v2), none of them reaches the server: not the live stream (`run`),
 * not `logs`, not the database file, not the server's or the runner's logs. With the Python
 * runner (protocol v1, here its stand-in) the output arrives as printed, and the dashboard says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { openDatabase } from '../../src/store/openStore.js';
import { readDjangoSettings } from '../../src/runner/bootstrap.js';
import { EXAMPLE_DIR, PYTHON } from '../support/serverProcess.js';
import { V1Runner } from '../support/v1Runner.js';
import { launchBrowser, signedIn, signIn } from '../support/browser.js';

const SECRET_KEY = `sk-${randomBytes(16).toString('hex')}`;
const DB_PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
const TOKEN = `tok_${randomBytes(5).toString('hex')}`;
const SECRETS = [SECRET_KEY, DB_PASSWORD, TOKEN];

function expectScrubbed(text: string): void {
  for (const s of SECRETS) expect(text.includes(s), `a secret (${s.slice(0, 3)}…) is in the text`).toBe(false);
  // Halves of the split key must not be there either.
  expect(text.includes(SECRET_KEY.slice(0, SECRET_KEY.length / 2))).toBe(false);
}

describe('the secret settings bootstrap.py finds', () => {
  it('are strings of 8+ characters under KEY, TOKEN, SECRET or PASSWORD names, nested too; not the hashers or validators', async () => {
    const report = await readDjangoSettings({
      python: PYTHON,
      projectDir: EXAMPLE_DIR,
      env: { ...process.env, DJANGO_SETTINGS_MODULE: 'exampleproject.settings', DJANGO_SECRET_KEY: SECRET_KEY, DJANGOCOMMAND_EXAMPLE_DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1:1/app`, DJANGOCOMMAND_API_KEY: 'dc_short' },
    });
    const byName = Object.fromEntries((report.secrets ?? []).map((s) => [s.name, s.value]));
    expect(byName).toMatchObject({ SECRET_KEY, 'DATABASES.default.PASSWORD': DB_PASSWORD, DJANGOCOMMAND_API_KEY: 'dc_short' });
    expect(Object.keys(byName).filter((n) => /HASHERS|VALIDATORS|KEY_PREFIX/.test(n))).toEqual([]);
    expect(report.redact_patterns).toBeNull();
  });
});

describe('secrets scrubbed on the host (TypeScript runner, protocol v2; the Python runner, v1, warned about)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let cli: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const { key, token } = await setUpProject(server);
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    const example = exampleProject();
    runner = await startRunner(
      runnerEnv(server.url, key, example.env, {
        DJANGO_SECRET_KEY: SECRET_KEY,
        // Only read by the command: nothing connects to it.
        DJANGOCOMMAND_EXAMPLE_DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1:1/app`,
        DJANGOCOMMAND_ALLOWED_COMMANDS: 'print_secrets',
        DJANGOCOMMAND_REDACT_PATTERNS: 'tok_[0-9a-f]{10}',
        // Printed by the command, not passed as an argument (arguments are stored as given).
        EXAMPLE_PRINT_EXTRA: TOKEN,
      }),
    );
  });

  afterAll(async () => {
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('never lets a printed secret reach the server', async () => {
    const run = await runCli(['run', '--project', 'shop', 'print_secrets'], cli);
    expect(run.stderr + run.stdout).toContain('done');
    expect(run.code).toBe(0);
    const live = run.stdout + run.stderr;
    expectScrubbed(live);
    expect(live).toContain('SECRET_KEY=[redacted:SECRET_KEY]');
    expect(live).toContain('split key: [redacted:SECRET_KEY] (end)');
    expect(live).toContain('db password: [redacted:DATABASES.default.PASSWORD]');
    expect(live).toContain('one by one: [redacted:DATABASES.default.PASSWORD]');
    expect(live).toContain('extra: [redacted:pattern 1]');

    const list = JSON.parse((await runCli(['executions', '--project', 'shop', '--json'], cli)).stdout);
    const id: string = (list.items ?? list)[0].id;
    const logs = await runCli(['logs', id], cli);
    expect(logs.code).toBe(0);
    expectScrubbed(logs.stdout + logs.stderr);
    expect(logs.stdout + logs.stderr).toContain('split key: [redacted:SECRET_KEY] (end)');

    // The stored output, and every byte of the database files.
    const raw = openDatabase(db).db;
    try {
      const rows = await raw.selectFrom('output_chunks').select(['data']).where('execution_id', '=', id).execute();
      const stored = rows.map((r) => r.data).join('');
      expect(stored).toContain('[redacted:DATABASES.default.PASSWORD]');
      expectScrubbed(stored);
    } finally {
      await raw.destroy();
    }
    for (const f of fs.readdirSync(db.dataDir).filter((f) => f.startsWith('djangocommand.sqlite3'))) {
      const bytes = fs.readFileSync(path.join(db.dataDir, f));
      for (const s of SECRETS) expect(bytes.includes(Buffer.from(s)), `${f} holds a secret`).toBe(false);
    }
    expectScrubbed(server.logs());
    expectScrubbed(runner.logs());
    expect(runner.logs()).toMatch(/scrubbed of [1-9]\d* secret setting value\(s\) and 1 DJANGOCOMMAND_REDACT_PATTERNS pattern/);
  });

  it('says on the dashboard that the Python runner (protocol v1) does not scrub', async () => {
    const made = JSON.parse((await server.admin(['create-project', 'legacy', '--json'])).stdout);
    const example = exampleProject();
    const v1 = new V1Runner({
      serverUrl: server.url,
      apiKey: made.key,
      projectDir: example.dir,
      env: { ...example.env, DJANGO_SECRET_KEY: SECRET_KEY },
      allowedCommands: ['print_secrets'],
      heartbeatIntervalMs: 300,
      pollIntervalMs: 200,
      flushIntervalMs: 200,
    });
    await v1.start();
    const browser = await launchBrowser();
    try {
      const run = await runCli(['run', '--project', 'legacy', 'print_secrets', '--', '--pause', '0'], cli, { timeoutMs: 20_000 });
      expect(run.code).toBe(0);
      // What v1 does (and why the dashboard warns): the key arrives as printed.
      expect(run.stdout).toContain(`SECRET_KEY=${SECRET_KEY}`);
      const list = JSON.parse((await runCli(['executions', '--project', 'legacy', '--json'], cli)).stdout);
      const id: string = (list.items ?? list)[0].id;

      const { page } = browser;
      await signIn(page, server.url + '/', 'admin@localhost', 'correct horse battery staple');
      await signedIn(page);
      await page.goto(`${server.url}/#/executions/${id}`);
      await page.getByTestId('output-unscrubbed').waitFor({ timeout: 10_000 });
      expect(await page.getByTestId('output-unscrubbed').textContent()).toContain('does not scrub secrets');
      await page.goto(`${server.url}/#/`);
      await page.getByTestId('runner-unscrubbed').waitFor({ timeout: 10_000 });
      expect(await page.getByTestId('runner-unscrubbed').textContent()).toContain('protocol v1');
      // A v2 execution carries no such warning.
      expect((await runCli(['run', '--project', 'shop', 'print_secrets', '--', '--pause', '0'], cli)).code).toBe(0);
      const v2 = JSON.parse((await runCli(['executions', '--project', 'shop', '--json'], cli)).stdout);
      await page.goto(`${server.url}/#/executions/${(v2.items ?? v2)[0].id}`);
      await page.getByTestId('status').waitFor();
      await page.waitForTimeout(500);
      expect(await page.getByTestId('output-unscrubbed').count()).toBe(0);
    } finally {
      await browser.close();
      await v1.stop();
    }
  });
});
