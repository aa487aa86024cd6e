/**
 * Schedules as code, in-process over a real WebSocket (protocol v2), on SQLite and PostgreSQL:
 * DJANGOCOMMAND_SCHEDULES sent with the catalogue creates, updates and removes the project's code
 * schedules; an invalid entry is skipped (audited, told to the runner) without failing the sync;
 * a code schedule takes over a dashboard one of the same name; the API refuses to edit or delete
 * a code schedule.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from '../support/databases.js';
import { testApp, type TestApp } from '../support/inProcess.js';
import { connectV2, hello } from '../support/v2Socket.js';
import { commandsHash } from '../../src/domain/commandsHash.js';
import { codeSchedulesDigest, joinCatalogueHash, type CodeScheduleSpec } from '../../src/domain/codeSchedule.js';
import type { ScheduleView } from '../../src/shared/schedulesApi.js';
import type { ServerMessage } from '../../src/shared/protocolV2.js';
import { CLEAR_SCHEMA } from './support.js';

const COMMANDS = [
  { name: 'clearsessions', app_label: 'sessions', help_text: 'usage: manage.py clearsessions', schema: CLEAR_SCHEMA },
  { name: 'check', app_label: 'core', help_text: 'usage: manage.py check', schema: null },
  { name: 'flush', app_label: 'core', help_text: 'usage: manage.py flush', schema: null, refused: '"flush" is not in DJANGOCOMMAND_ALLOWED_COMMANDS' },
];
const nightly: CodeScheduleSpec = { name: 'nightly', command: 'clearsessions', args: '--days 3', cron: '0 3 * * *', timezone: 'Europe/Amsterdam' };
const hourly: CodeScheduleSpec = { name: 'hourly', command: 'check', args: '', cron: '@hourly', timezone: 'UTC' };
const invalid: CodeScheduleSpec[] = [
  { name: 'bad-cron', command: 'check', args: '', cron: '61 * * * *', timezone: 'UTC' },
  { name: 'ghost', command: 'nosuchcommand', args: '', cron: '@daily', timezone: 'UTC' },
  { name: 'wipe', command: 'flush', args: '', cron: '@daily', timezone: 'UTC' },
  { name: 'bad-args', command: 'clearsessions', args: '--days many', cron: '@daily', timezone: 'UTC' },
];

describe.each(DB_KINDS)('schedules as code over protocol v2 (%s)', (kind) => {
  let t: TestApp;
  let url: string;
  beforeEach(async () => {
    t = await testApp(kind);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterEach(async () => t.close());

  /** Connects a runner that reports the catalogue with these code schedules; what the server answered. */
  const report = async (schedules: CodeScheduleSpec[] | undefined): Promise<ServerMessage[]> => {
    const runner = await connectV2(url, t.projects.shop.key, t.clock.now);
    try {
      runner.send(hello());
      runner.send({ type: 'commands', commands: COMMANDS, ...(schedules ? { schedules } : {}) });
      return await runner.settle();
    } finally {
      await runner.close();
    }
  };
  const list = async (): Promise<ScheduleView[]> => (await t.api('GET', '/api/v1/schedules?project=shop')).json().items;
  const byName = async (name: string, source: 'api' | 'code') => (await list()).find((s) => s.name === name && s.source === source);
  const audits = async (action: string) => (await t.api('GET', `/api/v1/audit?action=${action}`)).json().items as Array<{ details: Record<string, unknown> }>;

  it('creates, updates and removes code schedules; skips invalid entries with a reason; refuses edit and delete', async () => {
    const answers = await report([nightly, hourly, ...invalid]);
    const errors = answers.filter((m): m is Extract<ServerMessage, { type: 'warning' }> => m.type === 'warning');
    expect(errors.map((e) => e.code)).toEqual(['DC_BAD_CRON', 'DC_UNKNOWN_COMMAND', 'DC_COMMAND_NOT_ALLOWED', 'DC_BAD_ARGS']);
    expect(errors[0].message).toContain('DJANGOCOMMAND_SCHEDULES entry "bad-cron" skipped');
    expect(errors[0].message).toContain('The minute field "61" is invalid');
    // The catalogue was stored all the same.
    expect((await t.api('GET', '/api/v1/projects/shop/commands')).statusCode).toBe(200);
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' })).statusCode).toBe(201);

    // Created in the same millisecond: listed by name here.
    const code = (await list()).sort((a, b) => (a.name! < b.name! ? 1 : -1));
    expect(code.map((s) => [s.name, s.source, s.from_code, s.command, s.args, s.cron, s.timezone, s.paused])).toEqual([
      ['nightly', 'code', true, 'clearsessions', '--days 3', '0 3 * * *', 'Europe/Amsterdam', false],
      ['hourly', 'code', true, 'check', '', '@hourly', 'UTC', false],
    ]);
    expect(code[0].next_run_at).toBe('2026-11-23T02:00:00.000Z');
    const refused = await audits('schedule.code_refused');
    expect(refused.map((a) => a.details.name).sort()).toEqual(['bad-args', 'bad-cron', 'ghost', 'wipe']);
    expect((await audits('schedule.create')).every((a) => a.details.source === 'code')).toBe(true);

    // Read-only through the API: edit and delete refused, nothing changed; pause and resume work.
    const id = code[0].id;
    const edit = await t.api('PATCH', `/api/v1/schedules/${id}`, { cron: '0 4 * * *' });
    expect([edit.statusCode, edit.json().code]).toEqual([409, 'DC_SCHEDULE_FROM_CODE']);
    expect(edit.json().error).toContain('DJANGOCOMMAND_SCHEDULES');
    const del = await t.api('DELETE', `/api/v1/schedules/${id}`);
    expect([del.statusCode, del.json().code]).toEqual([409, 'DC_SCHEDULE_FROM_CODE']);
    expect((await t.api('GET', `/api/v1/schedules/${id}`)).json().cron).toBe('0 3 * * *');
    expect((await t.api('POST', `/api/v1/schedules/${id}/pause`)).json().paused).toBe(true);
    expect((await t.api('POST', `/api/v1/schedules/${id}/resume`)).json().paused).toBe(false);

    // A changed entry updates the same schedule; a removed one is deleted.
    await report([{ ...nightly, cron: '30 4 * * *' }]);
    const after = await list();
    expect(after.map((s) => [s.id, s.cron])).toEqual([[id, '30 4 * * *']]);
    expect((await t.api('GET', `/api/v1/schedules/${code[1].id}`)).statusCode).toBe(404);
    const update = (await audits('schedule.update')).find((a) => a.details.schedule_id === id)!;
    expect(update.details.changes).toEqual({ cron: { from: '0 3 * * *', to: '30 4 * * *' } });
    expect((await audits('schedule.delete')).map((a) => [a.details.name, a.details.reason])).toEqual([['hourly', 'gone from DJANGOCOMMAND_SCHEDULES']]);

    // A catalogue without `schedules` (an older runner) leaves them; an empty list removes them.
    await report(undefined);
    expect((await list()).length).toBe(1);
    await report([]);
    expect(await list()).toEqual([]);
  });

  it('a code schedule takes over a dashboard schedule of the same name: paused with the reason, audited; the name stays taken', async () => {
    await report(undefined);
    const created = await t.api('POST', '/api/v1/schedules', { project: 'shop', name: 'nightly', command: 'clearsessions', cron: '0 3 * * *' });
    expect(created.statusCode, created.body).toBe(201);
    const dashboardId = created.json().id;

    await report([nightly]);
    const dashboard = (await byName('nightly', 'api'))!;
    const code = (await byName('nightly', 'code'))!;
    expect(dashboard.paused).toBe(true);
    expect(dashboard.next_run_at).toBeNull();
    expect(dashboard.paused_reason).toContain('taken over by the schedule "nightly" from code');
    expect(code.paused).toBe(false);
    const pause = (await audits('schedule.pause')).find((a) => a.details.schedule_id === dashboardId)!;
    expect(pause.details.code_schedule_id).toBe(code.id);

    // The name is the code schedule's while it exists: no resume, no new dashboard schedule, no rename onto it.
    const resume = await t.api('POST', `/api/v1/schedules/${dashboardId}/resume`);
    expect([resume.statusCode, resume.json().code]).toEqual([409, 'DC_SCHEDULE_NAME_TAKEN']);
    const again = await t.api('POST', '/api/v1/schedules', { project: 'shop', name: 'nightly', command: 'check', cron: '@daily' });
    expect([again.statusCode, again.json().code]).toEqual([409, 'DC_SCHEDULE_NAME_TAKEN']);
    const other = (await t.api('POST', '/api/v1/schedules', { project: 'shop', name: 'other', command: 'check', cron: '@daily' })).json().id;
    const rename = await t.api('PATCH', `/api/v1/schedules/${other}`, { name: 'nightly' });
    expect([rename.statusCode, rename.json().code]).toEqual([409, 'DC_SCHEDULE_NAME_TAKEN']);
    // Another project's names are its own.
    expect((await t.api('POST', '/api/v1/schedules', { project: 'blog', name: 'nightly', command: 'check', cron: '@daily' })).statusCode).not.toBe(409);

    // Once the entry is gone from the settings, the dashboard schedule stays paused until a person resumes it.
    await report([]);
    expect((await byName('nightly', 'api'))!.paused).toBe(true);
    const resumed = await t.api('POST', `/api/v1/schedules/${dashboardId}/resume`);
    expect(resumed.statusCode, resumed.body).toBe(200);
    expect(resumed.json().paused_reason).toBeNull();
  });

  it('hello is in sync only when the reported code schedules match the stored ones', async () => {
    await report([nightly, hourly]);
    const runnable = COMMANDS.filter((c) => !('refused' in c));
    const inSync = async (specs: CodeScheduleSpec[]) => {
      const runner = await connectV2(url, t.projects.shop.key, t.clock.now);
      try {
        runner.send(hello({ commands_hash: joinCatalogueHash(commandsHash(runnable), codeSchedulesDigest(specs)) }));
        const welcome = await runner.next((m): m is Extract<ServerMessage, { type: 'welcome' }> => m.type === 'welcome');
        return welcome.commands_in_sync;
      } finally {
        await runner.close();
      }
    };
    expect(await inSync([hourly, nightly])).toBe(true);
    expect(await inSync([nightly, { ...hourly, cron: '@daily' }])).toBe(false);
    expect(await inSync([nightly])).toBe(false);
  });
});
