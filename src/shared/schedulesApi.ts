/**
 * The REST API's wire types for schedules (`/api/v1/schedules`), defined once as schemas (the
 * server validates and documents with them, the CLI and the dashboard read through the same
 * types), and the one place that spells a schedule or an occurrence as the API shows it.
 * Times are ISO 8601 strings in UTC; `local` times are wall times in the schedule's zone.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { MISFIRE_POLICIES, OCCURRENCE_OUTCOMES, OCCURRENCE_TRIGGERS, OVERLAP_POLICIES, SCHEDULE_SOURCES, healthDeadline, occurrenceResult, type Occurrence, type Schedule } from '../domain/schedule.js';
import type { PreviewRun } from '../domain/scheduleCron.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ format: 'date-time' });
const literals = (values: readonly string[]) => Type.Union(values.map((v) => Type.Literal(v)));

export const PreviewRunView = Type.Object({
  at: Time,
  local: Type.String({ description: 'Wall time in the schedule\'s zone, "2026-03-29 03:00".' }),
  offset: Type.String({ description: 'The zone\'s UTC offset then, "+02:00".' }),
  weekday: Type.String(),
  dst: Nullable(
    Type.Object({
      kind: Type.Union([Type.Literal('spring_forward'), Type.Literal('fall_back')]),
      note: Type.String({ description: 'What the clock change does to this run, in words.' }),
    }),
  ),
});
export type PreviewRunView = Static<typeof PreviewRunView>;

export const PreviewView = Type.Object({
  cron: Type.String(),
  timezone: Type.String(),
  runs: Type.Array(PreviewRunView),
});
export type PreviewView = Static<typeof PreviewView>;

export const OccurrenceView = Type.Object({
  schedule_id: Type.String(),
  due_at: Time,
  last_due_at: Time,
  count: Type.Integer({ description: 'Occurrences this row stands for (more than 1: a gap, e.g. a pause or downtime).' }),
  trigger: literals(OCCURRENCE_TRIGGERS),
  outcome: literals(OCCURRENCE_OUTCOMES),
  result: Type.String({ description: "The execution's status when one started, else the outcome." }),
  reason: Nullable(Type.String({ description: 'Why no execution started (or why the occurrence was missed).' })),
  execution_id: Nullable(Type.String()),
  exit_code: Nullable(Type.Integer()),
  execution_created_at: Nullable(Time),
  started_at: Nullable(Time),
  finished_at: Nullable(Time),
  late_ms: Nullable(Type.Integer({ description: 'Execution created minus due time.' })),
});
export type OccurrenceView = Static<typeof OccurrenceView>;

export const ScheduleView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  project: Type.String(),
  project_id: Type.String(),
  name: Nullable(Type.String()),
  command: Type.String(),
  argv: Type.Array(Type.String()),
  args: Type.String(),
  cron: Type.String(),
  timezone: Type.String(),
  timeout: Nullable(Type.Integer({ description: 'Seconds; null: the server default.' })),
  start_timeout: Type.Integer({ description: 'Seconds a runner has to start a run; then the occurrence is missed.' }),
  overlap: literals(OVERLAP_POLICIES),
  misfire: literals(MISFIRE_POLICIES),
  catch_up_window: Type.Integer({ description: 'Seconds: misfires older than this are recorded as missed, never run.' }),
  health_every: Nullable(Type.Integer({ description: 'Minutes: a success is expected at least this often.' })),
  health_deadline: Nullable(Time),
  paused: Type.Boolean(),
  paused_reason: Nullable(Type.String({ description: 'Why it is paused when no person paused it (a code schedule of the same name took over).' })),
  source: literals(SCHEDULE_SOURCES),
  from_code: Type.Boolean({ description: 'Defined in DJANGOCOMMAND_SCHEDULES: changed by a deploy, not by edit or delete.' }),
  read_only: Type.Boolean({ description: 'Its runs are in read-only database mode (every write refused).' }),
  next_run_at: Nullable(Time),
  last_success_at: Nullable(Time),
  created_at: Time,
  updated_at: Time,
  created_by: Type.String(),
  next_runs: Type.Optional(Type.Array(PreviewRunView)),
  recent: Type.Optional(Type.Array(OccurrenceView, { description: 'The last occurrences, newest first.' })),
});
export type ScheduleView = Static<typeof ScheduleView>;

const seconds = (description: string) => Type.Integer({ minimum: 1, maximum: 604_800, description });
const fields = {
  command: Type.String({ minLength: 1, maxLength: 200 }),
  argv: Type.Array(Type.String({ maxLength: 10_000 }), { maxItems: 1000 }),
  args: Type.String({ maxLength: 65_536, description: 'Arguments as one string, split with POSIX shell rules.' }),
  cron: Type.String({ minLength: 1, maxLength: 200, description: '5 fields, or @hourly @daily @weekly @monthly @yearly.' }),
  timezone: Type.String({ minLength: 1, maxLength: 100, description: 'IANA zone; default UTC.' }),
  name: Nullable(Type.String({ maxLength: 200 })),
  timeout: Nullable(seconds('Seconds; default: the server default.')),
  start_timeout: seconds('Seconds a runner has to start a run (default 600); then the occurrence is missed.'),
  overlap: literals(OVERLAP_POLICIES),
  misfire: literals(MISFIRE_POLICIES),
  catch_up_window: Type.Integer({ minimum: 0, maximum: 604_800, description: 'Seconds (default 3600).' }),
  health_every: Nullable(Type.Integer({ minimum: 1, maximum: 527_040, description: 'Minutes.' })),
  read_only: Type.Boolean({ description: 'Run in read-only database mode (default false).' }),
  paused: Type.Boolean(),
};
const { command, cron, paused, ...rest } = fields;

export const CreateScheduleRequest = Type.Object(
  { project: Type.Optional(Type.String({ maxLength: 200 })), command, cron, ...Type.Partial(Type.Object({ ...rest, paused })).properties },
  { additionalProperties: false },
);
export type CreateScheduleRequest = Static<typeof CreateScheduleRequest>;

export const UpdateScheduleRequest = Type.Object(Type.Partial(Type.Object({ command, cron, ...rest })).properties, { additionalProperties: false });
export type UpdateScheduleRequest = Static<typeof UpdateScheduleRequest>;

export const TimelineEntryView = Type.Object({
  schedule_id: Type.String(),
  schedule: Type.String({ description: 'Its name, or its command and short id.' }),
  project: Type.String(),
  command: Type.String(),
  timezone: Type.String(),
  at: Time,
  local: Type.String(),
  dst: Nullable(Type.String()),
});
export type TimelineEntryView = Static<typeof TimelineEntryView>;

export const TimelineView = Type.Object({ from: Time, to: Time, items: Type.Array(TimelineEntryView), truncated: Type.Boolean() });
export type TimelineView = Static<typeof TimelineView>;

export const RunNowView = Type.Object({ occurrence: OccurrenceView, execution_id: Nullable(Type.String()) });
export type RunNowView = Static<typeof RunNowView>;

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : iso(ms));

export function previewRunView(r: PreviewRun): PreviewRunView {
  return { at: iso(r.at), local: r.local, offset: r.offset, weekday: r.weekday, dst: r.dst };
}

export function occurrenceView(o: Occurrence): OccurrenceView {
  return {
    schedule_id: o.scheduleId,
    due_at: iso(o.dueAt),
    last_due_at: iso(o.lastDueAt),
    count: o.count,
    trigger: o.trigger,
    outcome: o.outcome,
    result: occurrenceResult(o),
    reason: o.reason,
    execution_id: o.executionId,
    exit_code: o.execution?.exitCode ?? null,
    execution_created_at: isoOrNull(o.execution?.createdAt),
    started_at: isoOrNull(o.execution?.startedAt),
    finished_at: isoOrNull(o.execution?.finishedAt),
    late_ms: o.execution ? o.execution.createdAt - o.dueAt : null,
  };
}

export function scheduleView(s: Schedule, projectName: string, extra: { nextRuns?: PreviewRun[]; recent?: Occurrence[] } = {}): ScheduleView {
  return {
    id: s.id,
    project: projectName,
    project_id: s.projectId,
    name: s.name,
    command: s.command,
    argv: s.argv,
    args: s.args,
    cron: s.cron,
    timezone: s.timezone,
    timeout: s.timeoutSeconds,
    start_timeout: s.startTimeoutSeconds,
    overlap: s.overlap,
    misfire: s.misfire,
    catch_up_window: s.catchUpSeconds,
    health_every: s.healthEveryMinutes,
    health_deadline: isoOrNull(healthDeadline(s)),
    paused: s.paused,
    paused_reason: s.pausedReason,
    source: s.source,
    from_code: s.source === 'code',
    read_only: s.readOnly,
    next_run_at: isoOrNull(s.nextDueAt),
    last_success_at: isoOrNull(s.lastSuccessAt),
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
    created_by: s.createdBy,
    ...(extra.nextRuns ? { next_runs: extra.nextRuns.map(previewRunView) } : {}),
    ...(extra.recent ? { recent: extra.recent.map(occurrenceView) } : {}),
  };
}
