/** ScheduleStore over Kysely, for SQLite and PostgreSQL (differences: Capabilities flags only). */
import type { Kysely, Selectable } from 'kysely';
import type { Capabilities } from './dialects.js';
import type { Database } from './schema.js';
import type { DuePlan, OccurrencePatch, SchedulePatch, ScheduleStore } from './scheduleStore.js';
import type { MisfirePolicy, NewOccurrence, Occurrence, OccurrenceOutcome, OccurrenceTrigger, OverlapPolicy, Schedule, ScheduleSource } from '../domain/schedule.js';
import { ACTIVE_STATUSES, TERMINAL_STATUSES } from '../domain/execution.js';
import { healthDeadline } from '../domain/schedule.js';

declare module './schema.js' {
  interface Database {
    schedules: SchedulesTable;
    schedule_occurrences: ScheduleOccurrencesTable;
  }
}

export interface SchedulesTable {
  id: string;
  project_id: string;
  name: string | null;
  command: string;
  argv_json: string;
  args: string;
  cron: string;
  timezone: string;
  timeout_seconds: number | null;
  start_timeout_seconds: number;
  overlap: string;
  misfire: string;
  catch_up_seconds: number;
  health_every_minutes: number | null;
  read_only: number;
  paused: number;
  paused_at: number | null;
  paused_reason: string | null;
  source: string;
  next_due_at: number | null;
  last_success_at: number | null;
  health_since: number;
  health_alerted_for: number | null;
  created_at: number;
  updated_at: number;
  created_by: string;
  deleted_at: number | null;
}

export interface ScheduleOccurrencesTable {
  schedule_id: string;
  due_at: number;
  project_id: string;
  trigger: string;
  outcome: string;
  reason: string | null;
  execution_id: string | null;
  count: number;
  last_due_at: number;
  recorded_at: number;
  claimed_by: string | null;
  claimed_at: number | null;
  open: number;
}

const OCCURRENCE_COLUMNS = [
  'o.schedule_id',
  'o.due_at',
  'o.project_id',
  'o.trigger',
  'o.outcome',
  'o.reason',
  'o.execution_id',
  'o.count',
  'o.last_due_at',
  'o.recorded_at',
  'o.claimed_by',
  'o.claimed_at',
  'o.open',
  'e.status as e_status',
  'e.exit_code as e_exit_code',
  'e.created_at as e_created_at',
  'e.started_at as e_started_at',
  'e.finished_at as e_finished_at',
] as const;

export class ScheduleSql implements ScheduleStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: Capabilities,
  ) {}

  async createSchedule(s: Schedule): Promise<void> {
    await this.db.insertInto('schedules').values(fromSchedule(s)).execute();
  }

  async getSchedule(id: string): Promise<Schedule | undefined> {
    const r = await this.db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toSchedule(r);
  }

  async listSchedules(projectId?: string): Promise<Schedule[]> {
    let q = this.db.selectFrom('schedules').selectAll().where('deleted_at', 'is', null);
    if (projectId) q = q.where('project_id', '=', projectId);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toSchedule);
  }

  async updateSchedule(id: string, patch: SchedulePatch): Promise<Schedule | undefined> {
    const set = schedulePatchColumns(patch);
    if (Object.keys(set).length > 0) {
      const res = await this.db.updateTable('schedules').set(set).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0 && patch.deletedAt === undefined) return undefined;
    }
    return this.getSchedule(id);
  }

  async earliestDue(): Promise<number | null> {
    const r = await this.db.selectFrom('schedules').select('next_due_at').where('next_due_at', 'is not', null).orderBy('next_due_at').limit(1).executeTakeFirst();
    return r?.next_due_at ?? null;
  }

  async listDue(until: number, limit: number): Promise<Array<{ id: string; dueAt: number }>> {
    const rows = await this.db.selectFrom('schedules').select(['id', 'next_due_at']).where('next_due_at', '<=', until).orderBy('next_due_at').limit(limit).execute();
    return rows.map((r) => ({ id: r.id, dueAt: Number(r.next_due_at) }));
  }

  async claimDue(due: ReadonlyArray<{ id: string; dueAt: number }>, plan: (s: Schedule) => DuePlan): Promise<Array<{ schedule: Schedule; occurrences: NewOccurrence[] }>> {
    if (due.length === 0) return [];
    const listed = new Map(due.map((d) => [d.id, d.dueAt]));
    return this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('schedules').selectAll().where('id', 'in', [...listed.keys()]);
      if (this.caps.rowLocks) q = q.forUpdate().skipLocked();
      // Rows whose next due time moved since they were listed were taken by another server.
      const rows = (await q.execute()).filter((r) => r.next_due_at !== null && Number(r.next_due_at) === listed.get(r.id));
      const claimed: Array<{ schedule: Schedule; occurrences: NewOccurrence[] }> = [];
      const all: NewOccurrence[] = [];
      for (const row of rows) {
        const schedule = toSchedule(row);
        const p = plan(schedule);
        await trx.updateTable('schedules').set({ next_due_at: p.nextDueAt }).where('id', '=', schedule.id).execute();
        claimed.push({ schedule: { ...schedule, nextDueAt: p.nextDueAt }, occurrences: p.occurrences });
        all.push(...p.occurrences);
      }
      if (all.length === 0) return claimed;
      const inserted = new Set<string>();
      for (let i = 0; i < all.length; i += 500) {
        const got = await trx
          .insertInto('schedule_occurrences')
          .values(all.slice(i, i + 500).map(fromOccurrence))
          .onConflict((oc) => oc.columns(['schedule_id', 'due_at']).doNothing())
          .returning(['schedule_id', 'due_at'])
          .execute();
        for (const r of got) inserted.add(`${r.schedule_id}|${Number(r.due_at)}`);
      }
      return claimed.map((c) => ({ ...c, occurrences: c.occurrences.filter((o) => inserted.has(`${o.scheduleId}|${o.dueAt}`)) }));
    });
  }

  async linkOccurrences(links: ReadonlyArray<{ scheduleId: string; dueAt: number; claimedAt: number | null; executionId: string; at: number }>): Promise<boolean[]> {
    if (links.length === 0) return [];
    return this.db.transaction().execute(async (trx) => {
      const held: boolean[] = [];
      for (const l of links) {
        let q = trx
          .updateTable('schedule_occurrences')
          .set({ outcome: 'started', execution_id: l.executionId, open: 1, reason: null, recorded_at: l.at })
          .where('schedule_id', '=', l.scheduleId)
          .where('due_at', '=', l.dueAt)
          .where('outcome', '=', 'pending');
        q = l.claimedAt === null ? q.where('claimed_at', 'is', null) : q.where('claimed_at', '=', l.claimedAt);
        held.push(Number((await q.executeTakeFirst()).numUpdatedRows) > 0);
      }
      return held;
    });
  }

  async insertOccurrence(o: NewOccurrence): Promise<boolean> {
    const res = await this.db.insertInto('schedule_occurrences').values(fromOccurrence(o)).onConflict((oc) => oc.columns(['schedule_id', 'due_at']).doNothing()).executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async updateOccurrence(scheduleId: string, dueAt: number, from: readonly OccurrenceOutcome[], patch: OccurrencePatch, claimedAt?: number | null): Promise<boolean> {
    const set: Partial<ScheduleOccurrencesTable> = {};
    if (patch.outcome !== undefined) set.outcome = patch.outcome;
    if (patch.reason !== undefined) set.reason = patch.reason;
    if (patch.executionId !== undefined) set.execution_id = patch.executionId;
    if (patch.open !== undefined) set.open = patch.open ? 1 : 0;
    if (patch.claimedBy !== undefined) set.claimed_by = patch.claimedBy;
    if (patch.claimedAt !== undefined) set.claimed_at = patch.claimedAt;
    if (patch.recordedAt !== undefined) set.recorded_at = patch.recordedAt;
    let q = this.db.updateTable('schedule_occurrences').set(set).where('schedule_id', '=', scheduleId).where('due_at', '=', dueAt).where('outcome', 'in', [...from]);
    if (claimedAt !== undefined) q = claimedAt === null ? q.where('claimed_at', 'is', null) : q.where('claimed_at', '=', claimedAt);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  private occurrences() {
    return this.db.selectFrom('schedule_occurrences as o').leftJoin('executions as e', 'e.id', 'o.execution_id').select(OCCURRENCE_COLUMNS);
  }

  async getOccurrence(scheduleId: string, dueAt: number): Promise<Occurrence | undefined> {
    const r = await this.occurrences().where('o.schedule_id', '=', scheduleId).where('o.due_at', '=', dueAt).executeTakeFirst();
    return r && toOccurrence(r);
  }

  async listOccurrences(scheduleId: string, limit: number, beforeDueAt?: number): Promise<Occurrence[]> {
    let q = this.occurrences().where('o.schedule_id', '=', scheduleId);
    if (beforeDueAt !== undefined) q = q.where('o.due_at', '<', beforeDueAt);
    return (await q.orderBy('o.due_at', 'desc').limit(limit).execute()).map(toOccurrence);
  }

  async listOccurrencesBetween(from: number, to: number, limit: number): Promise<Occurrence[]> {
    const rows = await this.occurrences()
      .innerJoin('schedules as s', 's.id', 'o.schedule_id')
      .where('s.deleted_at', 'is', null)
      .where('o.due_at', '>=', from)
      .where('o.due_at', '<', to)
      .orderBy('o.due_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toOccurrence);
  }

  async listStuck(before: number): Promise<Occurrence[]> {
    const rows = await this.occurrences().where('o.outcome', '=', 'pending').where('o.claimed_at', '<', before).orderBy('o.due_at').limit(500).execute();
    return rows.map(toOccurrence);
  }

  async listWaiting(): Promise<Occurrence[]> {
    return (await this.occurrences().where('o.outcome', '=', 'waiting').orderBy('o.due_at').limit(500).execute()).map(toOccurrence);
  }

  async listEndedOpen(limit: number): Promise<Occurrence[]> {
    const rows = await this.occurrences()
      .where('o.outcome', '=', 'started')
      .where('o.open', '=', 1)
      .where('e.status', 'in', [...TERMINAL_STATUSES])
      .orderBy('o.due_at')
      .limit(limit)
      .execute();
    return rows.map(toOccurrence);
  }

  async findUnlinkedExecution(scheduleId: string, since: number): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('executions as e')
      .leftJoin('schedule_occurrences as o', 'o.execution_id', 'e.id')
      .select('e.id')
      .where('e.schedule_id', '=', scheduleId)
      .where('e.created_at', '>=', since)
      .where('o.execution_id', 'is', null)
      .orderBy('e.created_at')
      .limit(1)
      .executeTakeFirst();
    return r?.id;
  }

  async activeExecutionIds(scheduleId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('executions').select('id').where('schedule_id', '=', scheduleId).where('status', 'in', [...ACTIVE_STATUSES]).execute();
    return rows.map((r) => r.id);
  }

  async markHealthAlerted(id: string, deadline: number): Promise<boolean> {
    const res = await this.db
      .updateTable('schedules')
      .set({ health_alerted_for: deadline })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('health_alerted_for', 'is', null), eb('health_alerted_for', '<', deadline)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async activeExecutionsOf(scheduleIds: readonly string[]): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    for (let i = 0; i < scheduleIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('executions')
        .select(['id', 'schedule_id'])
        .where('schedule_id', 'in', scheduleIds.slice(i, i + 500))
        .where('status', 'in', [...ACTIVE_STATUSES])
        .execute();
      for (const r of rows) found.set(r.schedule_id!, [...(found.get(r.schedule_id!) ?? []), r.id]);
    }
    return found;
  }

  async listHealthOverdue(now: number): Promise<Schedule[]> {
    // Few schedules have a health check: read them, and compare in one place (domain rule).
    const rows = await this.db
      .selectFrom('schedules')
      .selectAll()
      .where('health_every_minutes', 'is not', null)
      .where('paused', '=', 0)
      .where('deleted_at', 'is', null)
      .execute();
    return rows.map(toSchedule).filter((s) => {
      const deadline = healthDeadline(s);
      return deadline !== null && deadline < now && (s.healthAlertedFor === null || s.healthAlertedFor < deadline);
    });
  }
}

function toSchedule(r: Selectable<SchedulesTable>): Schedule {
  return {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    command: r.command,
    argv: JSON.parse(r.argv_json) as string[],
    args: r.args,
    cron: r.cron,
    timezone: r.timezone,
    timeoutSeconds: r.timeout_seconds,
    startTimeoutSeconds: r.start_timeout_seconds,
    overlap: r.overlap as OverlapPolicy,
    misfire: r.misfire as MisfirePolicy,
    catchUpSeconds: r.catch_up_seconds,
    healthEveryMinutes: r.health_every_minutes,
    readOnly: r.read_only === 1,
    paused: r.paused === 1,
    pausedAt: r.paused_at,
    pausedReason: r.paused_reason,
    source: r.source as ScheduleSource,
    nextDueAt: r.next_due_at,
    lastSuccessAt: r.last_success_at,
    healthSince: r.health_since,
    healthAlertedFor: r.health_alerted_for,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    createdBy: r.created_by,
    deletedAt: r.deleted_at,
  };
}

function fromSchedule(s: Schedule): SchedulesTable {
  return {
    id: s.id,
    project_id: s.projectId,
    created_at: s.createdAt,
    created_by: s.createdBy,
    ...(schedulePatchColumns(s) as Omit<SchedulesTable, 'id' | 'project_id' | 'created_at' | 'created_by'>),
  };
}

function schedulePatchColumns(p: SchedulePatch): Partial<SchedulesTable> {
  const set: Partial<SchedulesTable> = {};
  if (p.name !== undefined) set.name = p.name;
  if (p.command !== undefined) set.command = p.command;
  if (p.argv !== undefined) set.argv_json = JSON.stringify(p.argv);
  if (p.args !== undefined) set.args = p.args;
  if (p.cron !== undefined) set.cron = p.cron;
  if (p.timezone !== undefined) set.timezone = p.timezone;
  if (p.timeoutSeconds !== undefined) set.timeout_seconds = p.timeoutSeconds;
  if (p.startTimeoutSeconds !== undefined) set.start_timeout_seconds = p.startTimeoutSeconds;
  if (p.overlap !== undefined) set.overlap = p.overlap;
  if (p.misfire !== undefined) set.misfire = p.misfire;
  if (p.catchUpSeconds !== undefined) set.catch_up_seconds = p.catchUpSeconds;
  if (p.healthEveryMinutes !== undefined) set.health_every_minutes = p.healthEveryMinutes;
  if (p.readOnly !== undefined) set.read_only = p.readOnly ? 1 : 0;
  if (p.paused !== undefined) set.paused = p.paused ? 1 : 0;
  if (p.pausedAt !== undefined) set.paused_at = p.pausedAt;
  if (p.pausedReason !== undefined) set.paused_reason = p.pausedReason;
  if (p.source !== undefined) set.source = p.source;
  if (p.nextDueAt !== undefined) set.next_due_at = p.nextDueAt;
  if (p.lastSuccessAt !== undefined) set.last_success_at = p.lastSuccessAt;
  if (p.healthSince !== undefined) set.health_since = p.healthSince;
  if (p.healthAlertedFor !== undefined) set.health_alerted_for = p.healthAlertedFor;
  if (p.updatedAt !== undefined) set.updated_at = p.updatedAt;
  if (p.deletedAt !== undefined) set.deleted_at = p.deletedAt;
  return set;
}

function fromOccurrence(o: NewOccurrence): ScheduleOccurrencesTable {
  return {
    schedule_id: o.scheduleId,
    due_at: o.dueAt,
    project_id: o.projectId,
    trigger: o.trigger,
    outcome: o.outcome,
    reason: o.reason,
    execution_id: o.executionId,
    count: o.count,
    last_due_at: o.lastDueAt,
    recorded_at: o.recordedAt,
    claimed_by: o.claimedBy,
    claimed_at: o.claimedAt,
    open: o.open ? 1 : 0,
  };
}

type OccurrenceRow = Selectable<ScheduleOccurrencesTable> & {
  e_status: string | null;
  e_exit_code: number | null;
  e_created_at: number | null;
  e_started_at: number | null;
  e_finished_at: number | null;
};

function toOccurrence(r: OccurrenceRow): Occurrence {
  return {
    scheduleId: r.schedule_id,
    projectId: r.project_id,
    dueAt: Number(r.due_at),
    trigger: r.trigger as OccurrenceTrigger,
    outcome: r.outcome as OccurrenceOutcome,
    reason: r.reason,
    executionId: r.execution_id,
    count: r.count,
    lastDueAt: Number(r.last_due_at),
    recordedAt: Number(r.recorded_at),
    claimedBy: r.claimed_by,
    claimedAt: r.claimed_at === null ? null : Number(r.claimed_at),
    open: r.open === 1,
    ...(r.e_status !== null
      ? { execution: { status: r.e_status, exitCode: r.e_exit_code, createdAt: Number(r.e_created_at), startedAt: r.e_started_at, finishedAt: r.e_finished_at } }
      : {}),
  };
}
