/** Migrations of notification channels, the outbox of events and delivery attempts (numbered 0009_*: they run after 0007). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function notificationMigrations(caps: Capabilities): Record<string, Migration> {
  return {
    '0009_notifications': {
      async up(db: Kysely<any>) {
        // The outbox: every raised event, written before anything is delivered.
        await db.schema
          .createTable('notification_events')
          .addColumn('id', caps.serialType, (c) => (caps.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('project_id', 'text')
          .addColumn('execution_id', 'text')
          .addColumn('schedule_id', 'text')
          .addColumn('details_json', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          // Set once the deliverer has made this event's deliveries (one per matching channel).
          .addColumn('routed_at', 'bigint')
          .execute();
        await db.schema.createIndex('notification_events_unrouted').on('notification_events').columns(['routed_at', 'id']).execute();
      },
    },
  };
}
