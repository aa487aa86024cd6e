/**
 * Retention: finished executions (with their output) older than a project's limit in days, and
 * the oldest finished ones beyond its limit in output bytes, are purged in the background.
 *
 * Limits: a project's own (set through the API or `djangocommand retention set`), else the
 * server-wide default (DJANGOCOMMAND_RETENTION_DAYS / _MAX_OUTPUT_BYTES; 0 or unset: no limit).
 * Never purged, whatever the limits:
 *  - an execution that has not finished (queued, awaiting approval, dispatched, running);
 *  - one that finished less than an hour ago (live tails, `--wait` callers, notifications about
 *    it are still reading it);
 *  - the newest 20 executions of each schedule (the schedule's "recent runs" view).
 * Purging goes in small transactions (at most 500 executions or 2,000 output chunks each) with a
 * pause between them, so requests go on meanwhile. One server process purges at a time (a lease
 * in the database). Each transaction that deletes executions appends its `retention.purge` audit
 * event (project, rule, how many, how much output, when they finished) before it commits: a crash
 * cannot leave a purge unrecorded. Audit events have their own retention rule (not this one).
 */
import { randomUUID } from 'node:crypto';
import type { Actor, NewAuditEvent, Project } from '../domain/model.js';
import type { ProjectRetention, PurgeCandidate, Purged } from '../store/retentionStore.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit, auditEvent, SYSTEM_ACTOR } from './audit.js';

export const DAY_MS = 24 * 3600_000;
/** Executions that finished more recently than this stay, whatever the limits. */
export const MIN_AGE_MS = 3600_000;
/** The newest runs of each schedule stay, whatever the limits (its page shows the last 20). */
export const KEEP_PER_SCHEDULE = 20;
const EXECUTIONS_PER_BATCH = 500;
const CHUNKS_PER_BATCH = 2_000;
/** Projects looked at between two turns of the event loop given to requests. */
const PROJECTS_PER_BREATH = 100;
/** The most days or bytes a limit may name (about 270 years; 1 PiB). */
const MAX_DAYS = 100_000;
const MAX_BYTES = 2 ** 50;

export interface RetentionLimits {
  /** Days after finishing; 0: no limit. */
  days: number;
  /** Output bytes the project keeps; 0: no limit. */
  maxOutputBytes: number;
}

export interface PurgeOptions {
  /** Executions per transaction (default 500). */
  batch?: number;
  /** Between two transactions (default: 10 ms), so requests are served meanwhile. */
  pause?: () => Promise<void>;
  signal?: AbortSignal;
  /** Renews the lease while purging; false when it was lost (another process purges now). */
  keepLease?: () => Promise<boolean>;
}

export interface PurgeReport {
  executions: number;
  outputBytes: number;
  /** Transactions that deleted executions. */
  batches: number;
  /** The projects it purged from (each deletion's audit event names its own). */
  projects: Array<{ projectId: string; executions: number; outputBytes: number }>;
}

/** A project's limits as applied: its own where set, else the server's. */
export function effectiveLimits(own: Pick<ProjectRetention, 'days' | 'maxOutputBytes'>, defaults: RetentionLimits): RetentionLimits {
  return { days: own.days ?? defaults.days, maxOutputBytes: own.maxOutputBytes ?? defaults.maxOutputBytes };
}

/** What a person asks for: a number, 0 (keep forever), or null (back to the server default). */
export interface RetentionChange {
  days?: number | null;
  maxOutputBytes?: number | null;
}

export async function setProjectRetention(core: Core, actor: Actor, project: Project, change: RetentionChange): Promise<ProjectRetention> {
  const check = (value: number | null | undefined, field: string, max: number) => {
    if (value === undefined || value === null) return;
    if (!Number.isSafeInteger(value) || value < 0 || value > max) {
      throw new UserError('DC_VALIDATION', `${field} must be a whole number from 0 (no limit) to ${max}, or null for the server default.`, { field });
    }
  };
  check(change.days, 'days', MAX_DAYS);
  check(change.maxOutputBytes, 'max_output_bytes', MAX_BYTES);
  const before = await core.store.retention.getProjectRetention(project.id);
  const after: ProjectRetention = {
    projectId: project.id,
    days: change.days === undefined ? before.days : change.days,
    maxOutputBytes: change.maxOutputBytes === undefined ? before.maxOutputBytes : change.maxOutputBytes,
  };
  await core.store.retention.setProjectRetention(after);
  await audit(core, actor, {
    action: 'project.retention.set',
    projectId: project.id,
    details: { days: after.days, max_output_bytes: after.maxOutputBytes, previous: { days: before.days, max_output_bytes: before.maxOutputBytes } },
  });
  return after;
}

/** One pass over every project; each deletion's audit event says what went. */
export async function purgeOnce(core: Core, defaults: RetentionLimits, opts: PurgeOptions = {}): Promise<PurgeReport> {
  const report: PurgeReport = { executions: 0, outputBytes: 0, batches: 0, projects: [] };
  const pause = opts.pause ?? (() => new Promise<void>((resolve) => setTimeout(resolve, 10)));
  const batch = opts.batch ?? EXECUTIONS_PER_BATCH;
  const stopped = async () => opts.signal?.aborted === true || (opts.keepLease !== undefined && !(await opts.keepLease()));
  // Without server-wide limits, only the projects with limits of their own: a pass over 10,000
  // projects that purge nothing would hold the event loop for each of them.
  const serverWide = defaults.days > 0 || defaults.maxOutputBytes > 0;
  let looked = 0;
  for (const own of await core.store.retention.listProjectRetention({ withOwnLimitsOnly: !serverWide })) {
    const limits = effectiveLimits(own, defaults);
    if (limits.days === 0 && limits.maxOutputBytes === 0) continue;
    if (await stopped()) break;
    // Each project's look is a query or two: requests are served every so often.
    if (++looked % PROJECTS_PER_BREATH === 0) await new Promise((resolve) => setImmediate(resolve));
    const done = { executions: 0, outputBytes: 0 };
    const purge = async (candidates: PurgeCandidate[], rule: 'days' | 'max_output_bytes') => {
      const record = (purged: Purged) =>
        auditEvent(core, SYSTEM_ACTOR, {
          action: 'retention.purge',
          projectId: own.projectId,
          details: {
            rule,
            executions: purged.executions,
            output_bytes: purged.outputBytes,
            finished_from: purged.finishedFrom,
            finished_to: purged.finishedTo,
            limits: { days: limits.days, max_output_bytes: limits.maxOutputBytes },
            own_limits: { days: own.days, max_output_bytes: own.maxOutputBytes },
          },
        });
      const r = await purgeCandidates(core, candidates, record, pause, opts.signal);
      done.executions += r.executions;
      done.outputBytes += r.outputBytes;
      report.batches += r.batches;
      return r;
    };
    const youngest = core.now() - MIN_AGE_MS;
    if (limits.days > 0) {
      const before = Math.min(youngest, core.now() - limits.days * DAY_MS);
      for (;;) {
        const candidates = await core.store.retention.listPurgeCandidates({ projectId: own.projectId, finishedBefore: before, keepPerSchedule: KEEP_PER_SCHEDULE, limit: batch });
        if (candidates.length === 0 || (await purge(candidates, 'days')).executions === 0 || (await stopped())) break;
        await pause();
      }
    }
    if (limits.maxOutputBytes > 0) {
      let excess = (await core.store.retention.projectOutputBytes(own.projectId)) - limits.maxOutputBytes;
      while (excess > 0 && !(await stopped())) {
        const candidates = await core.store.retention.listPurgeCandidates({ projectId: own.projectId, finishedBefore: youngest, keepPerSchedule: KEEP_PER_SCHEDULE, limit: batch });
        // Oldest first, only as many as it takes to get under the limit.
        const take: PurgeCandidate[] = [];
        let freed = 0;
        for (const c of candidates) {
          if (freed >= excess) break;
          take.push(c);
          freed += c.outputBytes;
        }
        if (take.length === 0) break;
        const r = await purge(take, 'max_output_bytes');
        if (r.executions === 0) break;
        excess -= r.outputBytes;
        await pause();
      }
    }
    if (done.executions > 0) {
      report.executions += done.executions;
      report.outputBytes += done.outputBytes;
      report.projects.push({ projectId: own.projectId, executions: done.executions, outputBytes: done.outputBytes });
    }
  }
  return report;
}

/**
 * Deletes these executions in transactions of at most `CHUNKS_PER_BATCH` output chunks: an
 * execution with more chunks has its output trimmed first, in ranges of that many.
 */
async function purgeCandidates(core: Core, candidates: PurgeCandidate[], record: (purged: Purged) => NewAuditEvent, pause: () => Promise<void>, signal?: AbortSignal) {
  const total = { executions: 0, outputBytes: 0, batches: 0 };
  let group: string[] = [];
  let groupChunks = 0;
  const flush = async () => {
    if (group.length === 0) return;
    const r = await core.store.retention.deleteExecutions(group, record);
    total.executions += r.executions;
    total.outputBytes += r.outputBytes;
    total.batches++;
    group = [];
    groupChunks = 0;
    await pause();
  };
  for (const c of candidates) {
    if (signal?.aborted) break;
    let chunks = c.outputChunks;
    if (chunks > CHUNKS_PER_BATCH) {
      for (let upTo = CHUNKS_PER_BATCH; upTo < c.outputLastSeq && !signal?.aborted; upTo += CHUNKS_PER_BATCH) {
        await core.store.retention.trimOutput(c.id, upTo);
        await pause();
      }
      chunks = CHUNKS_PER_BATCH;
    }
    if (groupChunks + chunks > CHUNKS_PER_BATCH) await flush();
    group.push(c.id);
    groupChunks += chunks;
  }
  if (!signal?.aborted) await flush();
  return total;
}

export interface RetentionLoopOptions {
  intervalMs: number;
  /** First pass this long after the start (default: a minute, so a start is not slowed). */
  firstAfterMs?: number;
  onReport?: (report: PurgeReport) => void;
  onError?: (err: unknown) => void;
}

/** Purges every `intervalMs` in the background until stopped; one process at a time holds the lease. */
export function startRetention(core: Core, defaults: RetentionLimits, opts: RetentionLoopOptions): { stop(): Promise<void> } {
  const holder = `retention-${randomUUID()}`;
  const stopping = new AbortController();
  const leaseMs = Math.max(60_000, 2 * opts.intervalMs);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  // Renewed now and then while purging, not once per project: 10,000 projects are not 10,000 writes.
  let renewedAt = 0;
  const keepLease = async () => {
    if (Date.now() - renewedAt < leaseMs / 4) return true;
    renewedAt = Date.now();
    return core.store.retention.claimLease(holder, core.now(), leaseMs);
  };
  const pass = async () => {
    try {
      if (!(await core.store.retention.claimLease(holder, core.now(), leaseMs))) return;
      renewedAt = Date.now();
      try {
        const report = await purgeOnce(core, defaults, { signal: stopping.signal, keepLease });
        opts.onReport?.(report);
      } finally {
        await core.store.retention.releaseLease(holder);
      }
    } catch (err) {
      opts.onError?.(err);
    }
  };
  const schedule = (ms: number) => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      running = pass().finally(() => schedule(opts.intervalMs));
    }, ms);
    timer.unref();
  };
  schedule(opts.firstAfterMs ?? Math.min(60_000, opts.intervalMs));
  return {
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
