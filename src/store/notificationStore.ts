/**
 * The store's part for notifications: channels, the durable outbox of raised events, and each
 * delivery with its attempts. Implemented once over SQLite and PostgreSQL in notificationSql.ts.
 *
 * A delivery's states:
 *   pending ──claim──▶ sending ──▶ delivered
 *      ▲                  │   └──▶ failed      (gave up: retried for a day)
 *      └──── retry ───────┘                     (a lapsed lease makes `sending` claimable again)
 *   held ──▶ digested                           (storm control: carried by one digest delivery)
 *   pending | held ──▶ cancelled                (its channel was deleted)
 */
import type { Runner } from '../domain/model.js';

export interface NewNotificationEvent {
  type: string;
  projectId: string | null;
  executionId: string | null;
  scheduleId: string | null;
  /** Only this channel hears it (a test message, one channel's slow threshold); null: every matching channel. */
  channelId?: string | null;
  /** Recorded once per key: raising it again changes nothing. */
  dedupKey?: string | null;
  details: Record<string, unknown>;
  at: number;
}

export interface NotificationEvent extends NewNotificationEvent {
  id: number;
  channelId: string | null;
  dedupKey: string | null;
  routedAt: number | null;
}

export type ChannelKind = 'slack' | 'webhook' | 'email';

export interface ChannelConfig {
  /** Event kinds the channel hears: failure, success, recovery, slow, runner, missed, health, ... */
  on: string[];
  /** Only events of commands matching these globs (comma-separated); null: every command. */
  commands: string | null;
  /** For `slow`: an execution running longer than this is reported. */
  slowAfterSeconds: number | null;
  /** Email recipients (not secret). */
  to: string[];
}

export interface Channel {
  id: string;
  /** null: server-wide (hears every project). */
  projectId: string | null;
  name: string;
  kind: ChannelKind;
  /** Redacted, for people: scheme and host of a URL, the recipients of an email. */
  target: string;
  /** The secrets, encrypted (see core/notifications/secretBox.ts); the store never sees them in clear. */
  sealed: string;
  config: ChannelConfig;
  createdAt: number;
  createdBy: string;
  deletedAt: number | null;
}

export type DeliveryStatus = 'pending' | 'sending' | 'delivered' | 'failed' | 'held' | 'digested' | 'cancelled';

export interface Delivery {
  id: number;
  channelId: string;
  /** null for a digest. */
  eventId: number | null;
  /** For a `digested` delivery: the digest that carried it. */
  digestId: number | null;
  kinds: string[];
  summary: string;
  exempt: boolean;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  leaseUntil: number | null;
  leaseOwner: string | null;
  createdAt: number;
  finishedAt: number | null;
  lastError: string | null;
}

export interface DeliveryAttempt {
  id: number;
  deliveryId: number;
  channelId: string;
  at: number;
  durationMs: number;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
}

export interface RouteTarget {
  channelId: string;
  kinds: string[];
  summary: string;
  exempt: boolean;
}

/** Storm control: past `limit` deliveries to one channel within `windowMs`, new ones are held for a digest. */
export interface StormLimit {
  limit: number;
  windowMs: number;
}

export type AttemptOutcome = { status: 'delivered' } | { status: 'pending'; nextAttemptAt: number } | { status: 'failed' };

/** A running execution, as the slow check needs it. */
export interface RunningExecution {
  id: string;
  projectId: string;
  command: string;
  args: string;
  startedAt: number;
  createdByLabel: string;
  scheduleId: string | null;
}

export interface NotificationStore {
  /** Writes a raised event to the outbox (see core/notify.ts); its id, or null when its dedup key was recorded before. */
  recordEvent(event: NewNotificationEvent): Promise<number | null>;
  listUnroutedEvents(limit: number): Promise<NotificationEvent[]>;
  getEvents(ids: readonly number[]): Promise<NotificationEvent[]>;
  /**
   * Marks the event routed and makes its deliveries, atomically; false when it was routed before
   * (another replica). A delivery past the storm limit of its channel is made `held`.
   */
  routeEvent(eventId: number, targets: readonly RouteTarget[], storm: StormLimit, now: number): Promise<boolean>;
  /** Marks events no channel hears routed, in one statement; how many were not routed before. */
  routeNowhere(eventIds: readonly number[], now: number): Promise<number>;

  createChannel(channel: Channel): Promise<void>;
  getChannel(id: string): Promise<Channel | undefined>;
  /** Live channels: of one project (`projectId`), server-wide ones (`null`), or all (undefined). */
  listChannels(projectId?: string | null): Promise<Channel[]>;
  /** Deletes the channel (kept for its history) and cancels what it had not delivered; false when unknown or deleted. */
  deleteChannel(id: string, at: number): Promise<boolean>;

  /** Turns the held deliveries of channels whose oldest held one is at least `windowMs` old into one digest each. */
  flushDigests(now: number, windowMs: number): Promise<number>;
  /** Due deliveries (and `sending` ones whose lease lapsed), leased to `owner` until `now + leaseMs`. */
  claimDeliveries(now: number, owner: string, leaseMs: number, limit: number): Promise<Delivery[]>;
  /** Records an attempt and, while `owner` still holds the lease, the delivery's next state. */
  finishAttempt(deliveryId: number, owner: string, attempt: Omit<DeliveryAttempt, 'id' | 'deliveryId'>, outcome: AttemptOutcome): Promise<void>;
  getDelivery(id: number): Promise<Delivery | undefined>;
  /** Newest first. */
  listDeliveries(channelId: string, limit: number, beforeId?: number): Promise<Delivery[]>;
  listDeliveriesOfEvent(eventId: number): Promise<Delivery[]>;
  listDigested(digestId: number): Promise<Delivery[]>;
  listAttempts(deliveryIds: readonly number[]): Promise<DeliveryAttempt[]>;

  /** Running executions started before `startedBefore` (of one project, or of all when null). */
  listRunningStartedBefore(startedBefore: number, projectId: string | null, limit: number): Promise<RunningExecution[]>;

  /**
   * Runners whose state may need announcing: never recorded, or recorded online/offline while
   * "seen since `onlineSince` and not stopped after that" now says otherwise. Compared in the
   * database, so an idle fleet costs one read, not one per runner or project.
   */
  runnerStateChanges(onlineSince: number): Promise<RunnerStateChange[]>;
  /**
   * Remembers a runner's state. The first time a runner is seen nothing is announced; when the
   * state changes, `event` is recorded in the same transaction. Returns whether it changed.
   */
  setRunnerState(runnerId: string, online: boolean, now: number, event: NewNotificationEvent): Promise<boolean>;
  /** The first states of runners never recorded, announcing nothing: a few statements for a fleet that just connected. */
  recordFirstRunnerStates(states: ReadonlyArray<{ runnerId: string; online: boolean }>, now: number): Promise<void>;
}

/** A runner whose announced state may be out of date; `known` is the last one announced, if any. */
export interface RunnerStateChange {
  runner: Pick<Runner, 'id' | 'projectId' | 'hostname' | 'address' | 'protocol' | 'lastSeenAt' | 'stoppedAt'>;
  known: boolean | undefined;
}
