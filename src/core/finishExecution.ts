/** Recording how an execution ended, whichever protocol the runner speaks. */
import type { Actor, Execution } from '../domain/model.js';
import { isTerminal, type ExecutionStatus } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { topics } from './notifier.js';

export interface Ending {
  status: ExecutionStatus;
  exitCode: number | null;
  reason: string | null;
  runnerId: string;
  reported: string;
}

export async function finishExecution(core: Core, actor: Actor, e: Execution, end: Ending): Promise<ExecutionStatus> {
  if (isTerminal(e.status) && e.status !== 'lost') {
    // A retried or repeated report, or one that lost a race with a server-side decision.
    return e.status;
  }
  const done = await core.store.updateExecution(e.id, ['running', 'dispatched', 'lost'], {
    status: end.status,
    exitCode: end.exitCode,
    finishedAt: core.now(),
    runnerId: e.runnerId ?? end.runnerId,
    statusReason: end.reason ?? (e.status === 'lost' ? `${e.statusReason ?? 'lost'}; the runner reported the end later` : e.statusReason),
  });
  if (!done) {
    const current = await core.store.getExecution(e.id);
    if (current && isTerminal(current.status)) return current.status;
    throw new UserError('DC_INVALID_TRANSITION', `Execution ${e.id} cannot end: it is ${current?.status ?? 'gone'}.`, 409, { status: current?.status });
  }
  await audit(core, actor, {
    action: 'execution.complete',
    projectId: e.projectId,
    executionId: e.id,
    outcome: end.status === 'succeeded' ? 'ok' : 'error',
    details: { command: e.command, status: end.status, exit_code: end.exitCode, reported: end.reported, ...(end.reason ? { reason: end.reason } : {}) },
  });
  core.notifier.publish(topics.execution(e.id));
  core.notifier.publish(topics.project(e.projectId));
  return end.status;
}
