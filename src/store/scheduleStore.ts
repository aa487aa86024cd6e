/**
 * The store's part for schedules and their occurrences (one row per schedule and due time:
 * exactly one execution per occurrence, also with several server processes). Implemented once
 * over SQLite and PostgreSQL in scheduleSql.ts.
 */
export interface ScheduleStore {}
