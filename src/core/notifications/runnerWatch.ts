/**
 * Runner offline/online announcements, a step of the sweeper: each change of a runner's state
 * raises `runner.offline` or `runner.online` once (the last announced state is kept in the
 * database, compared and changed atomically, so several replicas announce it once). A runner
 * seen for the first time is announced by nobody; offline is only said once this server has been
 * able to hear runners for the whole offline period (after a server start or a database outage
 * every runner looks silent until it reconnects).
 */
import { runnerOnline } from '../../domain/model.js';
import type { Core } from '../context.js';
import { topics } from '../notifier.js';

/** When each server (its Core) last looked: a fleet's states are read every few seconds, not on every sweep. */
const lastLook = new WeakMap<Core, number>();

export async function announceRunnerChanges(core: Core, hearingSince = -Infinity): Promise<number> {
  const now = core.now();
  const every = Math.min(5_000, core.settings.runnerOfflineAfterMs / 10);
  if (now - (lastLook.get(core) ?? -Infinity) < every) return 0;
  lastLook.set(core, now);
  const canTellOffline = hearingSince <= now - core.settings.runnerOfflineAfterMs;
  let announced = 0;
  const changes = await core.store.notifications.runnerStateChanges(now - core.settings.runnerOfflineAfterMs);
  const online = (r: (typeof changes)[number]['runner']) => runnerOnline(r, now, core.settings.runnerOfflineAfterMs);
  // Seen for the first time: recorded together, announced by nobody.
  const firsts = changes.filter((c) => c.known === undefined);
  if (firsts.length > 0) await core.store.notifications.recordFirstRunnerStates(firsts.map((c) => ({ runnerId: c.runner.id, online: online(c.runner) })), now);
  for (const { runner: r, known: was } of changes) {
    if (was === undefined) continue;
    const isOnline = online(r);
    if (was === isOnline || (!isOnline && !canTellOffline)) continue;
    const stopped = r.stoppedAt !== null && r.stoppedAt >= r.lastSeenAt;
    const changed = await core.store.notifications.setRunnerState(r.id, isOnline, now, {
      type: isOnline ? 'runner.online' : 'runner.offline',
      projectId: r.projectId,
      executionId: null,
      scheduleId: null,
      details: {
        runner_id: r.id,
        hostname: r.hostname || null,
        address: r.address,
        protocol: r.protocol,
        last_seen_at: new Date(r.lastSeenAt).toISOString(),
        reason: isOnline ? null : stopped ? 'it said it was stopping' : `not heard from for ${Math.round((now - r.lastSeenAt) / 1000)} s`,
      },
      at: now,
    });
    if (changed) announced++;
  }
  if (announced > 0) core.notifier.publish(topics.notifications);
  return announced;
}
