/**
 * Raising an event that may notify people: any part of the server calls `raise`, which only
 * writes the event to the outbox in the database (so a restart loses none) and wakes the
 * deliverer. Which channels hear of it, how (Slack, webhook, email), retries and storm
 * collapsing are the deliverer's business (core/notifications/), never the caller's: a broken or
 * slow channel never delays or fails what raised the event.
 *
 * Kinds (a channel subscribes to these, by the words users type):
 *   failure  an execution failed, timed out, was lost or expired      (execution.ended)
 *   success  an execution succeeded                                     (execution.ended)
 *   recovery the first success of a command after a failure             (execution.ended)
 *   slow     an execution runs longer than a channel's threshold
 *   runner   a runner went offline or came back
 *   missed   a schedule's occurrence did not run (missed, skipped)
 *   health   a schedule's expected success did not come in time
 *   shell    a shell became writable (read-only shells)
 *   approval an execution waits for approval (four-eyes)
 * Any other `type` maps to the kind before its first dot (`backup.done` → backup): see
 * core/notifications/kinds.ts.
 */
import type { Core } from './context.js';
import { topics } from './notifier.js';

export interface RaisedEvent {
  /** What happened, e.g. `execution.ended`, `runner.offline`, `schedule.missed`, `schedule.health`. */
  type: string;
  projectId: string | null;
  executionId?: string | null;
  scheduleId?: string | null;
  /** Only this channel hears it (a test message, one channel's slow threshold). */
  channelId?: string | null;
  /** Raised once per key: raising it again changes nothing (a slow execution, per channel). */
  dedupKey?: string | null;
  /** Facts a message is made from (command, status, exit code, who, reason...); no secrets. */
  details: Record<string, unknown>;
}

/** Returns the event's id in the outbox, or null when its dedup key was raised before. */
export async function raise(core: Core, event: RaisedEvent): Promise<number | null> {
  const id = await core.store.notifications.recordEvent({
    ...event,
    executionId: event.executionId ?? null,
    scheduleId: event.scheduleId ?? null,
    channelId: event.channelId ?? null,
    dedupKey: event.dedupKey ?? null,
    at: core.now(),
  });
  core.notifier.publish(topics.notifications);
  return id;
}
