/**
 * One pass of the housekeeping every server process runs every second or so. Each step is a
 * conditional update, so several replicas sweeping at once do each thing once.
 *  - executions held by a runner that stopped heartbeating: running → lost; dispatched → queued
 *    for v1 runners (they claim with start/ before running, so it never started), lost for v2.
 *    Silence counts only while this server could hear: after a start (or a database outage, or a
 *    stalled process) runners get the whole offline + grace period again, so a server outage
 *    never makes healthy executions lost;
 *  - queued (or offered, not started) executions past their start deadline: expired, never started;
 *  - four-eyes requests nobody decided in time: rejected, "approval expired" (approvals.ts);
 *  - running executions past their timeout: ask the runner to stop them; when it does not
 *    report within the grace period, mark them timed_out;
 *  - announce runners that went offline or came back (notifications/runnerWatch.ts);
 *  - forget request nonces older than the replay window (stale timestamps are refused anyway).
 */
import type { Core } from './context.js';
import { audit, SYSTEM_ACTOR } from './audit.js';
import { announceStopRequest, transition } from './executionState.js';
import { announceRunnerChanges } from './notifications/runnerWatch.js';
import { expireApprovals } from './approvals.js';

export interface SweepReport {
  expired: number;
  lost: number;
  requeued: number;
  timeoutRequested: number;
  timedOut: number;
  approvalsExpired: number;
}

/**
 * `hearingSince`: since when this server has been able to hear runners without a break (its start,
 * the end of a database outage). Nothing is declared lost before it is older than offline + grace.
 */
export async function sweep(core: Core, hearingSince = -Infinity): Promise<SweepReport> {
  const now = core.now();
  const s = core.settings;
  const report: SweepReport = { expired: 0, lost: 0, requeued: 0, timeoutRequested: 0, timedOut: 0, approvalsExpired: 0 };

  for (const e of await core.store.listPastStartDeadline(now)) {
    // A v2 runner that was sent it may be starting it this very moment: only an offer to a v1
    // runner (which claims with start/ before running) is taken back.
    if (e.status === 'dispatched' && (e.runnerId === null || (await core.store.getRunner(e.runnerId))?.protocol !== 'v1')) continue;
    const waited = Math.round((e.startDeadline! - e.createdAt) / 1000);
    const reason = `no runner started it within ${waited} s (its start deadline); it will never start`;
    const done = await transition(
      core,
      e.id,
      'expired',
      { statusReason: reason, finishedAt: now, runnerId: null },
      { wakeProject: true, audit: { actor: SYSTEM_ACTOR, action: 'execution.expired', outcome: 'error', details: { reason } } },
    );
    if (done) report.expired++;
  }
  report.approvalsExpired = await expireApprovals(core);
  const silentSince = now - s.runnerOfflineAfterMs - s.lostGraceMs;

  for (const e of hearingSince < silentSince ? await core.store.listHeldByRunnersSeenBefore(silentSince) : []) {
    const runner = e.runnerId ? await core.store.getRunner(e.runnerId) : undefined;
    const lastSeen = runner ? new Date(runner.lastSeenAt).toISOString() : 'unknown';
    // A v2 runner was told to run it (`execute`), so it may have started: only a v1 runner's
    // offer is safe to make again, because v1 runners claim with start/ before running.
    if (e.status === 'running' || runner?.protocol !== 'v1') {
      const reason = `runner ${runner?.address ?? e.runnerId} stopped heartbeating (last seen ${lastSeen}); the command was not re-run`;
      const done = await transition(
        core,
        e.id,
        'lost',
        { statusReason: reason, finishedAt: now },
        { wakeProject: true, audit: { actor: SYSTEM_ACTOR, action: 'execution.lost', outcome: 'error', details: { reason } } },
      );
      if (done) report.lost++;
    } else {
      const done = await transition(core, e.id, 'queued', { runnerId: null, dispatchedAt: null }, { wakeProject: true });
      if (done) report.requeued++;
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
      announceStopRequest(core, e.id);
    }
  }

  for (const e of await core.store.listOverdue(now, s.timeoutGraceMs)) {
    const reason = `exceeded its ${e.timeoutSeconds} s timeout and the runner did not report it stopped`;
    const done = await transition(
      core,
      e.id,
      'timed_out',
      { statusReason: reason, finishedAt: now },
      { from: ['running'], wakeProject: true, audit: { actor: SYSTEM_ACTOR, action: 'execution.timed_out', outcome: 'error', details: { reason } } },
    );
    if (done) report.timedOut++;
  }

  await announceRunnerChanges(core, hearingSince);
  await core.store.pruneNonces(now - 2 * s.replayWindowSeconds * 1000);
  await core.store.pruneLoginAttempts(now);
  return report;
}
