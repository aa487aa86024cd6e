/**
 * Numbered schema migrations; they run on every start and are recorded by Kysely's Migrator,
 * so each runs once per database. Never edit a migration that has shipped: add the next one.
 *
 * The rows of `projects` and `runner_keys` are cached in-process on SQLite (rowCache.ts), emptied
 * by any write statement that names those tables. A trigger or an ON DELETE / ON UPDATE action
 * that changes them from a write to another table would go unseen: add none without teaching
 * rowCache.ts's CACHED_TABLES the other table.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Capabilities } from './dialects.js';
import { scheduleMigrations } from './migrations/schedules.js';
import { notificationMigrations } from './migrations/notifications.js';
import { shellMigrations } from './migrations/shells.js';
import { auditChainMigrations } from './migrations/auditChain.js';
import { retentionMigrations } from './migrations/retention.js';
import { readOnlyMigrations } from './migrations/readOnly.js';
import { accessMigrations } from './migrations/access.js';
import { scaleMigrations } from './migrations/scale.js';
import { commandSettingsMigrations } from './migrations/commandSettings.js';
import { oidcMigrations } from './migrations/oidc.js';

export function migrations(caps: Capabilities): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<any>) {
        const text = 'text';
        const ms = 'bigint';
        await db.schema
          .createTable('users')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('email', text, (c) => c.notNull().unique())
          .addColumn('password_hash', text, (c) => c.notNull())
          .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('api_tokens')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('user_id', text, (c) => c.notNull().references('users.id'))
          .addColumn('name', text, (c) => c.notNull())
          .addColumn('prefix', text, (c) => c.notNull())
          .addColumn('token_hash', text, (c) => c.notNull().unique())
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('last_used_at', ms)
          .addColumn('revoked_at', ms)
          .execute();
        await db.schema
          .createTable('sessions')
          .addColumn('id_hash', text, (c) => c.primaryKey())
          .addColumn('user_id', text, (c) => c.notNull().references('users.id'))
          .addColumn('csrf_token', text, (c) => c.notNull())
          .addColumn('address', text)
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('expires_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('projects')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('name', text, (c) => c.notNull().unique())
          .addColumn('commands_hash', text, (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('runner_keys')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('project_id', text, (c) => c.notNull().references('projects.id'))
          .addColumn('name', text, (c) => c.notNull())
          .addColumn('prefix', text, (c) => c.notNull().unique())
          .addColumn('key_hash', text, (c) => c.notNull().unique())
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('revoked_at', ms)
          .execute();
        await db.schema
          .createTable('request_nonces')
          .addColumn('key_id', text, (c) => c.notNull())
          .addColumn('nonce', text, (c) => c.notNull())
          .addColumn('seen_at', ms, (c) => c.notNull())
          // What the request was and what we answered, so a retry gets the same answer.
          .addColumn('fingerprint', text, (c) => c.notNull().defaultTo(''))
          .addColumn('response_status', 'integer')
          .addColumn('response_body', text)
          .addPrimaryKeyConstraint('request_nonces_pk', ['key_id', 'nonce'])
          .execute();
        await db.schema.createIndex('request_nonces_seen_at').on('request_nonces').column('seen_at').execute();
        await db.schema
          .createTable('runners')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('project_id', text, (c) => c.notNull().references('projects.id'))
          .addColumn('key_id', text, (c) => c.notNull().references('runner_keys.id'))
          .addColumn('address', text, (c) => c.notNull())
          .addColumn('protocol', text, (c) => c.notNull())
          // v1 runners are told apart by key and address; v2 runners name themselves (runner_id).
          .addColumn('instance', text, (c) => c.notNull().defaultTo(''))
          .addColumn('hostname', text, (c) => c.notNull().defaultTo(''))
          .addColumn('max_concurrency', 'integer')
          .addColumn('runner_version', text, (c) => c.notNull().defaultTo(''))
          .addColumn('python_version', text, (c) => c.notNull().defaultTo(''))
          .addColumn('django_version', text, (c) => c.notNull().defaultTo(''))
          .addColumn('commands_hash', text, (c) => c.notNull().defaultTo(''))
          .addColumn('first_seen_at', ms, (c) => c.notNull())
          .addColumn('last_seen_at', ms, (c) => c.notNull())
          .addUniqueConstraint('runners_identity', ['key_id', 'address', 'protocol', 'instance'])
          .execute();
        await db.schema
          .createTable('commands')
          .addColumn('project_id', text, (c) => c.notNull().references('projects.id'))
          .addColumn('name', text, (c) => c.notNull())
          .addColumn('app_label', text, (c) => c.notNull())
          .addColumn('help_text', text, (c) => c.notNull())
          .addColumn('schema_json', text)
          .addColumn('refused', text)
          .addColumn('max_concurrency', 'integer')
          .addColumn('synced_at', ms, (c) => c.notNull())
          .addPrimaryKeyConstraint('commands_pk', ['project_id', 'name'])
          .execute();
        await db.schema
          .createTable('executions')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('project_id', text, (c) => c.notNull().references('projects.id'))
          .addColumn('command', text, (c) => c.notNull())
          .addColumn('args', text, (c) => c.notNull())
          .addColumn('argv_json', text, (c) => c.notNull())
          .addColumn('status', text, (c) => c.notNull())
          .addColumn('status_reason', text)
          .addColumn('exit_code', 'integer')
          .addColumn('timeout_seconds', 'integer', (c) => c.notNull())
          .addColumn('metadata_only', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('created_by_type', text, (c) => c.notNull())
          .addColumn('created_by_id', text)
          .addColumn('created_by_label', text, (c) => c.notNull())
          .addColumn('runner_id', text)
          .addColumn('dispatched_at', ms)
          .addColumn('started_at', ms)
          .addColumn('finished_at', ms)
          .addColumn('cancel_requested_at', ms)
          .addColumn('cancel_force', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('cancel_reason', text)
          .addColumn('output_bytes', ms, (c) => c.notNull().defaultTo(0))
          .addColumn('output_chunks', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.createIndex('executions_project_status').on('executions').columns(['project_id', 'status']).execute();
        await db.schema.createIndex('executions_created').on('executions').columns(['created_at', 'id']).execute();
        await db.schema.createIndex('executions_status').on('executions').column('status').execute();
        await db.schema
          .createTable('output_chunks')
          .addColumn('execution_id', text, (c) => c.notNull().references('executions.id'))
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('stream', text, (c) => c.notNull())
          .addColumn('data', text, (c) => c.notNull())
          .addColumn('line_times_json', text, (c) => c.notNull())
          .addColumn('received_at', ms, (c) => c.notNull())
          .addPrimaryKeyConstraint('output_chunks_pk', ['execution_id', 'seq'])
          .execute();
        if (caps.outputCompression) {
          // Needs PostgreSQL 14+ built with lz4; without it the default compression stays.
          const { rows } = await sql<{ ok: number }>`SELECT 1 AS ok FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)`.execute(db);
          if (rows.length > 0) await sql`ALTER TABLE output_chunks ALTER COLUMN data SET COMPRESSION lz4`.execute(db);
        }
        await db.schema
          .createTable('audit_events')
          .addColumn('id', caps.serialType, (c) => (caps.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('at', ms, (c) => c.notNull())
          .addColumn('actor_type', text, (c) => c.notNull())
          .addColumn('actor_id', text)
          .addColumn('actor_label', text, (c) => c.notNull())
          .addColumn('address', text)
          .addColumn('action', text, (c) => c.notNull())
          .addColumn('project_id', text)
          .addColumn('execution_id', text)
          .addColumn('outcome', text, (c) => c.notNull())
          .addColumn('details_json', text, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_events_project').on('audit_events').columns(['project_id', 'id']).execute();
        await db.schema.createIndex('audit_events_execution').on('audit_events').column('execution_id').execute();
      },
    },
    '0002_output_last_seq': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('executions').addColumn('output_last_seq', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await sql`UPDATE executions SET output_last_seq = COALESCE((SELECT MAX(seq) FROM output_chunks WHERE output_chunks.execution_id = executions.id), 0)`.execute(db);
      },
    },
    '0003_login_attempts': {
      async up(db: Kysely<any>) {
        // Sign-in attempts per hash of "address|email", shared by every replica.
        await db.schema
          .createTable('login_attempts')
          .addColumn('key_hash', 'text', (c) => c.primaryKey())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('window_ends_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0004_output_gaps_and_late_ends': {
      async up(db: Kysely<any>) {
        // How many output chunks a v2 runner said it sent, to see a gap at the end of the output;
        // and how a lost execution really ended when its runner told us later (lost stays final).
        await db.schema.alterTable('executions').addColumn('output_expected_seq', 'integer').execute();
        await db.schema.alterTable('executions').addColumn('late_status', 'text').execute();
        await db.schema.alterTable('executions').addColumn('late_exit_code', 'integer').execute();
      },
    },
    '0005_v1_chunk_parts': {
      async up(db: Kysely<any>) {
        // A v1 chunk can be hundreds of megabytes (the Python runner sends 1.5 s of output at
        // once): it is stored as parts under consecutive stored seqs, written as the body streams
        // in. This table maps the runner's chunk number to them and says when all have arrived.
        await db.schema
          .createTable('v1_chunks')
          .addColumn('execution_id', 'text', (c) => c.notNull().references('executions.id'))
          .addColumn('chunk_number', 'integer', (c) => c.notNull())
          .addColumn('parts_stored', 'integer', (c) => c.notNull())
          .addColumn('complete', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('v1_chunks_pk', ['execution_id', 'chunk_number'])
          .execute();
        // The runner's own numbering (v1 chunk numbers, v2 seqs): where holes are seen.
        await db.schema.alterTable('executions').addColumn('runner_last_seq', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('executions').addColumn('runner_chunks', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await sql`UPDATE executions SET runner_last_seq = output_last_seq, runner_chunks = output_chunks`.execute(db);
      },
    },
    '0006_start_deadline': {
      async up(db: Kysely<any>) {
        // An execution no runner started by then ends `expired`: a migrate nobody waits for any
        // more never starts by itself hours later. Older executions have none.
        await db.schema.alterTable('executions').addColumn('start_deadline', 'bigint').execute();
      },
    },
    '0007_runner_stopped_schedule_link': {
      async up(db: Kysely<any>) {
        // A runner that said it was stopping: offline at once, not after the offline period.
        await db.schema.alterTable('runners').addColumn('stopped_at', 'bigint').execute();
        // The schedule that created an execution (none for a run someone asked for).
        await db.schema.alterTable('executions').addColumn('schedule_id', 'text').execute();
      },
    },
    // Each concept with tables of its own keeps its migrations beside its SQL.
    ...scheduleMigrations(caps),
    ...notificationMigrations(caps),
    ...shellMigrations(caps),
    ...auditChainMigrations(caps),
    ...retentionMigrations(caps),
    ...readOnlyMigrations(caps),
    ...accessMigrations(caps),
    ...commandSettingsMigrations(caps),
    ...oidcMigrations(caps),
    ...scaleMigrations(caps),
  };
}
