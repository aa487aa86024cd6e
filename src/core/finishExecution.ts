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

/** An execution not read yet: its id, and the project the reporting runner serves (checked in the write). */
export interface UnreadExecution {
  id: string;
  projectId: string;
}

/**
 * Records how the execution ended. Given unread, the end is written without reading it first
 * (one statement, not two, for each end); it is read only when the write did not apply.
 */
export async function finishExecution(core: Core, actor: Actor, e: Execution | UnreadExecution, end: Ending): Promise<ExecutionStatus> {
  const read = 'status' in e ? e : undefined;
  if (read?.status === 'lost') return recordLateEnd(core, actor, read, end);
  // A retried or repeated report, or one that lost a race with a server-side decision.
  if (read && isTerminal(read.status)) return read.status;
  const expected = end.lastSeq !== undefined && end.lastSeq > 0 ? end.lastSeq : null;
  const done = await transition(
    core,
    e.id,
    end.status,
    {
      exitCode: end.exitCode,
      finishedAt: core.now(),
      // Unread: a dispatched or running execution always has its runner, and keeps it.
      ...(read ? { runnerId: read.runnerId ?? end.runnerId } : {}),
      ...(end.reason !== null ? { statusReason: end.reason } : {}),
      outputExpectedSeq: expected,
    },
    {
      // A runner reports how what it was handed ended: never one waiting for approval.
      from: ['dispatched', 'running'],
      wakeProject: true,
      ...(read ? {} : { inProject: e.projectId }),
      audit: (ended) => {
        const missing = outputMissing(ended);
        return {
          actor,
          action: 'execution.complete',
          outcome: end.status === 'succeeded' && missing === 0 ? 'ok' : 'error',
          details: {
            command: ended.command,
            status: end.status,
            exit_code: end.exitCode,
            reported: end.reported,
            ...(end.reason ? { reason: end.reason } : {}),
            ...(missing > 0 ? { output_missing_chunks: missing } : {}),
          },
        };
      },
    },
  );
  if (!done) {
    const current = await core.store.getExecution(e.id);
    if (!current || current.projectId !== e.projectId) throw new UserError('DC_UNKNOWN_EXECUTION', `No execution ${e.id} in this project.`);
    if (current.status === 'lost') return recordLateEnd(core, actor, current, end);
    if (isTerminal(current.status)) return current.status;
    throw new UserError('DC_INVALID_TRANSITION', `Execution ${e.id} cannot end: it is ${current.status}.`, { status: current.status });
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
