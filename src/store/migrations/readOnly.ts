/** Read-only database mode (numbered 0010: after the notifications' 0009). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function readOnlyMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0010_read_only': {
      async up(db: Kysely<any>) {
        // The mode an execution ran in (requested, or a default of its command), as recorded when it was made.
        await db.schema.alterTable('executions').addColumn('read_only', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        // Per command: read-only by default on the server (kept across catalogue syncs), and
        // listed in DJANGOCOMMAND_READONLY_COMMANDS on the Django side (as the runner reports it).
        await db.schema.alterTable('commands').addColumn('read_only_default', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('commands').addColumn('django_read_only', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('schedules').addColumn('read_only', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      },
    },
  };
}
