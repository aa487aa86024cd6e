/** NotificationStore over Kysely, for SQLite and PostgreSQL (differences: Capabilities flags only). */
import type { Kysely } from 'kysely';
import type { Capabilities } from './dialects.js';
import type { Database } from './schema.js';
import type { NewNotificationEvent, NotificationStore } from './notificationStore.js';

declare module './schema.js' {
  interface Database {
    notification_events: NotificationEventsTable;
  }
}

export interface NotificationEventsTable {
  id: import('kysely').Generated<number>;
  type: string;
  project_id: string | null;
  execution_id: string | null;
  schedule_id: string | null;
  details_json: string;
  at: number;
  routed_at: number | null;
}

export class NotificationSql implements NotificationStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: Capabilities,
  ) {}

  async recordEvent(e: NewNotificationEvent): Promise<void> {
    await this.db
      .insertInto('notification_events')
      .values({ type: e.type, project_id: e.projectId, execution_id: e.executionId, schedule_id: e.scheduleId, details_json: JSON.stringify(e.details), at: e.at, routed_at: null })
      .execute();
  }
}
