/** Migrations for throughput: indexes the hot paths of a busy server need (bench/executionThroughput.ts). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function scaleMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0017_execution_indexes': {
      async up(db: Kysely<any>) {
        // What to dispatch next in a project: queued and dispatched, oldest first. Without
        // created_at in the index, SQLite walked the whole table in created_at order.
        await db.schema.createIndex('executions_project_status_created').on('executions').columns(['project_id', 'status', 'created_at']).execute();
        // The previous ends of the same command (a recovery notification, the command's history).
        await db.schema.createIndex('executions_project_command_created').on('executions').columns(['project_id', 'command', 'created_at']).execute();
        // Superseded by the first index.
        await db.schema.dropIndex('executions_project_status').execute();
      },
    },
    '0018_execution_active_index': {
      async up(db: Kysely<any>) {
        // The active executions of a command, counted on every create to enforce its
        // concurrency limit: without status in the index, every past run of the command was read.
        await db.schema.createIndex('executions_project_command_status').on('executions').columns(['project_id', 'command', 'status']).execute();
      },
    },
  };
}
