/**
 * The store's part for notifications: channels, the durable outbox of raised events, and each
 * delivery with its attempts. Implemented once over SQLite and PostgreSQL in notificationSql.ts.
 */
export interface NewNotificationEvent {
  type: string;
  projectId: string | null;
  executionId: string | null;
  scheduleId: string | null;
  details: Record<string, unknown>;
  at: number;
}

export interface NotificationStore {
  /** Writes a raised event to the outbox (see core/notify.ts). */
  recordEvent(event: NewNotificationEvent): Promise<void>;
}
