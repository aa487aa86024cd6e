/** Recording how an execution ended, whichever protocol the runner speaks. */
import type { Actor, Execution } from '../domain/model.js';
import { isTerminal, outputMissing, type ExecutionStatus } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { transition } from './executionState.js';

export interface Ending {
  status: ExecutionStatus;
  exitCode: number | null;
  reason: string | null;
  runnerId: string;
  reported: string;
  /** v2: how many output chunks the runner produced, so a gap at the end shows too. */
  lastSeq?: number;
}

export async function finishExecution(core: Core, actor: Actor, e: Execution, end: Ending): Promise<ExecutionStatus> {
  if (e.status === 'lost') return recordLateEnd(core, actor, e, end);
  if (isTerminal(e.status)) {
    // A retried or repeated report, or one that lost a race with a server-side decision.
    return e.status;
  }
  const expected = end.lastSeq !== undefined && end.lastSeq > 0 ? end.lastSeq : null;
  const missing = outputMissing({ ...e, outputExpectedSeq: expected });
  const done = await transition(
    core,
    e.id,
    end.status,
    {
      exitCode: end.exitCode,
      finishedAt: core.now(),
      runnerId: e.runnerId ?? end.runnerId,
      statusReason: end.reason ?? e.statusReason,
      outputExpectedSeq: expected,
    },
    {
      wakeProject: true,
      audit: {
        actor,
        action: 'execution.complete',
        outcome: end.status === 'succeeded' && missing === 0 ? 'ok' : 'error',
        details: {
          command: e.command,
          status: end.status,
          exit_code: end.exitCode,
          reported: end.reported,
          ...(end.reason ? { reason: end.reason } : {}),
          ...(missing > 0 ? { output_missing_chunks: missing } : {}),
        },
      },
    },
  );
  if (!done) {
    const current = await core.store.getExecution(e.id);
    if (current?.status === 'lost') return recordLateEnd(core, actor, current, end);
    if (current && isTerminal(current.status)) return current.status;
    throw new UserError('DC_INVALID_TRANSITION', `Execution ${e.id} cannot end: it is ${current?.status ?? 'gone'}.`, { status: current?.status });
  }
  return end.status;
}

/**
 * `lost` is final: whoever saw it (a CI job that exited 75) must never see another end. How the
 * command really ended is kept beside it, and audited, once.
 */
async function recordLateEnd(core: Core, actor: Actor, e: Execution, end: Ending): Promise<ExecutionStatus> {
  if (await core.store.recordLateEnd(e.id, { status: end.status, exitCode: end.exitCode, at: core.now() })) {
    await audit(core, actor, {
      action: 'execution.late_end',
      projectId: e.projectId,
      executionId: e.id,
      outcome: 'error',
      details: { command: e.command, status: 'lost', late_status: end.status, late_exit_code: end.exitCode, reported: end.reported },
    });
  }
  return 'lost';
}
