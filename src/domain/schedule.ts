/**
 * Schedules and their occurrences.
 *
 * Glossary:
 * - schedule: a command with arguments, a cron expression and a time zone, and the policies below.
 * - occurrence: one due time of a schedule (or one "run now"), stored once: the database's unique
 *   key on (schedule, due time) is what makes "exactly one execution per occurrence" hold with
 *   several server processes and across a crash.
 * - overlap: what an occurrence does while the schedule's previous run is still active:
 *   `skip` (recorded as skipped) or `queue` (waits for it, up to its start deadline; at most one
 *   occurrence waits, a further one is skipped).
 * - misfire: occurrences the servers did not fire on time (all were down). Older than the
 *   catch-up window: recorded as missed. Within it: `run_once` runs the latest of them once, now;
 *   `skip` records them as missed.
 * - health check: the schedule expects a success at least every N minutes; when none came, one
 *   `schedule.health` event per miss.
 *
 * An occurrence's outcome:
 *   pending ──▶ started (an execution exists; it may still end `expired`: then ──▶ missed)
 *      │    ──▶ waiting (queue: the previous run is active) ──▶ started | missed
 *      └──▶ skipped (overlap) | missed (misfire, paused) | refused (the runner's policy, arguments, unknown command)
 * source: where a schedule is defined: `api` (the CLI, the REST API, the dashboard) or `code`
 *   (DJANGOCOMMAND_SCHEDULES in the Django settings, reported by a v2 runner; read-only outside a
 *   deploy). A code schedule's name is its key in the project.
 * `pending` lasts milliseconds; one left behind by a server that died is taken over by another
 * after OCCURRENCE_LEASE_MS, which first adopts the execution the dead one may have created.
 * Pure: no I/O.
 */

export const OVERLAP_POLICIES = ['skip', 'queue'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];
export const SCHEDULE_SOURCES = ['api', 'code'] as const;
export type ScheduleSource = (typeof SCHEDULE_SOURCES)[number];
export const MISFIRE_POLICIES = ['run_once', 'skip'] as const;
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number];

export const OCCURRENCE_OUTCOMES = ['pending', 'waiting', 'started', 'skipped', 'missed', 'refused'] as const;
export type OccurrenceOutcome = (typeof OCCURRENCE_OUTCOMES)[number];
export const OCCURRENCE_TRIGGERS = ['cron', 'catch_up', 'manual'] as const;
export type OccurrenceTrigger = (typeof OCCURRENCE_TRIGGERS)[number];

/** Later than this after its due time, an occurrence is a misfire (the servers were down). */
export const MISFIRE_GRACE_MS = 60_000;
/** A `pending` occurrence older than this belongs to a server that died: another takes it over. */
export const OCCURRENCE_LEASE_MS = 15_000;
export const DEFAULT_CATCH_UP_SECONDS = 3600;
export const MAX_HEALTH_EVERY_MINUTES = 366 * 24 * 60;

export interface Schedule {
  id: string;
  projectId: string;
  name: string | null;
  command: string;
  argv: string[];
  /** The arguments as one shell-quoted string, as executions keep them. */
  args: string;
  cron: string;
  timezone: string;
  /** null: the server's default timeout at the time of each run. */
  timeoutSeconds: number | null;
  /** Seconds a runner has to start an occurrence's execution; then the occurrence is missed. */
  startTimeoutSeconds: number;
  overlap: OverlapPolicy;
  misfire: MisfirePolicy;
  catchUpSeconds: number;
  healthEveryMinutes: number | null;
  /** Its executions run in read-only database mode (their command's defaults may make them so too). */
  readOnly: boolean;
  paused: boolean;
  pausedAt: number | null;
  /** Why it is paused when no person paused it (a code schedule of the same name took over). */
  pausedReason: string | null;
  source: ScheduleSource;
  /** The next occurrence to fire; null while paused (or when the expression never fires again). */
  nextDueAt: number | null;
  lastSuccessAt: number | null;
  /** Health is counted from here when no success came since (creation, resume, health change). */
  healthSince: number;
  /** The health deadline already notified (once per miss). */
  healthAlertedFor: number | null;
  createdAt: number;
  updatedAt: number;
  createdBy: string;
  deletedAt: number | null;
}

export interface OccurrenceExecution {
  status: string;
  exitCode: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface Occurrence {
  scheduleId: string;
  projectId: string;
  dueAt: number;
  trigger: OccurrenceTrigger;
  outcome: OccurrenceOutcome;
  /** Why no execution started (or why it was missed), in words. */
  reason: string | null;
  executionId: string | null;
  /** A gap recorded as one row (downtime, a pause): how many occurrences and the last of them. */
  count: number;
  lastDueAt: number;
  recordedAt: number;
  claimedBy: string | null;
  claimedAt: number | null;
  /** Its execution has not ended yet (the scheduler settles it when it does). */
  open: boolean;
  execution?: OccurrenceExecution;
}

export type NewOccurrence = Omit<Occurrence, 'execution'>;

/** When the health check next expects a success (null: no health check, or paused). */
export function healthDeadline(s: Pick<Schedule, 'healthEveryMinutes' | 'paused' | 'lastSuccessAt' | 'healthSince'>): number | null {
  if (s.healthEveryMinutes === null || s.paused) return null;
  return Math.max(s.lastSuccessAt ?? 0, s.healthSince) + s.healthEveryMinutes * 60_000;
}

/** What the schedule's strip shows for an occurrence: its execution's status, or its outcome. */
export function occurrenceResult(o: Pick<Occurrence, 'outcome' | 'execution'>): string {
  if (o.outcome === 'started' && o.execution) return o.execution.status;
  return o.outcome;
}
