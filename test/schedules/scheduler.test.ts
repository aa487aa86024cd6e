/**
 * The scheduler with the test's clock, on SQLite and PostgreSQL: occurrences fire once, overlap,
 * misfire after downtime, daylight saving in Amsterdam, pauses, start deadlines, health checks,
 * refusals, and taking over what a dead server left half done. Nothing is ever skipped silently.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from '../support/databases.js';
import { testApp, type TestApp } from '../support/inProcess.js';
import { Scheduler } from '../../src/core/schedules/scheduler.js';
import { sweep } from '../../src/core/sweeper.js';
import type { NewNotificationEvent } from '../../src/store/notificationStore.js';
import type { OccurrenceView, ScheduleView } from '../../src/shared/schedulesApi.js';
import { recordEvents, reportCommands } from './support.js';

const MIN = 60_000;

describe.each(DB_KINDS)('scheduler (%s)', (kind) => {
  let t: TestApp;
  let scheduler: Scheduler;
  let events: NewNotificationEvent[];

  beforeEach(async () => {
    t = await testApp(kind);
    await reportCommands(t);
    scheduler = new Scheduler(t.core, { owner: 'test' });
    events = recordEvents(t);
  });
  afterEach(async () => t.close());

  const create = async (body: Record<string, unknown>): Promise<ScheduleView> => {
    const res = await t.api('POST', '/api/v1/schedules', { project: 'shop', command: 'clearsessions', ...body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  };
  const occurrences = async (id: string): Promise<OccurrenceView[]> => (await t.api('GET', `/api/v1/schedules/${id}/occurrences`)).json().items;
  const executions = async () => (await t.api('GET', '/api/v1/executions?limit=500')).json().items as Array<{ id: string; schedule_id: string | null; created_at: string; status: string; created_by: string }>;
  const at = (iso: string) => (t.clock.now = Date.parse(iso));
  const finish = async (id: string, status: 'success' | 'failed' = 'success') => {
    await t.runner('shop', 'GET', '/pending/');
    expect((await t.runner('shop', 'POST', `/executions/${id}/start/`)).statusCode).toBe(200);
    expect((await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: status === 'success' ? 0 : 1, status })).statusCode).toBe(200);
  };
  const missedEvents = () => events.filter((e) => e.type === 'schedule.missed');

  it('fires each occurrence exactly once, on time, even with two schedulers passing at the same moment', async () => {
    const s = await create({ cron: '*/5 * * * *', name: 'sessions' });
    expect(s.next_run_at).toBe('2026-11-22T12:05:00.000Z');
    at('2026-11-22T12:04:59.999Z');
    expect((await scheduler.pass()).started).toBe(0);
    at('2026-11-22T12:05:00.000Z');
    const other = new Scheduler(t.core, { owner: 'other' });
    const [a, b] = await Promise.all([scheduler.pass(), other.pass()]);
    expect(a.started + b.started).toBe(1);
    await scheduler.pass();
    const runs = await executions();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ schedule_id: s.id, created_at: '2026-11-22T12:05:00.000Z', created_by: 'schedule "sessions"' });
    const [o] = await occurrences(s.id);
    expect(o).toMatchObject({ due_at: '2026-11-22T12:05:00.000Z', outcome: 'started', execution_id: runs[0].id, late_ms: 0, trigger: 'cron' });
    expect((await t.api('GET', `/api/v1/schedules/${s.id}`)).json().next_run_at).toBe('2026-11-22T12:10:00.000Z');
  });

  it('overlap skip records the skipped occurrence and raises schedule.missed; queue waits for the previous run', async () => {
    const skip = await create({ cron: '* * * * *' });
    at('2026-11-22T12:01:00Z');
    await scheduler.pass();
    at('2026-11-22T12:02:00Z');
    expect((await scheduler.pass()).skipped).toBe(1);
    const [second, first] = await occurrences(skip.id);
    expect(first.outcome).toBe('started');
    expect(second).toMatchObject({ outcome: 'skipped', execution_id: null });
    expect(second.reason).toContain(`the previous run (execution ${first.execution_id}) was still active (overlap: skip)`);
    expect(missedEvents()).toHaveLength(1);
    expect(missedEvents()[0].details).toMatchObject({ schedule_id: skip.id, command: 'clearsessions', due_at: '2026-11-22T12:02:00.000Z', outcome: 'skipped' });
    await t.api('DELETE', `/api/v1/schedules/${skip.id}`);
    await finish(first.execution_id!);

    const queue = await create({ cron: '* * * * *', command: 'migrate', overlap: 'queue' });
    at('2026-11-22T12:03:00Z');
    await scheduler.pass();
    at('2026-11-22T12:04:00Z');
    expect((await scheduler.pass()).waiting).toBe(1);
    at('2026-11-22T12:05:00Z');
    await scheduler.pass(); // a third while one waits: skipped (queue holds one)
    let [third, waiting, running] = await occurrences(queue.id);
    expect(waiting.outcome).toBe('waiting');
    expect(third.outcome).toBe('skipped');
    expect(third.reason).toContain('queue holds one');
    at('2026-11-22T12:05:10Z');
    await finish(running.execution_id!);
    expect((await scheduler.pass()).started).toBe(1);
    [third, waiting, running] = await occurrences(queue.id);
    expect(waiting.outcome).toBe('started');
    expect(waiting.late_ms).toBe(70_000);
  });

  it('after downtime, misfire run_once runs the latest occurrence once and records the rest as missed; skip runs none', async () => {
    const once = await create({ cron: '* * * * *', catch_up_window: 600 });
    const skip = await create({ cron: '* * * * *', command: 'migrate', misfire: 'skip', catch_up_window: 600 });
    at('2026-11-22T12:30:30Z'); // the servers were down from 12:00:30
    await scheduler.pass();
    const o = await occurrences(once.id);
    expect(o.map((x) => [x.due_at.slice(11, 16), x.outcome, x.count, x.trigger])).toEqual([
      ['12:30', 'started', 1, 'catch_up'],
      ['12:21', 'missed', 9, 'cron'],
      ['12:01', 'missed', 20, 'cron'],
    ]);
    expect(o[2].last_due_at).toBe('2026-11-22T12:20:00.000Z');
    expect(o[2].reason).toContain('older than the catch-up window');
    expect(o[1].reason).toContain('one catch-up run at 2026-11-22T12:30:00.000Z stands for them');
    const s = await occurrences(skip.id);
    expect(s.map((x) => [x.outcome, x.count])).toEqual([
      ['missed', 10],
      ['missed', 20],
    ]);
    expect((await executions()).map((e) => e.schedule_id)).toEqual([once.id]);
    expect(missedEvents()).toHaveLength(4);
    expect((await t.api('GET', `/api/v1/schedules/${once.id}`)).json().next_run_at).toBe('2026-11-22T12:31:00.000Z');
  });

  it('runs a 02:30 Europe/Amsterdam job once on the spring-forward day (at 03:00) and once on the fall-back day', async () => {
    at('2026-03-28T12:00:00Z');
    const s = await create({ cron: '30 2 * * *', timezone: 'Europe/Amsterdam' });
    const fired: string[] = [];
    const seen = new Set<string>();
    const runUntil = async (end: string) => {
      for (;;) {
        const next = await t.core.store.schedules.earliestDue();
        if (next === null || next > Date.parse(end)) return;
        t.clock.now = next;
        await scheduler.pass();
        for (const e of await executions()) {
          if (!seen.has(e.id)) {
            seen.add(e.id);
            fired.push(e.created_at);
            await finish(e.id);
          }
        }
      }
    };
    await runUntil('2026-03-31T00:00:00Z');
    expect(fired).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    fired.length = 0;
    at('2026-10-24T12:00:00Z');
    await t.api('PATCH', `/api/v1/schedules/${s.id}`, { cron: '30 2 * * *' }); // a quiet summer: start again from here
    await t.api('POST', `/api/v1/schedules/${s.id}/pause`);
    await t.api('POST', `/api/v1/schedules/${s.id}/resume`);
    await runUntil('2026-10-27T00:00:00Z');
    expect(fired).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('a paused schedule fires nothing; on resume the pause shows as one missed row', async () => {
    const s = await create({ cron: '*/10 * * * *' });
    at('2026-11-22T12:05:00Z');
    expect((await t.api('POST', `/api/v1/schedules/${s.id}/pause`)).json()).toMatchObject({ paused: true, next_run_at: null });
    at('2026-11-22T12:45:00Z');
    await scheduler.pass();
    expect(await executions()).toHaveLength(0);
    const resumed = (await t.api('POST', `/api/v1/schedules/${s.id}/resume`)).json();
    expect(resumed).toMatchObject({ paused: false, next_run_at: '2026-11-22T12:50:00.000Z' });
    const [row] = await occurrences(s.id);
    expect(row).toMatchObject({ outcome: 'missed', count: 4, due_at: '2026-11-22T12:10:00.000Z', last_due_at: '2026-11-22T12:40:00.000Z' });
    expect(row.reason).toContain('paused from 2026-11-22T12:05:00.000Z');
  });

  it('an execution no runner started before its start deadline makes the occurrence missed, with a notification', async () => {
    const s = await create({ cron: '0 * * * *', start_timeout: 120 });
    at('2026-11-22T13:00:00Z');
    await scheduler.pass();
    at('2026-11-22T13:02:01Z');
    await sweep(t.core);
    expect((await scheduler.pass()).missed).toBe(1);
    const [o] = await occurrences(s.id);
    expect(o).toMatchObject({ outcome: 'missed', result: 'missed' });
    expect(o.reason).toContain('before the start deadline (120 s)');
    expect(missedEvents().map((e) => e.details.outcome)).toEqual(['missed']);
  });

  it("records an occurrence whose command the runner's policy now refuses as refused, with the policy's words", async () => {
    const s = await create({ cron: '* * * * *', command: 'check' });
    await reportCommands(t, ['check']);
    at('2026-11-22T12:01:00Z');
    expect((await scheduler.pass()).refused).toBe(1);
    const [o] = await occurrences(s.id);
    expect(o.outcome).toBe('refused');
    expect(o.reason).toContain('"check" is not in DJANGOCOMMAND_ALLOWED_COMMANDS');
    expect(missedEvents()[0].details).toMatchObject({ outcome: 'refused' });
  });

  it('health check: one schedule.health per missed deadline, again only after a new success', async () => {
    const s = await create({ cron: '*/30 * * * *', health_every: 60 });
    const health = () => events.filter((e) => e.type === 'schedule.health');
    at('2026-11-22T12:30:00Z');
    await scheduler.pass();
    await finish((await executions())[0].id, 'failed');
    at('2026-11-22T13:00:01Z');
    await scheduler.pass();
    expect(health()).toHaveLength(1);
    expect(health()[0].details).toMatchObject({ schedule_id: s.id, due_at: '2026-11-22T13:00:00.000Z' });
    expect(String(health()[0].details.reason)).toContain('expected a success at least every 60 minutes');
    at('2026-11-22T13:20:00Z');
    await scheduler.pass();
    expect(health()).toHaveLength(1); // once per miss
    const e = (await executions()).find((x) => x.status === 'queued')!;
    await finish(e.id);
    await scheduler.pass();
    expect((await t.api('GET', `/api/v1/schedules/${s.id}`)).json().health_deadline).toBe('2026-11-22T14:20:00.000Z');
    at('2026-11-22T14:20:01Z');
    await t.api('POST', `/api/v1/schedules/${s.id}/pause`); // paused: not expected
    await scheduler.pass();
    expect(health()).toHaveLength(1);
  });

  it('takes over an occurrence a dead server left pending: adopts the execution it made, or makes the one it did not', async () => {
    const a = await create({ cron: '0 * * * *' });
    const b = await create({ cron: '0 * * * *', command: 'migrate' });
    at('2026-11-22T13:00:00Z');
    // The dead server claimed both; for `a` it created the execution, then died before linking it.
    const dead = new Scheduler(t.core, { owner: 'dead' });
    const claim = async (id: string) => t.core.store.schedules.claimDue([{ id, dueAt: Date.parse('2026-11-22T13:00:00Z') }], (s) => ({ nextDueAt: s.nextDueAt! + 3600_000, occurrences: [{ scheduleId: s.id, projectId: s.projectId, dueAt: s.nextDueAt!, lastDueAt: s.nextDueAt!, trigger: 'cron', outcome: 'pending', reason: null, executionId: null, count: 1, recordedAt: t.clock.now, claimedBy: dead.owner, claimedAt: t.clock.now, open: false }] }));
    expect(await claim(a.id)).toHaveLength(1);
    expect(await claim(b.id)).toHaveLength(1);
    const orphan = (await t.api('POST', '/api/v1/executions', { project: 'shop', command: 'clearsessions' })).json();
    await (t.core.store as unknown as { db: import('kysely').Kysely<any> }).db.updateTable('executions').set({ schedule_id: a.id }).where('id', '=', orphan.id).execute();
    at('2026-11-22T13:00:10Z');
    expect((await scheduler.pass()).adopted).toBe(0); // within the lease: the other server may be alive
    at('2026-11-22T13:00:16Z');
    expect((await scheduler.pass()).adopted).toBe(2);
    expect((await occurrences(a.id))[0]).toMatchObject({ outcome: 'started', execution_id: orphan.id });
    const [ob] = await occurrences(b.id);
    expect(ob.outcome).toBe('started');
    expect((await executions()).filter((e) => e.schedule_id === a.id)).toHaveLength(1);
    expect((await executions()).filter((e) => e.schedule_id === b.id)).toHaveLength(1);
  });

  it('run now starts a manual occurrence; refused with DC_CONCURRENCY_LIMIT while the previous run is active', async () => {
    const s = await create({ cron: '0 0 1 1 *' });
    const res = await t.api('POST', `/api/v1/schedules/${s.id}/run`);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().occurrence).toMatchObject({ trigger: 'manual', outcome: 'started' });
    const again = await t.api('POST', `/api/v1/schedules/${s.id}/run`);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('DC_CONCURRENCY_LIMIT');
    const [skipped] = await occurrences(s.id);
    expect(skipped).toMatchObject({ trigger: 'manual', outcome: 'skipped' });
  });
});
