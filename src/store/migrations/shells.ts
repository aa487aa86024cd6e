/** Migrations of audited shells: sessions, their recordings in parts, and each project's shell settings (0011_*). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function shellMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0011_shells': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('shell_sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('user_label', 'text', (c) => c.notNull())
          .addColumn('runner_id', 'text')
          // starting → open → ended; or refused (never started).
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('read_only', 'integer', (c) => c.notNull())
          .addColumn('became_writable', 'integer', (c) => c.notNull())
          .addColumn('cols', 'integer', (c) => c.notNull())
          .addColumn('rows', 'integer', (c) => c.notNull())
          .addColumn('opened_at', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .addColumn('end_reason', 'text')
          .addColumn('exit_code', 'integer')
          .addColumn('recording_bytes', 'bigint', (c) => c.notNull())
          .addColumn('recording_parts', 'integer', (c) => c.notNull())
          // Touched by the server process that relays it: a session not touched for long lost its server.
          .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('shell_sessions_project').on('shell_sessions').columns(['project_id', 'opened_at']).execute();
        // The asciicast v2 recording: its event lines, in parts written as the session goes.
        await db.schema
          .createTable('shell_recording_parts')
          .addColumn('session_id', 'text', (c) => c.notNull().references('shell_sessions.id'))
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('shell_recording_parts_pk', ['session_id', 'seq'])
          .execute();
        // Shells are off for a project until an admin turns them on.
        await db.schema
          .createTable('shell_settings')
          .addColumn('project_id', 'text', (c) => c.primaryKey().references('projects.id'))
          .addColumn('enabled', 'integer', (c) => c.notNull())
          .addColumn('idle_timeout_seconds', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .execute();
      },
    },
  };
}
