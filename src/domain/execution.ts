/**
 * The execution state machine.
 *
 *   queued ──▶ dispatched ──▶ running ──▶ succeeded | failed | timed_out | cancelled | rejected
 *     │            │             └──────▶ lost        (its runner stopped heartbeating)
 *     │            └──▶ queued                         (its runner went away before starting it)
 *     ├──▶ cancelled                                   (cancelled before any runner took it)
 *     └──▶ expired (also from dispatched)              (no runner started it before its start deadline)
 *   awaiting_approval ──▶ queued | rejected            (four-eyes approvals)
 *
 * A terminal execution never changes again: a client that has seen an end (a CI job that read
 * `lost` and exited 75) must never see another. A runner that reports, after all, how a `lost`
 * execution ended adds that as information (late_status), never as a new status. Nothing ever
 * moves an execution back to queued once a runner has started it: a command that may have run
 * is never re-run by itself.
 * Pure functions only: no I/O here.
 */
export const EXECUTION_STATUSES = [
  'queued',
  'awaiting_approval',
  'dispatched',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'rejected',
  'lost',
  'expired',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

export const TERMINAL_STATUSES: readonly ExecutionStatus[] = [
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'rejected',
  'lost',
  'expired',
];
/** Statuses that count against a command's concurrency limit. */
export const ACTIVE_STATUSES: readonly ExecutionStatus[] = ['queued', 'awaiting_approval', 'dispatched', 'running'];

export function isTerminal(status: ExecutionStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function isExecutionStatus(value: string): value is ExecutionStatus {
  return (EXECUTION_STATUSES as readonly string[]).includes(value);
}

const TRANSITIONS: Record<ExecutionStatus, readonly ExecutionStatus[]> = {
  awaiting_approval: ['queued', 'rejected', 'cancelled'],
  queued: ['dispatched', 'running', 'cancelled', 'expired'],
  // A v2 runner that ran it while cut off from the server reports the end without a start.
  dispatched: ['running', 'queued', 'cancelled', 'lost', 'succeeded', 'failed', 'timed_out', 'rejected', 'expired'],
  running: ['succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'lost'],
  succeeded: [],
  failed: [],
  timed_out: [],
  cancelled: [],
  rejected: [],
  lost: [],
  expired: [],
};

export function canTransition(from: ExecutionStatus, to: ExecutionStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses from which a move to `to` is allowed; used to write conditional updates. */
export function statusesThatCanBecome(to: ExecutionStatus): ExecutionStatus[] {
  return EXECUTION_STATUSES.filter((from) => canTransition(from, to));
}

export type RunnerCompletion = 'success' | 'failed' | 'cancelled' | 'timed_out';

export interface CompletionFacts {
  reported: RunnerCompletion;
  exitCode: number;
  /** The runner said, in its output, that its own policy refused the command. */
  refusedByPolicy: boolean;
  /** The server asked the runner to stop it because its time ran out. */
  timeoutRequested: boolean;
}

/** Maps what a runner reported at completion to the final status. */
export function finalStatus(facts: CompletionFacts): ExecutionStatus {
  if (facts.refusedByPolicy && facts.reported === 'failed' && facts.exitCode === -1) return 'rejected';
  switch (facts.reported) {
    case 'success':
      return facts.exitCode === 0 ? 'succeeded' : 'failed';
    case 'timed_out':
      return 'timed_out';
    case 'cancelled':
      return facts.timeoutRequested ? 'timed_out' : 'cancelled';
    case 'failed':
      return 'failed';
  }
}

/** The CLI's exit code for an execution no runner started before its start deadline (EX_UNAVAILABLE). */
export const EXPIRED_EXIT = 69;

/** The CLI's exit code for a command that succeeded but whose output did not all reach the server (EX_IOERR). */
export const OUTPUT_INCOMPLETE_EXIT = 74;

/**
 * What the CLI exits with for an execution that ended. The command's own exit code when it
 * failed with one; otherwise conventional codes a shell user recognises. A success whose output
 * has holes is not reported as a plain success.
 */
export function cliExitCode(status: ExecutionStatus, exitCode: number | null, outputIncomplete = false): number {
  switch (status) {
    case 'succeeded':
      return outputIncomplete ? OUTPUT_INCOMPLETE_EXIT : 0;
    case 'failed':
      return exitCode !== null && exitCode > 0 && exitCode < 256 ? exitCode : 1;
    case 'timed_out':
      return 124;
    case 'cancelled':
      return 130;
    case 'rejected':
      return 126;
    case 'lost':
      return 75;
    case 'expired':
      return EXPIRED_EXIT;
    default:
      return 1;
  }
}

/**
 * How many output chunks never reached the server: numbers below the highest one stored (or
 * below the count a v2 runner reported at the end) that are not stored. The v1 runner drops a
 * chunk it could not send, so an execution can end with holes; it must never look whole.
 */
export function outputMissing(e: { runnerLastSeq: number; runnerChunks: number; outputExpectedSeq: number | null }): number {
  return Math.max(0, Math.max(e.runnerLastSeq, e.outputExpectedSeq ?? 0) - e.runnerChunks);
}
