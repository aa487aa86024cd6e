/**
 * Schedules as code with real processes: our runner (protocol v2) next to the example Django
 * project with DJANGOCOMMAND_SCHEDULES (exampleproject/settings_schedules.py), a real server on
 * SQLite. The schedules appear with source "code", read-only; the entry naming a command the
 * project does not have is skipped, audited and logged by the runner; a key typo in the setting
 * stops the runner's start-up with one line naming the setting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerCli, runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import type { ScheduleView } from '../../src/shared/schedulesApi.js';
import { launchBrowser, screenshot, signIn } from '../support/browser.js';

const SETTINGS = ['--settings', 'exampleproject.settings_schedules', '--no-warm'];

describe('schedules as code (TypeScript runner, SQLite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let runner: RunnerHandle;
  let key: string;
  let token: string;

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    return { status: res.status, body: JSON.parse(await res.text()) };
  };
  const schedules = async () => (await api('/api/v1/schedules?project=shop')).body.items as ScheduleView[];

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    ({ key, token } = await setUpProject(server));
    example = exampleProject();
    runner = await startRunner(runnerEnv(server.url, key, example.env), SETTINGS);
  });
  afterAll(async () => {
    if (process.env.DEBUG_RUNNER) console.log(runner?.logs());
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('reports DJANGOCOMMAND_SCHEDULES: the valid entries appear with source "code", from code; the invalid one is skipped and said', async () => {
    const items = await waitFor('the code schedules', async () => {
      const got = await schedules();
      return got.length === 2 ? got : undefined;
    });
    const byName = Object.fromEntries(items.map((s) => [s.name, s]));
    expect(byName['nightly sessions']).toMatchObject({ source: 'code', from_code: true, command: 'clearsessions', cron: '30 2 * * *', timezone: 'Europe/Amsterdam', paused: false });
    expect(byName.check).toMatchObject({ source: 'code', from_code: true, command: 'check', args: '--deploy --fail-level ERROR', cron: '@hourly', timezone: 'UTC' });
    expect(byName.check.next_run_at).not.toBeNull();

    await waitFor('the runner to log the skipped entry', async () => /server says: DJANGOCOMMAND_SCHEDULES entry "ghost" skipped: .*\[DC_UNKNOWN_COMMAND\]/.test(runner.logs()));
    expect(runner.logs()).toMatch(/DJANGOCOMMAND_SCHEDULES: 3 schedules \(nightly sessions, check, ghost\)/);
    const refused = (await api('/api/v1/audit?action=schedule.code_refused')).body.items as Array<{ details: Record<string, unknown> }>;
    expect(refused.map((a) => [a.details.name, a.details.code])).toEqual([['ghost', 'DC_UNKNOWN_COMMAND']]);

    const edit = await api(`/api/v1/schedules/${byName.check.id}`, { method: 'PATCH', body: JSON.stringify({ cron: '@daily' }) });
    expect([edit.status, edit.body.code]).toEqual([409, 'DC_SCHEDULE_FROM_CODE']);
    const del = await api(`/api/v1/schedules/${byName.check.id}`, { method: 'DELETE' });
    expect([del.status, del.body.code]).toEqual([409, 'DC_SCHEDULE_FROM_CODE']);

    // A restart of the runner with the same settings keeps the same schedules (nothing created twice).
    await runner.stop();
    runner = await startRunner(runnerEnv(server.url, key, example.env), SETTINGS, runner.stateDir);
    await waitFor('the catalogue again', async () => /entry "ghost" skipped/.test(runner.logs()));
    expect((await schedules()).map((s) => s.id).sort()).toEqual(items.map((s) => s.id).sort());
  });

  it('shows code schedules in the dashboard as "from code", without Edit or Delete; pause still works', async () => {
    const items = await waitFor('the code schedules', async () => {
      const got = await schedules();
      return got.length === 2 ? got : undefined;
    });
    const nightly = items.find((s) => s.name === 'nightly sessions')!;
    const browser = await launchBrowser();
    try {
      const page = browser.page;
      await signIn(page, server.url, 'admin@localhost', 'correct horse battery staple');
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
      const row = page.locator('tr', { hasText: 'nightly sessions' });
      await row.getByTestId('from-code').waitFor();
      await row.getByRole('link', { name: 'nightly sessions' }).click();
      await page.getByRole('heading', { name: 'nightly sessions' }).waitFor();
      expect(await page.getByTestId('from-code').count()).toBe(1);
      expect(await page.getByText('from code: DJANGOCOMMAND_SCHEDULES in the Django settings').count()).toBe(1);
      expect(await page.getByRole('link', { name: 'Edit' }).count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Delete' }).count()).toBe(0);
      await screenshot(page, 'schedule-from-code');
      await page.getByRole('button', { name: 'Pause' }).click();
      await page.getByRole('button', { name: 'Resume' }).waitFor();
      expect((await api(`/api/v1/schedules/${nightly.id}`)).body.paused).toBe(true);
      await page.getByRole('button', { name: 'Resume' }).click();
      await page.getByRole('button', { name: 'Pause' }).waitFor();
    } finally {
      await browser.close();
    }
  });

  it('refuses a DJANGOCOMMAND_SCHEDULES entry with an unknown key at start-up, with one line naming the setting', async () => {
    const dir = tempDir('dc-runner-schedules-');
    const res = await runnerCli(['start', ...SETTINGS], { ...runnerEnv(server.url, key, example.env), EXAMPLE_SCHEDULES: 'unknown_key' }, dir);
    expect(res.code).toBe(2);
    // In the foreground the runner has logged its start line first; the refusal is the one line after it.
    const lines = res.stderr.trim().split('\n');
    expect(lines.filter((l) => l.includes('DJANGOCOMMAND_SCHEDULES'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/DJANGOCOMMAND_SCHEDULES\[0\] has unknown key 'crn' \(known: name, command, args, cron, timezone\)/);
    expect(res.stderr).not.toContain('Traceback');
  });
});
