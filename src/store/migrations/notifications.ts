/** Migrations of notification channels, the outbox of events and delivery attempts (numbered 0009_*: they run after 0007). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function notificationMigrations(caps: Capabilities): Record<string, Migration> {
  const serialKey = (c: import('kysely').ColumnDefinitionBuilder) => (caps.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey());
  return {
    '0009_notifications': {
      async up(db: Kysely<any>) {
        // The outbox: every raised event, written before anything is delivered.
        await db.schema
          .createTable('notification_events')
          .addColumn('id', caps.serialType, serialKey)
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('project_id', 'text')
          .addColumn('execution_id', 'text')
          .addColumn('schedule_id', 'text')
          // Set for an event meant for one channel only (a test message, a channel's slow threshold).
          .addColumn('channel_id', 'text')
          // An event raised twice with the same key is recorded once (a slow execution per channel).
          .addColumn('dedup_key', 'text', (c) => c.unique())
          .addColumn('details_json', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          // Set once the deliverer has made this event's deliveries (one per matching channel).
          .addColumn('routed_at', 'bigint')
          .execute();
        await db.schema.createIndex('notification_events_unrouted').on('notification_events').columns(['routed_at', 'id']).execute();

        // Where messages go. Secrets (webhook URL, signing secret, SMTP URL) are only in `sealed`,
        // encrypted with the server key (AES-256-GCM); `target` is the redacted form lists show.
        await db.schema
          .createTable('notification_channels')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('project_id', 'text', (c) => c.references('projects.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('sealed', 'text', (c) => c.notNull())
          .addColumn('config_json', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('deleted_at', 'bigint')
          .execute();

        // One message to one channel: an event's, or a digest of several (event_id null).
        await db.schema
          .createTable('notification_deliveries')
          .addColumn('id', caps.serialType, serialKey)
          .addColumn('channel_id', 'text', (c) => c.notNull().references('notification_channels.id'))
          .addColumn('event_id', 'bigint')
          .addColumn('digest_id', 'bigint')
          .addColumn('kinds', 'text', (c) => c.notNull())
          .addColumn('summary', 'text', (c) => c.notNull())
          // 1: never held back by storm control nor counted in it (test messages).
          .addColumn('exempt', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_until', 'bigint')
          .addColumn('lease_owner', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint')
          .addColumn('last_error', 'text')
          .execute();
        // Each event reaches each channel once, however often routing is tried.
        await db.schema.createIndex('notification_deliveries_once').on('notification_deliveries').columns(['channel_id', 'event_id']).unique().execute();
        await db.schema.createIndex('notification_deliveries_due').on('notification_deliveries').columns(['status', 'next_attempt_at']).execute();
        await db.schema.createIndex('notification_deliveries_recent').on('notification_deliveries').columns(['channel_id', 'created_at']).execute();

        await db.schema
          .createTable('notification_attempts')
          .addColumn('id', caps.serialType, serialKey)
          .addColumn('delivery_id', 'bigint', (c) => c.notNull())
          .addColumn('channel_id', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('ok', 'integer', (c) => c.notNull())
          .addColumn('status_code', 'integer')
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('notification_attempts_delivery').on('notification_attempts').columns(['delivery_id', 'id']).execute();

        // What was last announced about each runner (online or offline), so a change is told once.
        await db.schema
          .createTable('notification_runner_states')
          .addColumn('runner_id', 'text', (c) => c.primaryKey())
          .addColumn('online', 'integer', (c) => c.notNull())
          .addColumn('changed_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
  };
}
