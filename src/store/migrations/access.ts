/** Migrations of who may do what (see accessSql.ts): project members, token limits, CI tokens, user states. */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function accessMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0014_access': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('project_members')
          .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('project_members_pk', ['project_id', 'user_id'])
          .execute();
        await db.schema.createIndex('project_members_user').on('project_members').column('user_id').execute();
        // Before roles, every user could run every command of every project: an upgrade keeps
        // that as operator membership, so nobody loses access they had (admins become owners).
        const now = Date.now();
        const users = await db.selectFrom('users').select('id').where('is_admin', '=', 0).execute();
        const projects = await db.selectFrom('projects').select('id').execute();
        for (const u of users) {
          for (const p of projects) {
            await db.insertInto('project_members').values({ project_id: p.id, user_id: u.id, role: 'operator', created_at: now, updated_at: now }).execute();
          }
        }
        // A disabled user cannot sign in or use a token; a removed one is also gone from lists
        // (the row stays, so history keeps pointing at it).
        await db.schema.alterTable('users').addColumn('disabled_at', 'bigint').execute();
        await db.schema.alterTable('users').addColumn('removed_at', 'bigint').execute();
        // A one-time password: the first sign-in must set a new one.
        await db.schema.alterTable('users').addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        // A personal token's limits: some projects only (JSON array; null: all its owner's), read-only, an end.
        await db.schema.alterTable('api_tokens').addColumn('project_ids', 'text').execute();
        await db.schema.alterTable('api_tokens').addColumn('read_only', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('api_tokens').addColumn('expires_at', 'bigint').execute();
        // Tokens for CI: one project, one role, no person behind them.
        await db.schema
          .createTable('ci_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('prefix', 'text', (c) => c.notNull())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema.createIndex('ci_tokens_project').on('ci_tokens').column('project_id').execute();
        // Sessions are listed per user.
        await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
        await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute();
      },
    },
  };
}
