/**
 * The scheduler every server process runs. Precise and cheap: it sleeps until the earliest next
 * due time (one indexed read), woken early when schedules change (`topics.schedules`, carried
 * across replicas by PostgreSQL LISTEN/NOTIFY), and fires what is due. Several processes may
 * fire at once: each occurrence is claimed in the database (unique key on schedule + due time,
 * and a conditional move of the schedule's next due time), so exactly one of them starts it.
 *
 * Every few seconds it also looks after occurrences in flight: takes over those a dead server
 * left `pending` (adopting the execution it may already have made), starts `waiting` ones whose
 * previous run ended, records as missed those whose execution expired unstarted, keeps each
 * schedule's last success, and raises `schedule.health` once per missed health deadline.
 */
import { randomUUID } from 'node:crypto';
import type { NewOccurrence, Schedule } from '../../domain/schedule.js';
import { MISFIRE_GRACE_MS, OCCURRENCE_LEASE_MS, healthDeadline } from '../../domain/schedule.js';
import { nextOccurrence, occurrencesBetween } from '../../domain/scheduleCron.js';
import type { DuePlan } from '../../store/scheduleStore.js';
import type { Core } from '../context.js';
import { topics } from '../notifier.js';
import { raise } from '../notify.js';
import { fireOccurrence, fireOccurrences, raiseMissed, scheduleLabel, type Firing, type Link } from './fireOccurrence.js';

export interface SchedulerOptions {
  /** This process, as occurrences name who claimed them. */
  owner?: string;
  /** How long a `pending` occurrence may stay so before another server takes it over. */
  leaseMs?: number;
  /** Schedules claimed per read. */
  batch?: number;
  /** Occurrences started at once (each is a few queries; PostgreSQL serves them in parallel). */
  parallel?: number;
  /** How often the occurrences in flight are looked after. */
  housekeepingMs?: number;
  /**
   * Claims occurrences this long before they are due (recorded, not started), so that at the due
   * time only the executions are made. 0 (the default, for tests on a fake clock) claims at the
   * due time; the server uses CLAIM_AHEAD_MS.
   */
  claimAheadMs?: number;
}

export const CLAIM_AHEAD_MS = 1500;

export interface PassReport {
  started: number;
  skipped: number;
  waiting: number;
  refused: number;
  missed: number;
  adopted: number;
  settled: number;
  healthAlerts: number;
}

const emptyReport = (): PassReport => ({ started: 0, skipped: 0, waiting: 0, refused: 0, missed: 0, adopted: 0, settled: 0, healthAlerts: 0 });

/** What to record for a schedule found due at `now`: on time, or a misfire after downtime. */
export function planDue(s: Schedule, now: number, owner: string): DuePlan {
  const due = s.nextDueAt!;
  const occurrence = (o: Partial<NewOccurrence> & Pick<NewOccurrence, 'dueAt' | 'outcome'>): NewOccurrence => ({
    scheduleId: s.id,
    projectId: s.projectId,
    trigger: 'cron',
    reason: null,
    executionId: null,
    count: 1,
    lastDueAt: o.dueAt,
    recordedAt: now,
    claimedBy: o.outcome === 'pending' ? owner : null,
    claimedAt: o.outcome === 'pending' ? now : null,
    open: false,
    ...o,
  });
  if (now - due <= MISFIRE_GRACE_MS) {
    return { nextDueAt: nextOccurrence(s.cron, s.timezone, due), occurrences: [occurrence({ dueAt: due, outcome: 'pending' })] };
  }
  // Misfire: no server fired these in time (all were down, or the database was).
  const occurrences: NewOccurrence[] = [];
  const windowStart = now - s.catchUpSeconds * 1000;
  const gap = (from: number, to: number, reason: (n: string) => string) => {
    const c = occurrencesBetween(s.cron, s.timezone, from, to);
    if (c.count === 0) return;
    const n = `${c.capped ? 'at least ' : ''}${c.count} occurrence${c.count === 1 ? '' : 's'}`;
    occurrences.push(occurrence({ dueAt: c.first!, lastDueAt: c.last!, count: c.count, outcome: 'missed', reason: reason(n) }));
  };
  gap(due, Math.min(windowStart, now + 1), (n) => `${n} not fired in time (servers or database down), older than the catch-up window (${s.catchUpSeconds} s): not run`);
  const inWindow = occurrencesBetween(s.cron, s.timezone, Math.max(due, windowStart), now + 1);
  if (inWindow.count > 0) {
    if (s.misfire === 'run_once') {
      const last = inWindow.last!;
      if (inWindow.count > 1) {
        gap(Math.max(due, windowStart), last, (n) => `${n} not fired in time (servers or database down); misfire run_once: one catch-up run at ${new Date(last).toISOString()} stands for them`);
      }
      occurrences.push(occurrence({ dueAt: last, outcome: 'pending', trigger: 'catch_up' }));
    } else {
      gap(Math.max(due, windowStart), now + 1, (n) => `${n} not fired in time (servers or database down); misfire policy skip: not run`);
    }
  }
  return { nextDueAt: nextOccurrence(s.cron, s.timezone, now), occurrences };
}

export class Scheduler {
  readonly owner: string;
  private readonly leaseMs: number;
  private readonly batch: number;
  private readonly parallel: number;
  readonly housekeepingMs: number;
  private readonly claimAheadMs: number;

  constructor(
    private readonly core: Core,
    opts: SchedulerOptions = {},
  ) {
    this.owner = opts.owner ?? randomUUID();
    this.leaseMs = opts.leaseMs ?? OCCURRENCE_LEASE_MS;
    this.batch = opts.batch ?? 200;
    this.parallel = opts.parallel ?? 8;
    this.housekeepingMs = opts.housekeepingMs ?? 2000;
    this.claimAheadMs = opts.claimAheadMs ?? 0;
  }

  /** One whole pass: fire what is due, then look after what is in flight. Tests call it with their clock. */
  async pass(): Promise<PassReport> {
    const report = await this.fireDue();
    const more = await this.housekeeping();
    for (const k of Object.keys(report) as Array<keyof PassReport>) report[k] += more[k];
    return report;
  }

  /**
   * Fires every occurrence due now (and claims those due within the claim-ahead time, then waits
   * for their due time): claims in batches, one transaction each, then starts them in parallel
   * lanes, linking occurrences to their executions a few at a time.
   */
  async fireDue(): Promise<PassReport> {
    const report = emptyReport();
    for (;;) {
      // Claim in batches for as long as the earliest claimed occurrence is not due yet, so that a
      // burst of thousands due in the same second is all claimed ahead and only made at the due time.
      const now = this.core.now();
      const claimed: Array<{ schedule: Schedule; occurrences: NewOccurrence[] }> = [];
      let more: boolean;
      let earliest = Infinity;
      do {
        const due = shuffle(await this.core.store.schedules.listDue(this.core.now() + this.claimAheadMs, this.batch));
        const at = this.core.now();
        for (let i = 0; i < due.length; i += CLAIM_BATCH) {
          const made = await this.core.store.schedules.claimDue(due.slice(i, i + CLAIM_BATCH), (s) => planDue(s, Math.max(at, s.nextDueAt!), this.owner));
          for (const c of made) for (const o of c.occurrences) if (o.outcome === 'pending') earliest = Math.min(earliest, o.dueAt);
          claimed.push(...made);
        }
        more = due.length === this.batch;
      } while (more && claimed.length < MAX_CLAIMED_AHEAD && earliest > this.core.now());
      const byDue = new Map<number, { firings: Firing[]; missed: Array<() => Promise<void>> }>();
      const at = (t: number) => byDue.get(t) ?? byDue.set(t, { firings: [], missed: [] }).get(t)!;
      for (const { schedule, occurrences } of claimed) {
        for (const o of occurrences) {
          if (o.outcome === 'pending') {
            at(o.dueAt).firings.push({ schedule, held: o });
          } else {
            at(now).missed.push(async () => {
              report.missed += o.count;
              await raiseMissed(this.core, schedule, o, o.outcome, o.reason ?? '');
            });
          }
        }
      }
      const link = batchedLink(this.core);
      const project = memo((id: string) => this.core.store.getProject(id));
      const scheduleIds = claimed.map((c) => c.schedule.id);
      for (const t of [...byDue.keys()].sort((x, y) => x - y)) {
        const wait = t - this.core.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const { firings, missed } = byDue.get(t)!;
        // Whether each schedule's previous run is still active, read at the due time, for all at once.
        const active = await this.core.store.schedules.activeExecutionsOf(scheduleIds);
        // A project's occurrences together: a lane locks the projects of its chunk while it creates.
        firings.sort((x, y) => (x.schedule.projectId < y.schedule.projectId ? -1 : x.schedule.projectId > y.schedule.projectId ? 1 : 0));
        const chunks = Array.from({ length: Math.ceil(firings.length / FIRE_CHUNK) }, (_, i) => firings.slice(i * FIRE_CHUNK, (i + 1) * FIRE_CHUNK));
        await inParallel(
          [
            ...chunks.map((chunk) => async () => {
              for (const r of await fireOccurrences(this.core, chunk, { link, project, active })) count(report, r.outcome);
            }),
            ...missed,
          ],
          this.parallel,
        );
      }
      if (!more) return report;
    }
  }

  async housekeeping(): Promise<PassReport> {
    const report = emptyReport();
    const core = this.core;
    const schedules = core.store.schedules;
    const now = core.now();
    const scheduleOf = memo((id: string) => schedules.getSchedule(id));

    // Occurrences a dead server left pending: take over; adopt the execution it may have made.
    for (const o of await schedules.listStuck(now - this.leaseMs)) {
      const s = await scheduleOf(o.scheduleId);
      if (!s) continue;
      if (!(await schedules.updateOccurrence(o.scheduleId, o.dueAt, ['pending'], { claimedBy: this.owner, claimedAt: now }, o.claimedAt))) continue;
      report.adopted++;
      const orphan = await schedules.findUnlinkedExecution(o.scheduleId, o.dueAt - MISFIRE_GRACE_MS);
      if (orphan) {
        await schedules.updateOccurrence(o.scheduleId, o.dueAt, ['pending'], { outcome: 'started', executionId: orphan, open: true, recordedAt: now }, now);
        report.started++;
      } else {
        count(report, (await fireOccurrence(core, s, { ...o, claimedAt: now })).outcome);
      }
    }

    // Executions of occurrences that ended: an expired one means the occurrence was missed.
    for (const o of await schedules.listEndedOpen(500)) {
      const s = await scheduleOf(o.scheduleId);
      const e = o.execution!;
      if (e.status === 'expired') {
        const reason = `no runner started its execution ${o.executionId} before the start deadline (${s?.startTimeoutSeconds ?? '?'} s): is a runner of the project online?`;
        if (await schedules.updateOccurrence(o.scheduleId, o.dueAt, ['started'], { outcome: 'missed', open: false, reason })) {
          report.missed++;
          if (s) await raiseMissed(core, s, o, 'missed', reason);
        }
      } else if (await schedules.updateOccurrence(o.scheduleId, o.dueAt, ['started'], { open: false })) {
        report.settled++;
        const fresh = await schedules.getSchedule(o.scheduleId);
        const at = e.finishedAt ?? now;
        if (fresh && e.status === 'succeeded' && (fresh.lastSuccessAt ?? 0) < at) await schedules.updateSchedule(o.scheduleId, { lastSuccessAt: at });
      }
    }

    // Queued occurrences: start one when its schedule's previous run has ended; missed past its deadline.
    for (const o of await schedules.listWaiting()) {
      const s = await scheduleOf(o.scheduleId);
      if (!s) continue;
      const deadline = o.dueAt + s.startTimeoutSeconds * 1000;
      const stopped = s.deletedAt !== null ? 'deleted' : s.paused ? 'paused' : null;
      if (now >= deadline || stopped) {
        const reason = stopped
          ? `the schedule was ${stopped} while this occurrence waited for the previous run (overlap: queue)`
          : `the previous run was still active at its start deadline (${s.startTimeoutSeconds} s after it was due; overlap: queue)`;
        if (await schedules.updateOccurrence(o.scheduleId, o.dueAt, ['waiting'], { outcome: 'missed', reason, recordedAt: now })) {
          report.missed++;
          await raiseMissed(core, s, o, 'missed', reason);
        }
        continue;
      }
      if ((await schedules.activeExecutionIds(s.id)).length > 0) continue;
      if (!(await schedules.updateOccurrence(o.scheduleId, o.dueAt, ['waiting'], { outcome: 'pending', claimedBy: this.owner, claimedAt: now }))) continue;
      count(report, (await fireOccurrence(core, s, { ...o, claimedAt: now })).outcome);
    }

    // Health checks: a success expected at least every N minutes.
    for (const s of await schedules.listHealthOverdue(now)) {
      const deadline = healthDeadline(s)!;
      if (!(await schedules.markHealthAlerted(s.id, deadline))) continue;
      report.healthAlerts++;
      const since = s.lastSuccessAt !== null && s.lastSuccessAt >= s.healthSince ? `its last success was at ${new Date(s.lastSuccessAt).toISOString()}` : `it has not succeeded since ${new Date(s.healthSince).toISOString()}`;
      await raise(core, {
        type: 'schedule.health',
        projectId: s.projectId,
        scheduleId: s.id,
        details: {
          schedule_id: s.id,
          schedule_name: scheduleLabel(s),
          command: s.command,
          due_at: new Date(deadline).toISOString(),
          reason: `expected a success at least every ${s.healthEveryMinutes} minutes; ${since}`,
        },
      });
    }
    return report;
  }

  /**
   * Runs until stopped: fire what is due, sleep until the next due time (or a change of
   * schedules, or the next housekeeping), again. Failures (the database away) are reported and
   * retried after a second; they never end the loop.
   */
  start(onError: (err: unknown) => void): { stop(): Promise<void> } {
    let stopped = false;
    let wake: (() => void) | undefined;
    const unsubscribe = this.core.notifier.subscribe(topics.schedules, () => wake?.());
    let lastHousekeeping = 0;
    const loop = async () => {
      while (!stopped) {
        let delay = 1000;
        try {
          await this.fireDue();
          if (Date.now() - lastHousekeeping >= this.housekeepingMs) {
            lastHousekeeping = Date.now();
            await this.housekeeping();
          }
          const next = await this.core.store.schedules.earliestDue();
          const untilHousekeeping = lastHousekeeping + this.housekeepingMs - Date.now();
          delay = Math.max(0, Math.min(untilHousekeeping, next === null ? Infinity : next - this.claimAheadMs - this.core.now()));
        } catch (err) {
          if (stopped) return;
          onError(err);
        }
        if (delay > 0 && !stopped) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, delay);
            function done() {
              clearTimeout(timer);
              wake = undefined;
              resolve();
            }
            wake = done;
          });
        }
      }
    };
    const running = loop();
    return {
      async stop() {
        stopped = true;
        unsubscribe();
        wake?.();
        await running;
      },
    };
  }
}

function count(report: PassReport, outcome: string): void {
  if (outcome === 'started') report.started++;
  else if (outcome === 'skipped') report.skipped++;
  else if (outcome === 'waiting') report.waiting++;
  else if (outcome === 'refused') report.refused++;
}

async function inParallel(work: Array<() => Promise<void>>, n: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < work.length) {
      const job = work[next++];
      try {
        await job();
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, work.length) }, lane));
  if (errors.length > 0) throw new Error(`${errors.length} group(s) of occurrences could not be started; they are taken over later`, { cause: errors[0] });
}

const CLAIM_BATCH = 50;
/** Occurrences claimed ahead before any is started (a bound on one pass's memory). */
const MAX_CLAIMED_AHEAD = 20_000;
/** Occurrences made in one createExecutions (one transaction for the executions, one for their audit events). */
const FIRE_CHUNK = 100;

/**
 * Links occurrences to their executions in one transaction per few: the lanes that ask within the
 * same few milliseconds share a commit (on PostgreSQL each commit waits for the disk).
 */
function batchedLink(core: Core): Link {
  let queue: Array<{ link: Parameters<typeof core.store.schedules.linkOccurrences>[0][number]; done: (held: boolean) => void; fail: (err: unknown) => void }> = [];
  const flush = () => {
    const batch = queue;
    queue = [];
    core.store.schedules.linkOccurrences(batch.map((b) => b.link)).then(
      (held) => batch.forEach((b, i) => b.done(held[i])),
      (err) => batch.forEach((b) => b.fail(err)),
    );
  };
  return (held, executionId) =>
    new Promise<boolean>((done, fail) => {
      if (queue.length === 0) setTimeout(flush, 2);
      queue.push({ link: { scheduleId: held.scheduleId, dueAt: held.dueAt, claimedAt: held.claimedAt, executionId, at: core.now() }, done, fail });
    });
}

/** Two servers walking the same due list in the same order would queue behind each other's claims. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function memo<T>(fn: (id: string) => Promise<T>): (id: string) => Promise<T> {
  const cache = new Map<string, Promise<T>>();
  return (id) => {
    let p = cache.get(id);
    if (!p) cache.set(id, (p = fn(id)));
    return p;
  };
}
