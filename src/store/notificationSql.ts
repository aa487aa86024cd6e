/** NotificationStore over Kysely, for SQLite and PostgreSQL (differences: Capabilities flags only). */
import type { ExpressionBuilder, Generated, Insertable, Kysely, Selectable } from 'kysely';
import type { Capabilities } from './dialects.js';
import type { Database } from './schema.js';
import { GroupCommit } from './groupCommit.js';
import type { Runner } from '../domain/model.js';
import type {
  AttemptOutcome,
  Channel,
  ChannelConfig,
  Delivery,
  DeliveryAttempt,
  DeliveryStatus,
  NewNotificationEvent,
  NotificationEvent,
  NotificationStore,
  RouteTarget,
  RunnerStateChange,
  RunningExecution,
  StormLimit,
} from './notificationStore.js';

declare module './schema.js' {
  interface Database {
    notification_events: NotificationEventsTable;
    notification_channels: NotificationChannelsTable;
    notification_deliveries: NotificationDeliveriesTable;
    notification_attempts: NotificationAttemptsTable;
    notification_runner_states: NotificationRunnerStatesTable;
  }
}

export interface NotificationEventsTable {
  id: Generated<number>;
  type: string;
  project_id: string | null;
  execution_id: string | null;
  schedule_id: string | null;
  channel_id: string | null;
  dedup_key: string | null;
  details_json: string;
  at: number;
  routed_at: number | null;
}

export interface NotificationChannelsTable {
  id: string;
  project_id: string | null;
  name: string;
  kind: string;
  target: string;
  sealed: string;
  config_json: string;
  created_at: number;
  created_by: string;
  deleted_at: number | null;
}

export interface NotificationDeliveriesTable {
  id: Generated<number>;
  channel_id: string;
  event_id: number | null;
  digest_id: number | null;
  kinds: string;
  summary: string;
  exempt: number;
  status: string;
  attempts: number;
  next_attempt_at: number;
  lease_until: number | null;
  lease_owner: string | null;
  created_at: number;
  finished_at: number | null;
  last_error: string | null;
}

export interface NotificationAttemptsTable {
  id: Generated<number>;
  delivery_id: number;
  channel_id: string;
  at: number;
  duration_ms: number;
  ok: number;
  status_code: number | null;
  error: string | null;
}

export interface NotificationRunnerStatesTable {
  runner_id: string;
  online: number;
  changed_at: number;
}

type Db = Kysely<Database>;

/** Events of several callers recorded in one transaction, at most. */
const EVENTS_A_TRANSACTION = 500;

export class NotificationSql implements NotificationStore {
  constructor(
    private readonly db: Db,
    private readonly caps: Capabilities,
  ) {}

  // ---- the outbox --------------------------------------------------------------------------

  /** Events of several callers, one transaction at a time (groupCommit.ts): an event for every end of an execution. */
  private readonly recording = new GroupCommit<EventRow, number | null>((rows) => this.recordNow(rows), EVENTS_A_TRANSACTION);

  async recordEvent(e: NewNotificationEvent): Promise<number | null> {
    // Made before it is queued: details that are not JSON fail their caller alone.
    return (await this.recording.submit([eventRow(e)]))[0];
  }

  /**
   * Events in the order given, so their ids follow it. A run of events without a dedup key goes
   * in one INSERT (none can conflict: each gets its id, in the order given, so sorted ids match
   * them); one with a key goes alone (it may be skipped: null).
   */
  private async recordNow(rows: readonly EventRow[]): Promise<Array<number | null>> {
    return this.db.transaction().execute(async (trx) => {
      const ids: Array<number | null> = [];
      for (let i = 0; i < rows.length; ) {
        if (rows[i].dedup_key !== null) {
          ids.push(await insertEvent(trx, rows[i++]));
          continue;
        }
        let end = i;
        while (end < rows.length && rows[end].dedup_key === null) end++;
        const made = (await trx.insertInto('notification_events').values(rows.slice(i, end)).returning('id').execute()).map((r) => Number(r.id));
        ids.push(...made.sort((a, b) => a - b));
        i = end;
      }
      return ids;
    });
  }

  async listUnroutedEvents(limit: number): Promise<NotificationEvent[]> {
    const rows = await this.db.selectFrom('notification_events').selectAll().where('routed_at', 'is', null).orderBy('id').limit(limit).execute();
    return rows.map(toEvent);
  }

  async routeNowhere(eventIds: readonly number[], now: number): Promise<number> {
    if (eventIds.length === 0) return 0;
    const res = await this.db.updateTable('notification_events').set({ routed_at: now }).where('id', 'in', [...eventIds]).where('routed_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async getEvents(ids: readonly number[]): Promise<NotificationEvent[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.selectFrom('notification_events').selectAll().where('id', 'in', [...ids]).orderBy('id').execute();
    return rows.map(toEvent);
  }

  async routeEvent(eventId: number, targets: readonly RouteTarget[], storm: StormLimit, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      // The claim: the replica whose update lands routes it; the other finds it routed.
      const claimed = await trx.updateTable('notification_events').set({ routed_at: now }).where('id', '=', eventId).where('routed_at', 'is', null).executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 0) return false;
      if (targets.length === 0) return true;
      if (this.caps.rowLocks) {
        // Serialises storm counting per channel across replicas.
        await trx.selectFrom('notification_channels').select('id').where('id', 'in', targets.map((t) => t.channelId)).orderBy('id').forUpdate().execute();
      }
      for (const t of targets) {
        const hold = !t.exempt && (await inStorm(trx, t.channelId, storm, now));
        await trx
          .insertInto('notification_deliveries')
          .values({
            channel_id: t.channelId,
            event_id: eventId,
            digest_id: null,
            kinds: t.kinds.join(','),
            summary: t.summary,
            exempt: t.exempt ? 1 : 0,
            status: hold ? 'held' : 'pending',
            attempts: 0,
            next_attempt_at: now,
            lease_until: null,
            lease_owner: null,
            created_at: now,
            finished_at: null,
            last_error: null,
          })
          .execute();
      }
      return true;
    });
  }

  // ---- channels ----------------------------------------------------------------------------

  async createChannel(c: Channel): Promise<void> {
    await this.db
      .insertInto('notification_channels')
      .values({
        id: c.id,
        project_id: c.projectId,
        name: c.name,
        kind: c.kind,
        target: c.target,
        sealed: c.sealed,
        config_json: JSON.stringify(c.config),
        created_at: c.createdAt,
        created_by: c.createdBy,
        deleted_at: c.deletedAt,
      })
      .execute();
  }

  async getChannel(id: string): Promise<Channel | undefined> {
    const r = await this.db.selectFrom('notification_channels').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toChannel(r);
  }

  async listChannels(projectId?: string | null): Promise<Channel[]> {
    let q = this.db.selectFrom('notification_channels').selectAll().where('deleted_at', 'is', null);
    if (projectId === null) q = q.where('project_id', 'is', null);
    else if (projectId !== undefined) q = q.where('project_id', '=', projectId);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toChannel);
  }

  async deleteChannel(id: string, at: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const done = await trx.updateTable('notification_channels').set({ deleted_at: at }).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) return false;
      await trx
        .updateTable('notification_deliveries')
        .set({ status: 'cancelled', finished_at: at, lease_owner: null, lease_until: null })
        .where('channel_id', '=', id)
        .where('status', 'in', ['pending', 'held'])
        .execute();
      return true;
    });
  }

  // ---- deliveries --------------------------------------------------------------------------

  async flushDigests(now: number, windowMs: number): Promise<number> {
    const due = await this.db
      .selectFrom('notification_deliveries')
      .select(['channel_id', (eb) => eb.fn.min('created_at').as('oldest'), (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', '=', 'held')
      .groupBy('channel_id')
      .execute();
    let made = 0;
    for (const d of due) {
      if (Number(d.oldest) > now - windowMs) continue;
      const created = await this.db.transaction().execute(async (trx) => {
        const digest = await trx
          .insertInto('notification_deliveries')
          .values({
            channel_id: d.channel_id,
            event_id: null,
            digest_id: null,
            kinds: 'digest',
            summary: `digest of ${Number(d.n)} notifications`,
            exempt: 0,
            status: 'pending',
            attempts: 0,
            next_attempt_at: now,
            lease_until: null,
            lease_owner: null,
            created_at: now,
            finished_at: null,
            last_error: null,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        const taken = await trx
          .updateTable('notification_deliveries')
          .set({ status: 'digested', digest_id: digest.id, finished_at: now })
          .where('channel_id', '=', d.channel_id)
          .where('status', '=', 'held')
          .executeTakeFirst();
        const n = Number(taken.numUpdatedRows);
        if (n === 0) {
          // Another replica made this digest first.
          await trx.deleteFrom('notification_deliveries').where('id', '=', digest.id).execute();
          return false;
        }
        await trx.updateTable('notification_deliveries').set({ summary: `digest of ${n} notification${n === 1 ? '' : 's'}` }).where('id', '=', digest.id).execute();
        return true;
      });
      if (created) made++;
    }
    return made;
  }

  async claimDeliveries(now: number, owner: string, leaseMs: number, limit: number): Promise<Delivery[]> {
    const isDue = (eb: ExpressionBuilder<Database, 'notification_deliveries'>) =>
      eb.or([
        eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', now)]),
        eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', now)]),
      ]);
    // Most passes find nothing due: a read says so without taking the writer (and a commit).
    if (!(await this.db.selectFrom('notification_deliveries').select('id').where(isDue).limit(1).executeTakeFirst())) return [];
    let due = this.db.selectFrom('notification_deliveries').select('id').where(isDue).orderBy('next_attempt_at').orderBy('id').limit(limit);
    // Replicas claiming at once take different rows instead of queueing behind each other's locks.
    if (this.caps.rowLocks) due = due.forUpdate().skipLocked();
    const rows = await this.db
      .updateTable('notification_deliveries')
      .set({ status: 'sending', lease_owner: owner, lease_until: now + leaseMs })
      .where('id', 'in', due)
      .returningAll()
      .execute();
    return rows.map(toDelivery).sort((a, b) => a.id - b.id);
  }

  async finishAttempt(deliveryId: number, owner: string, a: Omit<DeliveryAttempt, 'id' | 'deliveryId'>, outcome: AttemptOutcome): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('notification_attempts')
        .values({ delivery_id: deliveryId, channel_id: a.channelId, at: a.at, duration_ms: Math.round(a.durationMs), ok: a.ok ? 1 : 0, status_code: a.statusCode, error: a.error })
        .execute();
      await trx
        .updateTable('notification_deliveries')
        .set((eb) => ({
          status: outcome.status,
          attempts: eb('attempts', '+', 1),
          next_attempt_at: outcome.status === 'pending' ? outcome.nextAttemptAt : a.at,
          finished_at: outcome.status === 'pending' ? null : a.at,
          last_error: a.error,
          lease_owner: null,
          lease_until: null,
        }))
        .where('id', '=', deliveryId)
        .where('status', '=', 'sending')
        .where('lease_owner', '=', owner)
        .execute();
    });
  }

  async getDelivery(id: number): Promise<Delivery | undefined> {
    const r = await this.db.selectFrom('notification_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDelivery(r);
  }

  async listDeliveries(channelId: string, limit: number, beforeId?: number): Promise<Delivery[]> {
    let q = this.db.selectFrom('notification_deliveries').selectAll().where('channel_id', '=', channelId);
    if (beforeId !== undefined) q = q.where('id', '<', beforeId);
    return (await q.orderBy('id', 'desc').limit(limit).execute()).map(toDelivery);
  }

  async listDeliveriesOfEvent(eventId: number): Promise<Delivery[]> {
    return (await this.db.selectFrom('notification_deliveries').selectAll().where('event_id', '=', eventId).orderBy('id').execute()).map(toDelivery);
  }

  async listDigested(digestId: number): Promise<Delivery[]> {
    return (await this.db.selectFrom('notification_deliveries').selectAll().where('digest_id', '=', digestId).orderBy('id').execute()).map(toDelivery);
  }

  async listAttempts(deliveryIds: readonly number[]): Promise<DeliveryAttempt[]> {
    if (deliveryIds.length === 0) return [];
    const rows = await this.db.selectFrom('notification_attempts').selectAll().where('delivery_id', 'in', [...deliveryIds]).orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      deliveryId: Number(r.delivery_id),
      channelId: r.channel_id,
      at: r.at,
      durationMs: r.duration_ms,
      ok: r.ok === 1,
      statusCode: r.status_code,
      error: r.error,
    }));
  }

  async listRunningStartedBefore(startedBefore: number, projectId: string | null, limit: number): Promise<RunningExecution[]> {
    let q = this.db
      .selectFrom('executions')
      .select(['id', 'project_id', 'command', 'args', 'started_at', 'created_by_label', 'schedule_id'])
      .where('status', '=', 'running')
      .where('started_at', '<', startedBefore);
    if (projectId !== null) q = q.where('project_id', '=', projectId);
    const rows = await q.orderBy('started_at').limit(limit).execute();
    return rows.map((r) => ({
      id: r.id,
      projectId: r.project_id,
      command: r.command,
      args: r.args,
      startedAt: r.started_at!,
      createdByLabel: r.created_by_label,
      scheduleId: r.schedule_id,
    }));
  }

  // ---- runners -----------------------------------------------------------------------------

  async runnerStateChanges(onlineSince: number): Promise<RunnerStateChange[]> {
    const rows = await this.db
      .selectFrom('runners as r')
      .leftJoin('notification_runner_states as s', 's.runner_id', 'r.id')
      .select(['r.id', 'r.project_id', 'r.hostname', 'r.address', 'r.protocol', 'r.last_seen_at', 'r.stopped_at', 's.online'])
      .where((eb) => {
        // The rule of domain/model.ts runnerOnline(), in SQL.
        const online = eb.and([eb('r.last_seen_at', '>', onlineSince), eb.or([eb('r.stopped_at', 'is', null), eb('r.stopped_at', '<', eb.ref('r.last_seen_at'))])]);
        return eb.or([eb('s.runner_id', 'is', null), eb.and([eb('s.online', '=', 1), eb.not(online)]), eb.and([eb('s.online', '=', 0), online])]);
      })
      .execute();
    return rows.map((r) => ({
      runner: { id: r.id, projectId: r.project_id, hostname: r.hostname, address: r.address, protocol: r.protocol as Runner['protocol'], lastSeenAt: Number(r.last_seen_at), stoppedAt: r.stopped_at === null ? null : Number(r.stopped_at) },
      known: r.online === null ? undefined : r.online === 1,
    }));
  }

  async recordFirstRunnerStates(states: ReadonlyArray<{ runnerId: string; online: boolean }>, now: number): Promise<void> {
    for (let i = 0; i < states.length; i += 500) {
      await this.db
        .insertInto('notification_runner_states')
        .values(states.slice(i, i + 500).map((s) => ({ runner_id: s.runnerId, online: s.online ? 1 : 0, changed_at: now })))
        .onConflict((oc) => oc.column('runner_id').doNothing())
        .execute();
    }
  }

  async setRunnerState(runnerId: string, online: boolean, now: number, event: NewNotificationEvent): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const first = await trx
        .insertInto('notification_runner_states')
        .values({ runner_id: runnerId, online: online ? 1 : 0, changed_at: now })
        .onConflict((oc) => oc.column('runner_id').doNothing())
        .executeTakeFirst();
      if (Number(first.numInsertedOrUpdatedRows ?? 0n) > 0) return false;
      const changed = await trx
        .updateTable('notification_runner_states')
        .set({ online: online ? 1 : 0, changed_at: now })
        .where('runner_id', '=', runnerId)
        .where('online', '=', online ? 0 : 1)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) === 0) return false;
      await insertEvent(trx, eventRow(event));
      return true;
    });
  }
}

/** True when the channel is in a storm: `limit` deliveries within the window, or a digest pending or recent. */
async function inStorm(trx: Db, channelId: string, storm: StormLimit, now: number): Promise<boolean> {
  const since = now - storm.windowMs;
  const row = await trx
    .selectFrom('notification_deliveries')
    .select([
      (eb) => eb.fn.countAll<number>().as('n'),
      (eb) => eb.fn.sum<number>(eb.case().when('status', '=', 'held').then(1).when('event_id', 'is', null).then(1).else(0).end()).as('storming'),
    ])
    .where('channel_id', '=', channelId)
    .where('exempt', '=', 0)
    .where('status', '!=', 'digested')
    .where((eb) => eb.or([eb('created_at', '>', since), eb('status', '=', 'held')]))
    .executeTakeFirstOrThrow();
  return Number(row.n) >= storm.limit || Number(row.storming ?? 0) > 0;
}

type EventRow = Insertable<NotificationEventsTable>;

function eventRow(e: NewNotificationEvent): EventRow {
  return {
    type: e.type,
    project_id: e.projectId,
    execution_id: e.executionId,
    schedule_id: e.scheduleId,
    channel_id: e.channelId ?? null,
    dedup_key: e.dedupKey ?? null,
    details_json: JSON.stringify(e.details),
    at: e.at,
    routed_at: null,
  };
}

async function insertEvent(db: Db, values: EventRow): Promise<number | null> {
  const row = await db
    .insertInto('notification_events')
    .values(values)
    .onConflict((oc) => oc.column('dedup_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row ? Number(row.id) : null;
}

function toEvent(r: Selectable<NotificationEventsTable>): NotificationEvent {
  return {
    id: Number(r.id),
    type: r.type,
    projectId: r.project_id,
    executionId: r.execution_id,
    scheduleId: r.schedule_id,
    channelId: r.channel_id,
    dedupKey: r.dedup_key,
    details: JSON.parse(r.details_json) as Record<string, unknown>,
    at: r.at,
    routedAt: r.routed_at,
  };
}

function toChannel(r: Selectable<NotificationChannelsTable>): Channel {
  return {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    kind: r.kind as Channel['kind'],
    target: r.target,
    sealed: r.sealed,
    config: JSON.parse(r.config_json) as ChannelConfig,
    createdAt: r.created_at,
    createdBy: r.created_by,
    deletedAt: r.deleted_at,
  };
}

function toDelivery(r: Selectable<NotificationDeliveriesTable>): Delivery {
  return {
    id: Number(r.id),
    channelId: r.channel_id,
    eventId: r.event_id === null ? null : Number(r.event_id),
    digestId: r.digest_id === null ? null : Number(r.digest_id),
    kinds: r.kinds ? r.kinds.split(',') : [],
    summary: r.summary,
    exempt: r.exempt === 1,
    status: r.status as DeliveryStatus,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    leaseUntil: r.lease_until,
    leaseOwner: r.lease_owner,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    lastError: r.last_error,
  };
}
