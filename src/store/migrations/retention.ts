/** Migrations of retention (see retentionSql.ts). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function retentionMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0013_retention': {
      async up(db: Kysely<any>) {
        // A project's own limits; null: the server-wide default (DJANGOCOMMAND_RETENTION_*).
        await db.schema.alterTable('projects').addColumn('retention_days', 'integer').execute();
        await db.schema.alterTable('projects').addColumn('retention_max_output_bytes', 'bigint').execute();
        // One replica purges at a time: it holds this row's lease.
        await db.schema
          .createTable('retention_lease')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('until', 'bigint', (c) => c.notNull())
          .execute();
        await db.insertInto('retention_lease').values({ id: 1, holder: '', until: 0 }).execute();
        // Candidates are found per project by age of finishing.
        await db.schema.createIndex('executions_project_finished').on('executions').columns(['project_id', 'finished_at']).execute();
      },
    },
  };
}
