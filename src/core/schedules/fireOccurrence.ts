/**
 * Starting occurrences that this server holds (claimed `pending`): the overlap policy, then
 * `createExecutions` (the same checks and concurrency limit as any run), then the link from each
 * occurrence to its execution. Whatever stops it is recorded on the occurrence in words, and
 * raised as `schedule.missed`: an occurrence never disappears silently.
 */
import type { Actor, Project } from '../../domain/model.js';
import type { Occurrence, NewOccurrence, Schedule } from '../../domain/schedule.js';
import { UserError } from '../../shared/errors.js';
import type { Core } from '../context.js';
import { cancelExecution, createExecutions, type ExecutionRequest } from '../executions.js';
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
  /** Active executions by schedule id, read for all of them at once. */
  active?: Map<string, string[]>;
  project?: (id: string) => Promise<Project | undefined>;
}

export interface Firing {
  schedule: Schedule;
  held: Held;
}

export async function fireOccurrence(core: Core, s: Schedule, held: Held, shared: Shared = {}): Promise<FireResult> {
  return (await fireOccurrences(core, [{ schedule: s, held }], shared))[0];
}

/**
 * Starts occurrences this server holds, together: the overlap policy for each, then one
 * createExecutions for all of them (the same checks and limits as any run, in a few commits), then
 * each occurrence's link to its execution.
 */
export async function fireOccurrences(core: Core, firings: readonly Firing[], shared: Shared = {}): Promise<FireResult[]> {
  const link = shared.link ?? linkNow(core);
  const projectOf = shared.project ?? ((id: string) => core.store.getProject(id));
  const results: FireResult[] = new Array(firings.length);
  const toCreate: Array<{ at: number; request: ExecutionRequest }> = [];
  for (const [at, { schedule: s, held }] of firings.entries()) {
    const running = shared.active?.get(s.id) ?? (await core.store.schedules.activeExecutionIds(s.id));
    if (running.length > 0) {
      results[at] = await busy(core, s, held, `the previous run (execution ${running[0]}) was still active`);
      continue;
    }
    const project = await projectOf(s.projectId);
    if (!project) {
      results[at] = await settle(core, s, held, 'refused', 'its project no longer exists');
      continue;
    }
    // A queued occurrence keeps the start deadline of its due time, not of the moment it starts.
    const deadline = held.dueAt + s.startTimeoutSeconds * 1000;
    const startTimeoutSeconds = Math.max(1, Math.ceil((deadline - core.now()) / 1000));
    toCreate.push({
      at,
      request: {
        actor: scheduleActor(s),
        project,
        input: {
          command: s.command,
          argv: s.argv,
          timeoutSeconds: s.timeoutSeconds ?? undefined,
          startTimeoutSeconds: held.trigger === 'manual' ? s.startTimeoutSeconds : Math.min(s.startTimeoutSeconds, startTimeoutSeconds),
          scheduleId: s.id,
          readOnly: s.readOnly,
        },
      },
    });
  }
  // A failure of the database throws: the occurrences stay pending and are taken over.
  const made = await createExecutions(core, toCreate.map((c) => c.request));
  await Promise.all(
    toCreate.map(async ({ at }, i) => {
      const { schedule, held } = firings[at];
      const m = made[i];
      results[at] = m instanceof UserError ? await refused(core, schedule, held, m) : await linkTo(core, schedule, held, m.id, link);
    }),
  );
  return results;
}

async function refused(core: Core, s: Schedule, held: Held, err: UserError): Promise<FireResult> {
  if (err.code !== 'DC_CONCURRENCY_LIMIT') return settle(core, s, held, 'refused', err.message, err);
  const others = (err.details?.active as string[] | undefined) ?? [];
  const res = await busy(core, s, held, `"${s.command}" was already running (execution ${others[0] ?? '?'}; at most ${String(err.details?.limit ?? 1)} at a time)`);
  return { ...res, error: err };
}

async function linkTo(core: Core, s: Schedule, held: Held, executionId: string, link: Link): Promise<FireResult> {
  if (!(await link(held, executionId))) {
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

async function settle(core: Core, s: Schedule, held: Held, outcome: 'skipped' | 'refused' | 'waiting', reason: string, error?: UserError): Promise<FireResult> {
  const done = await core.store.schedules.updateOccurrence(s.id, held.dueAt, ['pending'], { outcome, reason, recordedAt: core.now() }, held.claimedAt);
  if (!done) return { outcome: 'lost_race' };
  if (outcome !== 'waiting' && held.trigger !== 'manual') await raiseMissed(core, s, { dueAt: held.dueAt, count: 1, lastDueAt: held.dueAt }, outcome, reason);
  return { outcome, reason, error };
}

/** The previous run is still active: run now is refused; a cron occurrence waits or is skipped by the overlap policy. */
async function busy(core: Core, s: Schedule, held: Held, why: string): Promise<FireResult> {
  if (held.trigger === 'manual') {
    return settle(core, s, held, 'skipped', `${why}: run now waits for nothing`, new UserError('DC_CONCURRENCY_LIMIT', `Schedule ${scheduleLabel(s)}: ${why}. Wait for it to end, or cancel it.`));
  }
  if (s.overlap === 'queue') {
    const waiting = (await core.store.schedules.listWaiting()).filter((o) => o.scheduleId === s.id);
    if (waiting.length === 0) {
      const until = new Date(held.dueAt + s.startTimeoutSeconds * 1000).toISOString();
      return settle(core, s, held, 'waiting', `${why}; waits for it to end (overlap: queue), until ${until}`);
    }
    return settle(core, s, held, 'skipped', `${why}, and an earlier occurrence already waits (overlap: queue holds one)`);
  }
  return settle(core, s, held, 'skipped', `${why} (overlap: skip)`);
}
