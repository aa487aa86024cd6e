/** Migrations of single sign-on (see oidcSql.ts): linked provider identities and pending sign-ins (0015_oidc). */
import type { Kysely, Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';

export function oidcMigrations(_caps: Capabilities): Record<string, Migration> {
  return {
    '0015_oidc': {
      async up(db: Kysely<any>) {
        // A person at a provider (issuer + subject, never the email, which can change) is one user here.
        await db.schema
          .createTable('oidc_identities')
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('email', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_login_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('oidc_identities_pk', ['issuer', 'subject'])
          .execute();
        await db.schema.createIndex('oidc_identities_user').on('oidc_identities').column('user_id').execute();
        // A sign-in on its way through the provider: found by the hash of the browser's cookie,
        // used once, and only for a few minutes. Kept here (not in the browser) so any replica
        // can finish it and nothing the browser sends can change state, nonce or verifier.
        await db.schema
          .createTable('oidc_logins')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('nonce', 'text', (c) => c.notNull())
          .addColumn('code_verifier', 'text', (c) => c.notNull())
          .addColumn('redirect_uri', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('oidc_logins_expires_at').on('oidc_logins').column('expires_at').execute();
      },
    },
  };
}
