/**
 * The deliverer, one in every server process. A pass:
 *  1. routes new events from the outbox: one delivery per matching channel (kinds it hears,
 *     its project or server-wide, its command globs), made atomically with marking the event
 *     routed, so a restart or a second replica never makes them twice;
 *  2. raises `execution.slow` for executions running past a channel's threshold (once each);
 *  3. turns held deliveries into digests (storm control: more than 10 in a minute to one channel);
 *  4. claims due deliveries with a lease and sends them, each with a timeout, all at once:
 *     a slow or broken channel delays nothing else. Every attempt is recorded; a failed one is
 *     retried with exponential backoff (30 s, 1 min, 2 min ... at most 1 h apart) for a day.
 * A delivery whose sender died mid-send is sent again when its lease lapses (at least once).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Channel, Delivery, NotificationEvent, RouteTarget, StormLimit } from '../../store/notificationStore.js';
import { TERMINAL_STATUSES } from '../../domain/execution.js';
import type { Core } from '../context.js';
import { topics, waitForTopic } from '../notifier.js';
import { raise } from '../notify.js';
import { openSecrets } from './channels.js';
import { commandMatches, FAILURE_STATUSES, kindsOf, TEST_EVENT } from './kinds.js';
import { digestMessage, eventMessage, subjectOf, type Message } from './message.js';
import { runtimeOf } from './runtime.js';
import { send } from './senders.js';
import { observe } from '../observer.js';

export const STORM: StormLimit = { limit: 10, windowMs: 60_000 };
export const RETRY_FOR_MS = 24 * 3600_000;
const LEASE_MS = 60_000;
const CLAIM_LIMIT = 50;
const ROUTE_LIMIT = 200;
/**
 * Passes start at most this often when events keep coming: a pass reads the channels, the
 * outbox and the deliveries due (four queries, on every replica, even with nothing to send), so
 * one pass an event was most of a replica's queries under load. A notification waits 0.1 s more.
 */
const MIN_PASS_EVERY_MS = 100;

/** Milliseconds before attempt `n + 1`, after `n` failed attempts: `baseMs` (30 s) doubling, at most 1 h. */
export function backoffMs(failedAttempts: number, baseMs = 30_000): number {
  return Math.min(baseMs * 2 ** Math.max(0, failedAttempts - 1), 3600_000);
}

export interface PassReport {
  routed: number;
  slow: number;
  digests: number;
  sent: number;
  failed: number;
}

export interface DelivererOptions {
  /** This process's name on leases. */
  owner?: string;
  /** Failures of a pass (the database went away) are reported here; the loop goes on. */
  onError?: (err: unknown) => void;
}

/** One pass; the server loop calls it when events are raised (at most every MIN_PASS_EVERY_MS) and every second. */
export async function deliverOnce(core: Core, owner = `pass-${randomUUID()}`): Promise<PassReport> {
  const report: PassReport = { routed: 0, slow: 0, digests: 0, sent: 0, failed: 0 };
  const channels = await core.store.notifications.listChannels();
  report.routed = await routeEvents(core, channels);
  report.slow = await raiseSlow(core, channels);
  if (report.slow > 0) report.routed += await routeEvents(core, channels);
  report.digests = await core.store.notifications.flushDigests(core.now(), STORM.windowMs);
  const claimed = await core.store.notifications.claimDeliveries(core.now(), owner, LEASE_MS, CLAIM_LIMIT);
  const byId = new Map<string, Channel | undefined>(channels.map((c) => [c.id, c]));
  for (const d of claimed) {
    // Routed by another replica for a channel made after this pass read them.
    if (!byId.has(d.channelId)) {
      const c = await core.store.notifications.getChannel(d.channelId);
      byId.set(d.channelId, c && c.deletedAt === null ? c : undefined);
    }
  }
  const results = await Promise.all(claimed.map((d) => deliver(core, d, byId.get(d.channelId), owner)));
  for (const ok of results) ok ? report.sent++ : report.failed++;
  return report;
}

/** Runs passes until stopped: when an event is raised (any replica; at most every MIN_PASS_EVERY_MS), else every `idleMs`. */
export function startDeliverer(core: Core, opts: DelivererOptions & { idleMs?: number } = {}): { stop(): Promise<void> } {
  const owner = opts.owner ?? `server-${randomUUID()}`;
  const stopping = new AbortController();
  let pending = false;
  const unsubscribe = core.notifier.subscribe(topics.notifications, () => (pending = true));
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      pending = false;
      const startedAt = Date.now();
      try {
        const r = await deliverOnce(core, owner);
        // A full batch: there is more to do now.
        if (r.sent + r.failed >= CLAIM_LIMIT) continue;
      } catch (err) {
        opts.onError?.(err);
      }
      if (!pending) await waitForTopic(core.notifier, topics.notifications, opts.idleMs ?? 1000, stopping.signal);
      const early = MIN_PASS_EVERY_MS - (Date.now() - startedAt);
      if (early > 0) await delay(early, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopping.abort();
      unsubscribe();
      await loop;
    },
  };
}

async function routeEvents(core: Core, channels: Channel[]): Promise<number> {
  const events = await core.store.notifications.listUnroutedEvents(ROUTE_LIMIT);
  let routed = 0;
  // Most events reach no channel: those are marked routed together, not a transaction each.
  const nowhere: number[] = [];
  for (const e of events) {
    const targets = await targetsOf(core, e, channels);
    if (targets.length === 0) nowhere.push(e.id);
    else if (await core.store.notifications.routeEvent(e.id, targets, STORM, core.now())) routed++;
  }
  return routed + (await core.store.notifications.routeNowhere(nowhere, core.now()));
}

async function targetsOf(core: Core, e: NotificationEvent, channels: Channel[]): Promise<RouteTarget[]> {
  // Most events reach no channel: ask the database nothing about those.
  const candidates = channels.filter((c) => (e.channelId ? c.id === e.channelId : c.projectId === null || c.projectId === e.projectId));
  if (candidates.length === 0) return [];
  // (A recovery also shows in the subject a `success` channel gets.)
  const recovery = candidates.some((c) => c.config.on.includes('recovery') || c.config.on.includes('success')) && (await isRecovery(core, e));
  const kinds = kindsOf(e.type, e.details, recovery);
  if (kinds.length === 0) return [];
  const project = e.projectId ? await core.store.getProject(e.projectId) : undefined;
  const summary = subjectOf(e, project?.name ?? null, kinds);
  const command = typeof e.details.command === 'string' ? e.details.command : undefined;
  const hears = (c: Channel) =>
    e.channelId
      ? c.id === e.channelId
      : (c.projectId === null || c.projectId === e.projectId) && kinds.some((k) => c.config.on.includes(k)) && commandMatches(c.config.commands, command);
  return candidates.filter(hears).map((c) => ({ channelId: c.id, kinds, summary, exempt: e.type === TEST_EVENT }));
}

/** A success is a recovery when the command's previous run (of that project) ended in failure. */
async function isRecovery(core: Core, e: NotificationEvent): Promise<boolean> {
  if (e.type !== 'execution.ended' || e.details.status !== 'succeeded' || !e.projectId || !e.executionId || typeof e.details.command !== 'string') return false;
  const current = await core.store.getExecution(e.executionId);
  if (!current) return false;
  const ended = TERMINAL_STATUSES.filter((s) => s === 'succeeded' || FAILURE_STATUSES.includes(s));
  const { items } = await core.store.listExecutions({ projectId: e.projectId, command: e.details.command, statuses: [...ended], createdBefore: current.createdAt + 1 }, 5);
  const previous = items.find((x) => x.id !== current.id && x.createdAt <= current.createdAt);
  return previous !== undefined && FAILURE_STATUSES.includes(previous.status);
}

/** One `execution.slow` per channel and execution running past the channel's threshold. */
async function raiseSlow(core: Core, channels: Channel[]): Promise<number> {
  let raised = 0;
  for (const c of channels) {
    if (!c.config.on.includes('slow') || !c.config.slowAfterSeconds) continue;
    const threshold = c.config.slowAfterSeconds;
    for (const x of await core.store.notifications.listRunningStartedBefore(core.now() - threshold * 1000, c.projectId, 100)) {
      if (!commandMatches(c.config.commands, x.command)) continue;
      const id = await raise(core, {
        type: 'execution.slow',
        projectId: x.projectId,
        executionId: x.id,
        scheduleId: x.scheduleId,
        channelId: c.id,
        dedupKey: `slow:${c.id}:${x.id}`,
        details: { command: x.command, args: x.args, created_by: x.createdByLabel, status: 'running', running_for_ms: core.now() - x.startedAt, threshold_seconds: threshold },
      });
      if (id !== null) raised++;
    }
  }
  return raised;
}

async function deliver(core: Core, d: Delivery, channel: Channel | undefined, owner: string): Promise<boolean> {
  const rt = runtimeOf(core);
  const started = Date.now();
  const finish = async (ok: boolean, statusCode: number | null, error: string | null) => {
    const at = core.now();
    const wait = backoffMs(d.attempts + 1, rt.retryBaseMs);
    const outcome = ok
      ? ({ status: 'delivered' } as const)
      : at + wait > d.createdAt + RETRY_FOR_MS || !channel
        ? ({ status: 'failed' } as const)
        : ({ status: 'pending', nextAttemptAt: at + wait } as const);
    await core.store.notifications.finishAttempt(d.id, owner, { channelId: d.channelId, at, durationMs: Date.now() - started, ok, statusCode, error }, outcome);
    observe(core, (o) => o.deliveryEnded?.(channel?.kind ?? 'deleted', ok ? 'delivered' : outcome.status === 'pending' ? 'retry' : 'failed'));
    return ok;
  };
  // Deleted meanwhile: its pending deliveries were cancelled; this claimed one ends here.
  if (!channel) return finish(false, null, 'the channel was deleted');
  let message: Message;
  let secrets;
  try {
    secrets = openSecrets(core, channel);
    message = await messageOf(core, d, rt.publicUrl);
  } catch (err) {
    return finish(false, null, `could not prepare the message: ${(err as Error).message}`.slice(0, 500));
  }
  const projectName = channel.projectId ? ((await core.store.getProject(channel.projectId))?.name ?? null) : message.fields.find(([l]) => l === 'Project')?.[1] ?? null;
  const r = await send(channel, secrets, message, d.id, projectName, rt);
  return finish(r.ok, r.statusCode, r.error);
}

async function messageOf(core: Core, d: Delivery, publicUrl: string | null): Promise<Message> {
  if (d.eventId === null) return digestMessage(core, await core.store.notifications.listDigested(d.id), publicUrl);
  const [e] = await core.store.notifications.getEvents([d.eventId]);
  if (!e) throw new Error(`event ${d.eventId} is gone`);
  return eventMessage(core, e, d.kinds, publicUrl);
}
