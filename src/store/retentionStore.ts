/**
 * The store's part for retention: per-project limits (an override of the server-wide default),
 * and purging finished executions with their output in small transactions. Implemented once
 * over SQLite and PostgreSQL in retentionSql.ts; the policy (what to purge when) is
 * core/retention.ts.
 */

import type { NewAuditEvent } from '../domain/model.js';

/** A project's own limits; null: the server-wide default applies. 0: no limit. */
export interface ProjectRetention {
  projectId: string;
  days: number | null;
  maxOutputBytes: number | null;
}

/** A finished execution that may be purged, oldest first. */
export interface PurgeCandidate {
  id: string;
  outputBytes: number;
  /** Highest stored output seq: its chunks are deleted in ranges up to it. */
  outputLastSeq: number;
  outputChunks: number;
}

/** What one deletion removed. */
export interface Purged {
  executions: number;
  outputBytes: number;
  /** When the first and the last of them finished (unix ms); null when none went. */
  finishedFrom: number | null;
  finishedTo: number | null;
}

export interface CandidateQuery {
  projectId: string;
  /** Only executions that finished before this (unix ms). */
  finishedBefore: number;
  /** The newest this many executions of each schedule are kept whatever their age. */
  keepPerSchedule: number;
  limit: number;
}

export interface RetentionStore {
  getProjectRetention(projectId: string): Promise<ProjectRetention>;
  setProjectRetention(r: ProjectRetention): Promise<void>;
  /** Every project's limits (null where it has none of its own); `withOwnLimitsOnly`: those with a limit above 0 of their own. */
  listProjectRetention(opts?: { withOwnLimitsOnly?: boolean }): Promise<ProjectRetention[]>;
  /** Finished executions of the project that the rules allow to purge, oldest finished first. */
  listPurgeCandidates(q: CandidateQuery): Promise<PurgeCandidate[]>;
  /** Output bytes the project's executions hold. */
  projectOutputBytes(projectId: string): Promise<number>;
  /** Deletes the execution's output chunks with seq <= `upToSeq` (one transaction); rows deleted. */
  trimOutput(executionId: string, upToSeq: number): Promise<number>;
  /**
   * Deletes these executions with everything stored under them, in one transaction; only those
   * still finished are touched. The audit event `record` makes of what went is appended in the
   * same transaction (none when nothing went): a crash cannot leave a purge unrecorded.
   */
  deleteExecutions(ids: readonly string[], record: (purged: Purged) => NewAuditEvent): Promise<Purged>;
  /**
   * Takes the retention lease for `ms` unless another process holds it: one replica purges at a
   * time. True when `holder` has it now.
   */
  claimLease(holder: string, now: number, ms: number): Promise<boolean>;
  releaseLease(holder: string): Promise<void>;
}
