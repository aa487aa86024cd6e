/**
 * One pass of the housekeeping every server process runs every second or so. Each step is a
 * conditional update, so several replicas sweeping at once do each thing once.
 *  - executions held by a runner that stopped heartbeating: running → lost; dispatched → queued
 *    for v1 runners (they claim with start/ before running, so it never started), lost for v2;
 *  - running executions past their timeout: ask the runner to stop them; when it does not
 *    report within the grace period, mark them timed_out;
 *  - forget request nonces older than the replay window (stale timestamps are refused anyway).
 */
import type { Core } from './context.js';
import { audit, SYSTEM_ACTOR } from './audit.js';
import { topics } from './notifier.js';

export interface SweepReport {
  lost: number;
  requeued: number;
  timeoutRequested: number;
  timedOut: number;
}

export async function sweep(core: Core): Promise<SweepReport> {
  const now = core.now();
  const s = core.settings;
  const report: SweepReport = { lost: 0, requeued: 0, timeoutRequested: 0, timedOut: 0 };

  for (const e of await core.store.listHeldByRunnersSeenBefore(now - s.runnerOfflineAfterMs - s.lostGraceMs)) {
    const runner = e.runnerId ? await core.store.getRunner(e.runnerId) : undefined;
    const lastSeen = runner ? new Date(runner.lastSeenAt).toISOString() : 'unknown';
    // A v2 runner was told to run it (`execute`), so it may have started: only a v1 runner's
    // offer is safe to make again, because v1 runners claim with start/ before running.
    if (e.status === 'running' || runner?.protocol !== 'v1') {
      const reason = `runner ${runner?.address ?? e.runnerId} stopped heartbeating (last seen ${lastSeen}); the command was not re-run`;
      const done = await core.store.updateExecution(e.id, ['running', 'dispatched'], { status: 'lost', statusReason: reason, finishedAt: now });
      if (done) {
        report.lost++;
        await audit(core, SYSTEM_ACTOR, { action: 'execution.lost', projectId: e.projectId, executionId: e.id, outcome: 'error', details: { reason } });
        core.notifier.publish(topics.execution(e.id));
      }
    } else {
      const done = await core.store.updateExecution(e.id, ['dispatched'], { status: 'queued', runnerId: null, dispatchedAt: null });
      if (done) {
        report.requeued++;
        core.notifier.publish(topics.execution(e.id));
      }
    }
  }

  for (const e of await core.store.listOverdue(now, 0)) {
    if (e.cancelReason === 'timeout') continue;
    const done = await core.store.updateExecution(e.id, ['running'], { cancelRequestedAt: e.cancelRequestedAt ?? now, cancelReason: 'timeout' });
    if (done) {
      report.timeoutRequested++;
      await audit(core, SYSTEM_ACTOR, {
        action: 'execution.timeout',
        projectId: e.projectId,
        executionId: e.id,
        details: { timeout_seconds: e.timeoutSeconds },
      });
      core.notifier.publish(topics.execution(e.id));
    }
  }

  for (const e of await core.store.listOverdue(now, s.timeoutGraceMs)) {
    const reason = `exceeded its ${e.timeoutSeconds} s timeout and the runner did not report it stopped`;
    const done = await core.store.updateExecution(e.id, ['running'], { status: 'timed_out', statusReason: reason, finishedAt: now });
    if (done) {
      report.timedOut++;
      await audit(core, SYSTEM_ACTOR, { action: 'execution.timed_out', projectId: e.projectId, executionId: e.id, outcome: 'error', details: { reason } });
      core.notifier.publish(topics.execution(e.id));
    }
  }

  await core.store.pruneNonces(now - 2 * s.replayWindowSeconds * 1000);
  await core.store.pruneLoginAttempts(now);
  return report;
}
