import { describe, expect, it } from 'vitest';
import { canTransition, cliExitCode, EXECUTION_STATUSES, finalStatus, isTerminal, TERMINAL_STATUSES } from '../../src/domain/execution.js';

describe('execution state machine', () => {
  it('never moves a started execution back to queued', () => {
    expect(canTransition('running', 'queued')).toBe(false);
    expect(canTransition('dispatched', 'queued')).toBe(true);
    for (const s of TERMINAL_STATUSES) expect(canTransition(s, 'queued')).toBe(false);
  });

  it('keeps every terminal state final, lost included: an end a client has seen never changes', () => {
    expect(canTransition('succeeded', 'failed')).toBe(false);
    for (const from of TERMINAL_STATUSES) {
      for (const to of EXECUTION_STATUSES) expect(canTransition(from, to), `${from} → ${to}`).toBe(false);
    }
    expect(isTerminal('lost')).toBe(true);
  });

  it('maps what a runner reports to the final status', () => {
    const base = { exitCode: 0, refusedByPolicy: false, timeoutRequested: false };
    expect(finalStatus({ ...base, reported: 'success' })).toBe('succeeded');
    expect(finalStatus({ ...base, reported: 'failed', exitCode: 3 })).toBe('failed');
    expect(finalStatus({ ...base, reported: 'cancelled', timeoutRequested: true })).toBe('timed_out');
    expect(finalStatus({ ...base, reported: 'cancelled' })).toBe('cancelled');
    expect(finalStatus({ ...base, reported: 'failed', exitCode: -1, refusedByPolicy: true })).toBe('rejected');
    expect(finalStatus({ ...base, reported: 'failed', exitCode: 2, refusedByPolicy: true })).toBe('failed');
  });

  it('gives the CLI an exit code for every ending', () => {
    expect(cliExitCode('succeeded', 0)).toBe(0);
    expect(cliExitCode('failed', 3)).toBe(3);
    expect(cliExitCode('failed', -9)).toBe(1);
    expect(new Set(['timed_out', 'cancelled', 'rejected', 'lost', 'expired'].map((s) => cliExitCode(s as never, null))).size).toBe(5);
    expect(cliExitCode('succeeded', 0, true)).toBe(74);
  });
});
