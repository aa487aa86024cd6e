/** ScheduleStore over Kysely, for SQLite and PostgreSQL (differences: Capabilities flags only). */
import type { Kysely } from 'kysely';
import type { Capabilities } from './dialects.js';
import type { Database } from './schema.js';
import type { ScheduleStore } from './scheduleStore.js';

export class ScheduleSql implements ScheduleStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: Capabilities,
  ) {}
}
