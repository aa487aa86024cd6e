/**
 * Command settings and four-eyes approvals (see commandSettingsSql.ts and approvalSql.ts).
 * Both tables are keyed by the command's name, not by its catalogue row: a catalogue sync
 * (replaceCommands deletes and re-inserts the rows) or a command missing from one deploy's
 * catalogue never drops a "requires approval".
 */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function commandSettingsMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0016_command_settings': {
      async up(db: Kysely<any>) {
        // What a project admin chose per command, besides read_only_default and max_concurrency
        // (on the catalogue row since 0001/0010; written together with these, in one transaction).
        await db.schema
          .createTable('command_settings')
          .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
          .addColumn('command', 'text', (c) => c.notNull())
          .addColumn('metadata_only', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('default_timeout_seconds', 'integer')
          .addColumn('requires_approval', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('approval_pattern', 'text')
          .addColumn('approver_role', 'text', (c) => c.notNull().defaultTo('operator'))
          .addColumn('approval_expiry_seconds', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('command_settings_pk', ['project_id', 'command'])
          .execute();
        // One row per execution that waits (or waited) for approval, written before the
        // execution itself (so no foreign key to executions): an execution in awaiting_approval
        // always has its request; a request whose execution was refused is deleted again.
        await db.schema
          .createTable('approval_requests')
          .addColumn('execution_id', 'text', (c) => c.primaryKey())
          .addColumn('project_id', 'text', (c) => c.notNull())
          .addColumn('command', 'text', (c) => c.notNull())
          // SHA-256 of project, command, argv, args and mode (core/approvals.ts, of domain/approval.ts bindingText).
          .addColumn('binding_hash', 'text', (c) => c.notNull())
          // The people behind the request (JSON array of user ids): never approvers of it.
          .addColumn('requester_ids', 'text', (c) => c.notNull())
          .addColumn('requested_by', 'text', (c) => c.notNull())
          .addColumn('approver_role', 'text', (c) => c.notNull())
          .addColumn('start_timeout_seconds', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('decided_at', 'bigint')
          .addColumn('decided_by_id', 'text')
          .addColumn('decided_by', 'text')
          .addColumn('comment', 'text')
          .execute();
        await db.schema.createIndex('approval_requests_pending').on('approval_requests').columns(['status', 'expires_at']).execute();
        await db.schema.createIndex('approval_requests_project').on('approval_requests').columns(['project_id', 'status']).execute();
      },
    },
  };
}
