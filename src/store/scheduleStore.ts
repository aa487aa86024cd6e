/**
 * The store's part for schedules and their occurrences (one row per schedule and due time:
 * exactly one execution per occurrence, also with several server processes). Implemented once
 * over SQLite and PostgreSQL in scheduleSql.ts.
 */
import type { NewOccurrence, Occurrence, OccurrenceOutcome, Schedule } from '../domain/schedule.js';

export type SchedulePatch = Partial<Omit<Schedule, 'id' | 'projectId' | 'createdAt' | 'createdBy'>>;

export interface OccurrencePatch {
  outcome?: OccurrenceOutcome;
  reason?: string | null;
  executionId?: string | null;
  open?: boolean;
  claimedBy?: string | null;
  claimedAt?: number | null;
  recordedAt?: number;
}

/** What the scheduler decided for one due schedule (see core/schedules/scheduler.ts). */
export interface DuePlan {
  /** The schedule's next due time after this pass (null: it never fires again). */
  nextDueAt: number | null;
  /** Occurrences to record; those already recorded (another server was first) are left alone. */
  occurrences: NewOccurrence[];
}

export interface ScheduleStore {
  createSchedule(schedule: Schedule): Promise<void>;
  getSchedule(id: string): Promise<Schedule | undefined>;
  /** Live schedules (not deleted), oldest first; of one project when given. */
  listSchedules(projectId?: string): Promise<Schedule[]>;
  /** Applies the patch unless the schedule is deleted; the schedule after it, or undefined. */
  updateSchedule(id: string, patch: SchedulePatch): Promise<Schedule | undefined>;
  /** The earliest next due time of any schedule (one indexed read), or null. */
  earliestDue(): Promise<number | null>;
  /** Up to `limit` schedules due by `until` (next due time reached), earliest first. */
  listDue(until: number, limit: number): Promise<Array<{ id: string; dueAt: number }>>;
  /**
   * Claims due schedules in one transaction: each whose next due time is still the one listed (no
   * other server moved it first; PostgreSQL skips rows another server holds) has it moved on and
   * the occurrences `plan` decides recorded (those already recorded are left alone). Returns the
   * schedules claimed, with the occurrences this call recorded.
   */
  claimDue(due: ReadonlyArray<{ id: string; dueAt: number }>, plan: (s: Schedule) => DuePlan): Promise<Array<{ schedule: Schedule; occurrences: NewOccurrence[] }>>;
  /** Links started occurrences to their executions in one transaction; per link, whether it held (still pending, claimed at `claimedAt`). */
  linkOccurrences(links: ReadonlyArray<{ scheduleId: string; dueAt: number; claimedAt: number | null; executionId: string; at: number }>): Promise<boolean[]>;
  /** Records an occurrence unless one exists for that schedule and due time; true when recorded. */
  insertOccurrence(o: NewOccurrence): Promise<boolean>;
  /** Applies the patch if the occurrence is in one of `from` (and, when given, claimed at `claimedAt`); true when it was. */
  updateOccurrence(scheduleId: string, dueAt: number, from: readonly OccurrenceOutcome[], patch: OccurrencePatch, claimedAt?: number | null): Promise<boolean>;
  getOccurrence(scheduleId: string, dueAt: number): Promise<Occurrence | undefined>;
  /** Newest first, with their executions' status; before `beforeDueAt` when given. */
  listOccurrences(scheduleId: string, limit: number, beforeDueAt?: number): Promise<Occurrence[]>;
  /** Occurrences of every live schedule in [from, to), newest first (the timeline). */
  listOccurrencesBetween(from: number, to: number, limit: number): Promise<Occurrence[]>;
  /** Pending occurrences claimed before `before` (their server died), and waiting ones. */
  listStuck(before: number): Promise<Occurrence[]>;
  listWaiting(): Promise<Occurrence[]>;
  /** Started occurrences whose execution has ended but which are not settled yet. */
  listEndedOpen(limit: number): Promise<Occurrence[]>;
  /** An execution of the schedule created at or after `since` that no occurrence links to. */
  findUnlinkedExecution(scheduleId: string, since: number): Promise<string | undefined>;
  /** Active executions (queued, dispatched, running...) the schedule created. */
  activeExecutionIds(scheduleId: string): Promise<string[]>;
  /** The same for many schedules in one query: schedule id → its active executions (absent: none). */
  activeExecutionsOf(scheduleIds: readonly string[]): Promise<Map<string, string[]>>;
  /** Records that the health deadline was notified; false when it already was (another server). */
  markHealthAlerted(id: string, deadline: number): Promise<boolean>;
  /** Schedules whose health deadline passed at `now` and was not notified yet. */
  listHealthOverdue(now: number): Promise<Schedule[]>;
}
