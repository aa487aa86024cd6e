/**
 * Schedules with real server processes, in real time. An every-minute schedule fires on time
 * (SQLite); two server processes on one PostgreSQL database race for 300 occurrences due in the
 * same second, and one of them is killed with SIGKILL in the middle: every occurrence still has
 * exactly one execution. Plus the CLI: create, list, show, pause, resume, run-now, preview.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { V1Client } from '../support/v1Client.js';
import type { OccurrenceView, ScheduleView } from '../../src/shared/schedulesApi.js';

const SCHEDULES = 300;

async function api<T>(server: ServerHandle, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Waits, if need be, so that at least `ms` remain before the next minute starts; returns that minute. */
async function roomBeforeNextMinute(ms: number): Promise<number> {
  const left = () => 60_000 - (Date.now() % 60_000);
  if (left() < ms) await new Promise((r) => setTimeout(r, left() + 50));
  return Date.now() - (Date.now() % 60_000) + 60_000;
}

describe('schedules with real server processes', () => {
  let pgDb: FreshDatabase;
  let liteDb: FreshDatabase;
  let a: ServerHandle;
  let b: ServerHandle;
  let lite: ServerHandle;
  let pgToken: string;
  let liteToken: string;

  beforeAll(async () => {
    [pgDb, liteDb] = await Promise.all([freshDatabase('postgres'), freshDatabase('sqlite')]);
    [a, b, lite] = await Promise.all([startServer(pgDb), startServer(pgDb), startServer(liteDb)]);
    const commands = Array.from({ length: SCHEDULES }, (_, i) => ({ name: `job${i}`, app_label: 'demo', help_text: '' }));
    for (const [server, set] of [[a, (t: string) => (pgToken = t)], [lite, (t: string) => (liteToken = t)]] as const) {
      const creds = await setUpProject(server);
      set(creds.token);
      await new V1Client({ serverUrl: server.url, apiKey: creds.key }).syncCommands([...commands, { name: 'clearsessions', app_label: 'sessions', help_text: '' }]);
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), lite?.stop()]);
    await Promise.all([pgDb?.drop(), liteDb?.drop()]);
  });

  it('fires every-minute schedules on time, and exactly once per occurrence across two PostgreSQL servers when one is killed with SIGKILL mid-way', async () => {
    const due = await roomBeforeNextMinute(15_000);
    const onTime = await api<ScheduleView>(lite, liteToken, 'POST', '/api/v1/schedules', { command: 'clearsessions', cron: '* * * * *', name: 'every minute' });
    expect(onTime.next_run_at).toBe(new Date(due).toISOString());
    const created: ScheduleView[] = [];
    for (let i = 0; i < SCHEDULES; i += 20) {
      created.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => api<ScheduleView>(i % 40 ? a : b, pgToken, 'POST', '/api/v1/schedules', { command: `job${i + j}`, cron: '* * * * *' })))));
    }
    expect(created.every((s) => s.next_run_at === new Date(due).toISOString())).toBe(true);
    expect(Date.now()).toBeLessThan(due);

    // Both servers fire; one dies with SIGKILL while the burst is under way.
    await new Promise((r) => setTimeout(r, due - Date.now() + 40));
    a.process.kill('SIGKILL');

    const client = new pg.Client({ connectionString: pgDb.databaseUrl });
    await client.connect();
    try {
      // The survivor takes over what the dead one left pending (after the 15 s lease).
      const rows = await waitFor(
        'every occurrence to be settled',
        async () => {
          const { rows } = await client.query<{ schedule_id: string; outcome: string; execution_id: string | null; claimed_by: string | null; claimed_at: string }>(
            'SELECT schedule_id, outcome, execution_id, claimed_by, claimed_at FROM schedule_occurrences WHERE due_at = $1',
            [due],
          );
          return rows.length === SCHEDULES && rows.every((r) => r.outcome !== 'pending') ? rows : undefined;
        },
        40_000,
        250,
      );
      expect(rows.map((r) => r.outcome)).toEqual(Array(SCHEDULES).fill('started'));
      const { rows: executions } = await client.query<{ schedule_id: string; n: string }>('SELECT schedule_id, COUNT(*) AS n FROM executions WHERE schedule_id IS NOT NULL GROUP BY schedule_id');
      expect(executions).toHaveLength(SCHEDULES);
      expect(executions.every((e) => Number(e.n) === 1)).toBe(true);
      const linked = new Set(rows.map((r) => r.execution_id));
      expect(linked.size).toBe(SCHEDULES);
      // The kill landed mid-way: the dead server held occurrences (claimed, not yet linked) that
      // the survivor took over after the lease; each still has exactly one execution (above).
      const adopted = rows.filter((r) => Number(r.claimed_at) >= due + 15_000).length;
      expect(adopted).toBeGreaterThanOrEqual(1);
    } finally {
      await client.end();
    }

    const [o] = (await api<{ items: OccurrenceView[] }>(lite, liteToken, 'GET', `/api/v1/schedules/${onTime.id}/occurrences`)).items;
    expect(o).toMatchObject({ due_at: new Date(due).toISOString(), outcome: 'started' });
    expect(o.late_ms!).toBeGreaterThanOrEqual(0);
    expect(o.late_ms!).toBeLessThan(1000);
  }, 120_000);

  it('drives schedules from the CLI: create, list, show, edit, pause, resume, run-now, delete, preview', async () => {
    const env = { DJANGOCOMMAND_URL: lite.url, DJANGOCOMMAND_TOKEN: liteToken };
    const bad = await runCli(['schedule', 'create', '--cron', '0 25 * * *', 'clearsessions'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('The hour field "25" is invalid');
    const made = await runCli(['schedule', 'create', '--cron', '30 2 * * *', '--timezone', 'Europe/Amsterdam', '--name', 'nightly', '--overlap', 'queue', '--json', 'job1', '--verbosity', '2'], env);
    expect(made.code, made.stderr).toBe(0);
    const s = JSON.parse(made.stdout) as ScheduleView;
    expect(s).toMatchObject({ name: 'nightly', command: 'job1', argv: ['--verbosity', '2'], overlap: 'queue', timezone: 'Europe/Amsterdam' });
    expect(s.next_runs).toHaveLength(5);
    const list = await runCli(['schedule', 'list'], env);
    expect(list.stdout).toContain(`${s.id}`);
    expect(list.stdout).toContain('"nightly" job1 --verbosity 2 in shop, cron "30 2 * * *" Europe/Amsterdam');
    expect((await runCli(['schedule', 'edit', s.id, '--cron', '45 2 * * *', '--json'], env)).stdout).toContain('"cron": "45 2 * * *"');
    expect((await runCli(['schedule', 'pause', s.id], env)).stdout).toContain('paused: "nightly"');
    expect((await runCli(['schedule', 'resume', s.id], env)).stdout).toContain('resumed: "nightly"');
    const run = await runCli(['schedule', 'run-now', s.id], env);
    expect(run.stdout).toMatch(/^started execution [0-9a-f-]{36}/);
    const show = await runCli(['schedule', 'show', s.id], env);
    expect(show.stdout).toContain('manual queued');
    expect((await runCli(['schedule', 'delete', s.id], env)).code).toBe(0);
    expect((await runCli(['schedule', 'show', s.id], env)).stderr).toContain('No schedule');

    const preview = await runCli(['schedule', 'preview', '--cron', '30 2 * * *', '--timezone', 'Europe/Amsterdam', '--from', '2026-03-28T00:00:00Z', '--count', '2']);
    expect(preview.stdout).toBe(
      'next 2 runs of "30 2 * * *" in Europe/Amsterdam (and UTC):\n' +
        '  Sat 2026-03-28 02:30 +01:00   = 2026-03-28 01:30 UTC\n' +
        '  Sun 2026-03-29 03:00 +02:00   = 2026-03-29 01:00 UTC   ⚠ clocks go forward: Clocks go forward from 02:00 to 03:00 on this day (Europe/Amsterdam). 02:30 does not exist on this day: the run happens once, at 03:00 (+02:00).\n',
    );
    const json = JSON.parse((await runCli(['schedule', 'preview', '--cron', '30 2 * * *', '--timezone', 'Europe/Amsterdam', '--from', '2026-10-24T12:00:00Z', '--count', '2', '--json'])).stdout);
    expect(json.runs.map((r: { at: string }) => r.at)).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  }, 60_000);
});
