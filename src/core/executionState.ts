/**
 * The one way an execution changes status: checked against the transition table in
 * domain/execution.ts, written as a conditional update (so two replicas or two runners racing
 * for the same change make it once), audited when asked, and announced to listeners.
 * Callers name the status they want; the table says from which statuses that is allowed.
 */
import type { Actor, Execution } from '../domain/model.js';
import { isTerminal, statusesThatCanBecome, type ExecutionStatus } from '../domain/execution.js';
import type { ExecutionPatch } from '../store/store.js';
import type { Core } from './context.js';
import { audit, type AuditInput } from './audit.js';
import { topics } from './notifier.js';
import { raise } from './notify.js';
import { observe } from './observer.js';

export interface TransitionOptions {
  /** Narrows the table's "from" statuses (e.g. only a queued execution may be claimed). */
  from?: readonly ExecutionStatus[];
  /** Only if the execution is in this project (a runner's key may touch no other). */
  inProject?: string;
  /** Recorded when the change is made (and only then); may be made from the changed execution. */
  audit?: TransitionAudit | ((e: Execution) => TransitionAudit);
  /** Also wake up the project's listeners (dispatchers), e.g. when capacity frees up. */
  wakeProject?: boolean;
}

export type TransitionAudit = { actor: Actor } & Omit<AuditInput, 'projectId' | 'executionId'>;

/** Moves the execution to `to`; undefined when it is no longer in a status that allows it. */
export async function transition(
  core: Core,
  id: string,
  to: ExecutionStatus,
  patch: Omit<ExecutionPatch, 'status'>,
  opts: TransitionOptions = {},
): Promise<Execution | undefined> {
  const allowed = statusesThatCanBecome(to).filter((s) => !opts.from || opts.from.includes(s));
  if (allowed.length === 0) return undefined;
  const updated = await core.store.updateExecution(id, allowed, { ...patch, status: to }, opts.inProject);
  if (!updated) return undefined;
  observe(core, (o) => o.executionChanged?.(updated));
  if (opts.audit) {
    const { actor, ...input } = typeof opts.audit === 'function' ? opts.audit(updated) : opts.audit;
    await audit(core, actor, { ...input, projectId: updated.projectId, executionId: id });
  }
  core.notifier.publish(topics.execution(id));
  if (opts.wakeProject) core.notifier.publish(topics.project(updated.projectId));
  if (isTerminal(to)) {
    core.notifier.publish(topics.stop(id));
    // Who hears of it is the notification rules' business; the event goes to the outbox now.
    await raise(core, {
      type: 'execution.ended',
      projectId: updated.projectId,
      executionId: id,
      scheduleId: updated.scheduleId,
      details: {
        command: updated.command,
        args: updated.args,
        status: to,
        exit_code: updated.exitCode,
        reason: updated.statusReason,
        created_by: updated.createdByLabel,
        duration_ms: updated.startedAt !== null && updated.finishedAt !== null ? updated.finishedAt - updated.startedAt : null,
        metadata_only: updated.metadataOnly,
      },
    });
  }
  return updated;
}

/**
 * Dispatch's claim, many at once: up to `limit` of the project's oldest queued executions become
 * `dispatched` to this runner (read-only ones only if `readOnlyToo`), in one statement, each
 * announced like any change. Empty when none is left for it (others claimed them first).
 */
export async function claimQueued(core: Core, projectId: string, runnerId: string, limit: number, readOnlyToo: boolean): Promise<Execution[]> {
  if (limit <= 0 || !statusesThatCanBecome('dispatched').includes('queued')) return [];
  const claimed = await core.store.claimQueued(projectId, limit, { runnerId, dispatchedAt: core.now() }, readOnlyToo);
  for (const e of claimed) {
    observe(core, (o) => o.executionChanged?.(e));
    core.notifier.publish(topics.execution(e.id));
  }
  return claimed;
}

/**
 * A running execution was asked to stop (a cancel, its timeout): not a change of status, but the
 * runner holding it must hear of it.
 */
export function announceStopRequest(core: Core, id: string): void {
  core.notifier.publish(topics.execution(id));
  core.notifier.publish(topics.stop(id));
}
