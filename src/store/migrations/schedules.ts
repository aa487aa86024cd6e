/** Migrations of schedules and their occurrences (numbered 0008_*: they run after 0007). */
import type { Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function scheduleMigrations(_caps: Capabilities): Record<string, Migration> {
  return {};
}
