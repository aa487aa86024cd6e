/**
 * The schedules REST API in-process, on SQLite and PostgreSQL: bad input gets a specific 4xx
 * and changes nothing; every change is audited with what changed; the preview marks the
 * daylight-saving days and says what happens to the runs; the timeline spans every project.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from '../support/databases.js';
import { testApp, type TestApp } from '../support/inProcess.js';
import type { PreviewView, ScheduleView, TimelineView } from '../../src/shared/schedulesApi.js';
import { reportCommands } from './support.js';

describe.each(DB_KINDS)('schedules API (%s)', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp(kind);
    await reportCommands(t);
  });
  afterEach(async () => t.close());

  const create = (body: Record<string, unknown>, token?: string) => t.api('POST', '/api/v1/schedules', { project: 'shop', command: 'clearsessions', cron: '0 3 * * *', ...body }, token);
  const nothingStored = async () => {
    expect((await t.api('GET', '/api/v1/schedules')).json().items).toEqual([]);
    expect((await t.api('GET', '/api/v1/audit?action=schedule.create')).json().items).toEqual([]);
  };

  const refusals: Array<[Record<string, unknown>, number, string, string, Record<string, unknown>]> = [
    [{ cron: '61 * * * *' }, 400, 'DC_BAD_CRON', 'The minute field "61" is invalid', { field: 'cron', cron_field: 'minute' }],
    [{ cron: '0 3 * * 9' }, 400, 'DC_BAD_CRON', 'day of week field "9"', { cron_field: 'day of week' }],
    [{ cron: '0 3 * *' }, 400, 'DC_BAD_CRON', 'has 4', { field: 'cron' }],
    [{ cron: '@reboot' }, 400, 'DC_BAD_CRON', 'not a cron nickname', { field: 'cron' }],
    [{ cron: '0 0 31 2 *' }, 400, 'DC_BAD_CRON', 'never fires', { field: 'cron' }],
    [{ timezone: 'Europe/Amsterdan' }, 400, 'DC_UNKNOWN_TIMEZONE', 'Did you mean "Europe/Amsterdam"', { field: 'timezone' }],
    [{ command: 'clearsesions' }, 404, 'DC_UNKNOWN_COMMAND', 'Did you mean "clearsessions"', {}],
    [{ argv: ['--days', 'many'] }, 400, 'DC_BAD_ARGS', "invalid int value: 'many'", {}],
    [{ command: 'flush' }, 403, 'DC_COMMAND_NOT_ALLOWED', 'DJANGOCOMMAND_ALLOWED_COMMANDS', {}],
    [{ overlap: 'sometimes' }, 400, 'DC_VALIDATION', 'overlap', {}],
    [{ health_every: 0 }, 400, 'DC_VALIDATION', 'health_every', {}],
  ];
  it('refuses a bad cron field, zone, command, arguments, policy or option with a specific error, and stores nothing', async () => {
    for (const [body, status, code, words, details] of refusals) {
      const res = await create(body);
      expect(res.statusCode, `${JSON.stringify(body)}: ${res.body}`).toBe(status);
      expect(res.json().code).toBe(code);
      expect(res.json().error).toContain(words);
      expect(res.json().details ?? {}).toMatchObject(details);
    }
    await nothingStored();
  });

  it('lets only admins change schedules; everyone signed in may read them', async () => {
    expect((await create({}, t.userToken)).statusCode).toBe(403);
    await nothingStored();
    const s: ScheduleView = (await create({})).json();
    expect((await t.api('GET', `/api/v1/schedules/${s.id}`, undefined, t.userToken)).statusCode).toBe(200);
    for (const [method, path] of [['PATCH', ''], ['DELETE', ''], ['POST', '/pause'], ['POST', '/resume']]) {
      expect((await t.api(method, `/api/v1/schedules/${s.id}${path}`, method === 'PATCH' ? { cron: '0 4 * * *' } : undefined, t.userToken)).statusCode).toBe(403);
    }
    expect((await t.api('GET', `/api/v1/schedules/${s.id}`)).json().cron).toBe('0 3 * * *');
  });

  it('creates with next runs, and audits create, edit (with the change), pause, resume and delete', async () => {
    const res = await create({ name: 'nightly', argv: ['--days', '3'], timezone: 'Europe/Amsterdam' });
    expect(res.statusCode, res.body).toBe(201);
    const s: ScheduleView = res.json();
    expect(s).toMatchObject({ name: 'nightly', args: '--days 3', overlap: 'skip', misfire: 'run_once', start_timeout: 600, paused: false, next_run_at: '2026-11-23T02:00:00.000Z' });
    expect(s.next_runs!.map((r) => r.local)).toEqual(['2026-11-23 03:00', '2026-11-24 03:00', '2026-11-25 03:00', '2026-11-26 03:00', '2026-11-27 03:00']);
    const bad = await t.api('PATCH', `/api/v1/schedules/${s.id}`, { cron: '0 3 * * * *' });
    expect(bad.statusCode).toBe(400);
    expect((await t.api('GET', `/api/v1/schedules/${s.id}`)).json().cron).toBe('0 3 * * *');
    const edited = await t.api('PATCH', `/api/v1/schedules/${s.id}`, { cron: '@hourly', overlap: 'queue' });
    expect(edited.json()).toMatchObject({ cron: '@hourly', overlap: 'queue', next_run_at: '2026-11-22T13:00:00.000Z' });
    await t.api('POST', `/api/v1/schedules/${s.id}/pause`);
    await t.api('POST', `/api/v1/schedules/${s.id}/resume`);
    expect((await t.api('DELETE', `/api/v1/schedules/${s.id}`)).statusCode).toBe(200);
    expect((await t.api('GET', `/api/v1/schedules/${s.id}`)).statusCode).toBe(404);
    const audit = (await t.api('GET', '/api/v1/audit?limit=50')).json().items.filter((a: { action: string }) => a.action.startsWith('schedule.'));
    expect(audit.map((a: { action: string }) => a.action).reverse()).toEqual(['schedule.create', 'schedule.update', 'schedule.pause', 'schedule.resume', 'schedule.delete']);
    const update = audit.find((a: { action: string }) => a.action === 'schedule.update');
    expect(update.details).toEqual({ schedule_id: s.id, changes: { cron: { from: '0 3 * * *', to: '@hourly' }, overlap: { from: 'skip', to: 'queue' } } });
    expect(update.actor).toContain('admin@example.com');
  });

  it('previews a 02:30 Amsterdam job: once at 03:00 on the spring-forward day, once at the first 02:30 on the fall-back day', async () => {
    const spring: PreviewView = (await t.api('GET', `/api/v1/schedules/preview?cron=${encodeURIComponent('30 2 * * *')}&timezone=Europe/Amsterdam&count=3&from=2026-03-27T12:00:00Z`)).json();
    expect(spring.runs.map((r) => [r.at, r.local, r.offset, r.dst?.kind ?? null])).toEqual([
      ['2026-03-28T01:30:00.000Z', '2026-03-28 02:30', '+01:00', null],
      ['2026-03-29T01:00:00.000Z', '2026-03-29 03:00', '+02:00', 'spring_forward'],
      ['2026-03-30T00:30:00.000Z', '2026-03-30 02:30', '+02:00', null],
    ]);
    expect(spring.runs[1].dst!.note).toBe('Clocks go forward from 02:00 to 03:00 on this day (Europe/Amsterdam). 02:30 does not exist on this day: the run happens once, at 03:00 (+02:00).');
    const fall: PreviewView = (await t.api('GET', `/api/v1/schedules/preview?cron=${encodeURIComponent('30 2 * * *')}&timezone=Europe/Amsterdam&count=3&from=2026-10-24T12:00:00Z`)).json();
    expect(fall.runs.map((r) => [r.at, r.local, r.dst?.kind ?? null])).toEqual([
      ['2026-10-25T00:30:00.000Z', '2026-10-25 02:30', 'fall_back'],
      ['2026-10-26T01:30:00.000Z', '2026-10-26 02:30', null],
      ['2026-10-27T01:30:00.000Z', '2026-10-27 02:30', null],
    ]);
    expect(fall.runs[0].dst!.note).toBe('Clocks go back from 03:00 to 02:00 on this day (Europe/Amsterdam). 02:30 happens twice on this day: the run happens once, at the first 02:30 (+02:00).');
    const bad = await t.api('GET', `/api/v1/schedules/preview?cron=${encodeURIComponent('* 24 * * *')}`);
    expect(bad.json()).toMatchObject({ code: 'DC_BAD_CRON', details: { cron_field: 'hour' } });
  });

  it('shows executions with the schedule that created them, and a next-24-hours timeline across projects', async () => {
    await t.core.store.replaceCommands(t.projects.blog.id, [{ projectId: t.projects.blog.id, name: 'check', appLabel: 'x', helpText: '', schema: null, refused: null, maxConcurrency: null, syncedAt: 1 }], 'b');
    const a: ScheduleView = (await create({ cron: '0 */6 * * *', name: 'sessions' })).json();
    const b: ScheduleView = (await create({ project: 'blog', command: 'check', cron: '30 13 * * *' })).json();
    await create({ cron: '0 * * * *', paused: true });
    const tl: TimelineView = (await t.api('GET', '/api/v1/schedules/timeline')).json();
    expect(tl.items.map((i) => [i.at.slice(11, 16), i.project, i.schedule])).toEqual([
      ['13:30', 'blog', `check (${b.id.slice(0, 8)})`],
      ['18:00', 'shop', 'sessions'],
      ['00:00', 'shop', 'sessions'],
      ['06:00', 'shop', 'sessions'],
    ]);
    const run = (await t.api('POST', `/api/v1/schedules/${a.id}/run`)).json();
    const e = (await t.api('GET', `/api/v1/executions/${run.execution_id}`)).json();
    expect(e).toMatchObject({ schedule_id: a.id, created_by: 'schedule "sessions"' });
    const list = (await t.api('GET', '/api/v1/schedules?project=shop&recent=20')).json().items as ScheduleView[];
    expect(list.find((s) => s.id === a.id)!.recent!.map((o) => o.result)).toEqual(['queued']);
    expect(list.filter((s) => s.id !== a.id).map((s) => s.recent)).toEqual([[]]);
  });
});
