/** Migrations of schedules and their occurrences (numbered 0008_*: they run after 0007). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function scheduleMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0008_schedules': {
      async up(db: Kysely<any>) {
        const ms = 'bigint';
        await db.schema
          .createTable('schedules')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
          .addColumn('name', 'text')
          .addColumn('command', 'text', (c) => c.notNull())
          .addColumn('argv_json', 'text', (c) => c.notNull())
          .addColumn('args', 'text', (c) => c.notNull())
          .addColumn('cron', 'text', (c) => c.notNull())
          .addColumn('timezone', 'text', (c) => c.notNull())
          .addColumn('timeout_seconds', 'integer')
          .addColumn('start_timeout_seconds', 'integer', (c) => c.notNull())
          .addColumn('overlap', 'text', (c) => c.notNull())
          .addColumn('misfire', 'text', (c) => c.notNull())
          .addColumn('catch_up_seconds', 'integer', (c) => c.notNull())
          .addColumn('health_every_minutes', 'integer')
          .addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('paused_at', ms)
          .addColumn('paused_reason', 'text')
          // 'api' or 'code' (DJANGOCOMMAND_SCHEDULES); a code schedule's name is its key.
          .addColumn('source', 'text', (c) => c.notNull().defaultTo('api'))
          // The next occurrence to fire; NULL while paused or deleted, so the scheduler's one
          // query ("what is due?") reads only schedules that can fire.
          .addColumn('next_due_at', ms)
          .addColumn('last_success_at', ms)
          .addColumn('health_since', ms, (c) => c.notNull())
          .addColumn('health_alerted_for', ms)
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('updated_at', ms, (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          // Deleted schedules are kept (hidden) so executions still name the schedule that made them.
          .addColumn('deleted_at', ms)
          .execute();
        await db.schema.createIndex('schedules_next_due').on('schedules').column('next_due_at').execute();
        await db.schema.createIndex('schedules_project').on('schedules').columns(['project_id', 'created_at']).execute();
        await db.schema
          .createTable('schedule_occurrences')
          .addColumn('schedule_id', 'text', (c) => c.notNull().references('schedules.id'))
          .addColumn('due_at', ms, (c) => c.notNull())
          .addColumn('project_id', 'text', (c) => c.notNull())
          .addColumn('trigger', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('execution_id', 'text')
          .addColumn('count', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('last_due_at', ms, (c) => c.notNull())
          .addColumn('recorded_at', ms, (c) => c.notNull())
          .addColumn('claimed_by', 'text')
          .addColumn('claimed_at', ms)
          .addColumn('open', 'integer', (c) => c.notNull().defaultTo(0))
          // Exactly one occurrence per schedule and due time, whichever server fires it.
          .addPrimaryKeyConstraint('schedule_occurrences_pk', ['schedule_id', 'due_at'])
          .execute();
        // One execution per occurrence, enforced too.
        await db.schema.createIndex('schedule_occurrences_execution').on('schedule_occurrences').column('execution_id').unique().execute();
        // The few occurrences the scheduler looks after: pending, waiting, started and not ended.
        await db.schema.createIndex('schedule_occurrences_work').on('schedule_occurrences').columns(['outcome', 'open']).execute();
        await db.schema.createIndex('executions_schedule').on('executions').columns(['schedule_id', 'created_at']).execute();
      },
    },
  };
}
