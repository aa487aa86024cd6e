/**
 * Starting one occurrence that this server holds (claimed `pending`): the overlap policy, then
 * `createExecution` (the same checks and concurrency limit as any run), then the link from the
 * occurrence to its execution. Whatever stops it is recorded on the occurrence in words, and
 * raised as `schedule.missed`: an occurrence never disappears silently.
 */
import type { Actor, Project } from '../../domain/model.js';
import type { Occurrence, NewOccurrence, Schedule } from '../../domain/schedule.js';
import { isUserError, UserError } from '../../shared/errors.js';
import type { Core } from '../context.js';
import { createExecution, cancelExecution } from '../executions.js';
import { raise } from '../notify.js';

type Held = Pick<NewOccurrence, 'scheduleId' | 'dueAt' | 'claimedAt' | 'trigger'>;

export interface FireResult {
  outcome: 'started' | 'waiting' | 'skipped' | 'refused' | 'lost_race';
  executionId?: string;
  reason?: string;
  /** The refusal, for a caller who asked for this run (run now). */
  error?: UserError;
}

/** Who an execution's history says created it. */
export function scheduleActor(s: Pick<Schedule, 'id' | 'name'>): Actor {
  return { type: 'system', id: null, label: `schedule ${s.name ? `"${s.name}"` : s.id.slice(0, 8)}`, address: null };
}

export function scheduleLabel(s: Pick<Schedule, 'id' | 'name' | 'command'>): string {
  return s.name ?? `${s.command} (${s.id.slice(0, 8)})`;
}

export async function raiseMissed(core: Core, s: Schedule, o: Pick<Occurrence, 'dueAt' | 'count' | 'lastDueAt'>, outcome: string, reason: string): Promise<void> {
  await raise(core, {
    type: 'schedule.missed',
    projectId: s.projectId,
    scheduleId: s.id,
    details: {
      schedule_id: s.id,
      schedule_name: scheduleLabel(s),
      command: s.command,
      args: s.args,
      due_at: new Date(o.dueAt).toISOString(),
      ...(o.count > 1 ? { last_due_at: new Date(o.lastDueAt).toISOString(), occurrences: o.count } : {}),
      outcome,
      reason,
    },
  });
}

/** Links the held occurrence to its execution; false when it is no longer held (another server took it over). */
export type Link = (held: Held, executionId: string) => Promise<boolean>;

const linkNow = (core: Core): Link => async (held, executionId) =>
  (await core.store.schedules.linkOccurrences([{ scheduleId: held.scheduleId, dueAt: held.dueAt, claimedAt: held.claimedAt, executionId, at: core.now() }]))[0];

/** What the scheduler reads once for the many occurrences it starts together. */
export interface Shared {
  link?: Link;
  /** The schedule's active executions. */
  active?: string[];
  project?: (id: string) => Promise<Project | undefined>;
}

export async function fireOccurrence(core: Core, s: Schedule, held: Held, shared: Shared = {}): Promise<FireResult> {
  const link = shared.link ?? linkNow(core);
  const active = shared.active;
  const settle = async (outcome: 'skipped' | 'refused' | 'waiting', reason: string, error?: UserError): Promise<FireResult> => {
    const done = await core.store.schedules.updateOccurrence(s.id, held.dueAt, ['pending'], { outcome, reason, recordedAt: core.now() }, held.claimedAt);
    if (!done) return { outcome: 'lost_race' };
    if (outcome !== 'waiting' && held.trigger !== 'manual') await raiseMissed(core, s, { dueAt: held.dueAt, count: 1, lastDueAt: held.dueAt }, outcome, reason);
    return { outcome, reason, error };
  };
  const busy = async (why: string): Promise<FireResult> => {
    if (held.trigger === 'manual') {
      return settle('skipped', `${why}: run now waits for nothing`, new UserError('DC_CONCURRENCY_LIMIT', `Schedule ${scheduleLabel(s)}: ${why}. Wait for it to end, or cancel it.`, 409));
    }
    if (s.overlap === 'queue') {
      const waiting = (await core.store.schedules.listWaiting()).filter((o) => o.scheduleId === s.id);
      if (waiting.length === 0) {
        const until = new Date(held.dueAt + s.startTimeoutSeconds * 1000).toISOString();
        return settle('waiting', `${why}; waits for it to end (overlap: queue), until ${until}`);
      }
      return settle('skipped', `${why}, and an earlier occurrence already waits (overlap: queue holds one)`);
    }
    return settle('skipped', `${why} (overlap: skip)`);
  };

  const running = active ?? (await core.store.schedules.activeExecutionIds(s.id));
  if (running.length > 0) return busy(`the previous run (execution ${running[0]}) was still active`);

  const project = await (shared.project ?? ((id: string) => core.store.getProject(id)))(s.projectId);
  if (!project) return settle('refused', 'its project no longer exists');
  // A queued occurrence keeps the start deadline of its due time, not of the moment it starts.
  const deadline = held.dueAt + s.startTimeoutSeconds * 1000;
  const startTimeoutSeconds = Math.max(1, Math.ceil((deadline - core.now()) / 1000));
  let executionId: string;
  try {
    const e = await createExecution(core, scheduleActor(s), project, {
      command: s.command,
      argv: s.argv,
      timeoutSeconds: s.timeoutSeconds ?? undefined,
      startTimeoutSeconds: held.trigger === 'manual' ? s.startTimeoutSeconds : Math.min(s.startTimeoutSeconds, startTimeoutSeconds),
      scheduleId: s.id,
    });
    executionId = e.id;
  } catch (err) {
    if (!isUserError(err)) throw err; // the database went away: the occurrence stays pending and is taken over
    if (err.code === 'DC_CONCURRENCY_LIMIT') {
      const others = (err.details?.active as string[] | undefined) ?? [];
      const res = await busy(`"${s.command}" was already running (execution ${others[0] ?? '?'}; at most ${String(err.details?.limit ?? 1)} at a time)`);
      return { ...res, error: err };
    }
    return settle('refused', err.message, err);
  }
  const linked = await link(held, executionId);
  if (!linked) {
    // Another server took this occurrence over while we were slow, and may have made its own
    // execution: keep exactly one. Ours goes unless it is the one the occurrence links to.
    let o = await core.store.schedules.getOccurrence(s.id, held.dueAt);
    for (let i = 0; i < 50 && o?.outcome === 'pending'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      o = await core.store.schedules.getOccurrence(s.id, held.dueAt);
    }
    if (o?.executionId !== executionId) {
      await cancelExecution(core, scheduleActor(s), executionId, true).catch(() => undefined);
      return { outcome: 'lost_race' };
    }
  }
  return { outcome: 'started', executionId };
}
