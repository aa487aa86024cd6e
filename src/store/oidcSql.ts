/** OidcStore over Kysely, for SQLite and PostgreSQL. */
import type { Kysely, Selectable } from 'kysely';
import type { Database } from './schema.js';
import type { OidcIdentity, OidcStore, PendingOidcLogin } from './oidcStore.js';

declare module './schema.js' {
  interface Database {
    oidc_identities: OidcIdentitiesTable;
    oidc_logins: OidcLoginsTable;
  }
}

export interface OidcIdentitiesTable {
  issuer: string;
  subject: string;
  user_id: string;
  email: string;
  created_at: number;
  last_login_at: number;
}

export interface OidcLoginsTable {
  id_hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  redirect_uri: string;
  created_at: number;
  expires_at: number;
}

function toIdentity(r: Selectable<OidcIdentitiesTable>): OidcIdentity {
  return { issuer: r.issuer, subject: r.subject, userId: r.user_id, email: r.email, createdAt: Number(r.created_at), lastLoginAt: Number(r.last_login_at) };
}

export class OidcSql implements OidcStore {
  constructor(private readonly db: Kysely<Database>) {}

  async findIdentity(issuer: string, subject: string): Promise<OidcIdentity | undefined> {
    const r = await this.db.selectFrom('oidc_identities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
    return r && toIdentity(r);
  }

  async linkIdentity(i: OidcIdentity): Promise<boolean> {
    const res = await this.db
      .insertInto('oidc_identities')
      .values({ issuer: i.issuer, subject: i.subject, user_id: i.userId, email: i.email, created_at: i.createdAt, last_login_at: i.lastLoginAt })
      .onConflict((oc) => oc.columns(['issuer', 'subject']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async touchIdentity(issuer: string, subject: string, email: string, at: number): Promise<void> {
    await this.db.updateTable('oidc_identities').set({ email, last_login_at: at }).where('issuer', '=', issuer).where('subject', '=', subject).execute();
  }

  async savePendingLogin(l: PendingOidcLogin): Promise<void> {
    await this.db
      .insertInto('oidc_logins')
      .values({ id_hash: l.idHash, state: l.state, nonce: l.nonce, code_verifier: l.codeVerifier, redirect_uri: l.redirectUri, created_at: l.createdAt, expires_at: l.expiresAt })
      .execute();
  }

  async takePendingLogin(idHash: string, now: number): Promise<PendingOidcLogin | undefined> {
    // Delete first and read what was deleted: of two callbacks racing with one cookie, one wins.
    const r = await this.db.deleteFrom('oidc_logins').where('id_hash', '=', idHash).returningAll().executeTakeFirst();
    if (!r || Number(r.expires_at) <= now) return undefined;
    return {
      idHash: r.id_hash,
      state: r.state,
      nonce: r.nonce,
      codeVerifier: r.code_verifier,
      redirectUri: r.redirect_uri,
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
    };
  }

  async prunePendingLogins(now: number): Promise<number> {
    const res = await this.db.deleteFrom('oidc_logins').where('expires_at', '<=', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
