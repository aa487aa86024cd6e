/** AccessStore over Kysely, for SQLite and PostgreSQL. */
import type { Kysely, Selectable } from 'kysely';
import type { Database } from './schema.js';
import type { AccessStore } from './accessStore.js';
import type { ApiToken, CiToken, Membership, MemberRow, Session } from '../domain/model.js';
import type { ProjectRole } from '../domain/roles.js';

declare module './schema.js' {
  interface Database {
    project_members: ProjectMembersTable;
    ci_tokens: CiTokensTable;
  }
}

export interface ProjectMembersTable {
  project_id: string;
  user_id: string;
  role: string;
  created_at: number;
  updated_at: number;
}

export interface CiTokensTable {
  id: string;
  project_id: string;
  name: string;
  role: string;
  prefix: string;
  token_hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toMembership(r: Selectable<ProjectMembersTable>): Membership {
  return { projectId: r.project_id, userId: r.user_id, role: r.role as ProjectRole, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) };
}

function toCiToken(r: Selectable<CiTokensTable>): CiToken {
  return {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    role: r.role as ProjectRole,
    prefix: r.prefix,
    tokenHash: r.token_hash,
    createdAt: Number(r.created_at),
    createdBy: r.created_by,
    expiresAt: numOrNull(r.expires_at),
    lastUsedAt: numOrNull(r.last_used_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

function toSession(r: Selectable<Database['sessions']>): Session {
  return { idHash: r.id_hash, userId: r.user_id, csrfToken: r.csrf_token, address: r.address, createdAt: Number(r.created_at), expiresAt: Number(r.expires_at) };
}

export class AccessSql implements AccessStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly toToken: (r: Selectable<Database['api_tokens']>) => ApiToken,
  ) {}

  async setMember(projectId: string, userId: string, role: ProjectRole, at: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const updated = await tx.updateTable('project_members').set({ role, updated_at: at }).where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
      if (Number(updated.numUpdatedRows) > 0) return false;
      await tx
        .insertInto('project_members')
        .values({ project_id: projectId, user_id: userId, role, created_at: at, updated_at: at })
        .onConflict((oc) => oc.columns(['project_id', 'user_id']).doUpdateSet({ role, updated_at: at }))
        .execute();
      return true;
    });
  }

  async removeMember(projectId: string, userId: string): Promise<boolean> {
    const res = await this.db.deleteFrom('project_members').where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listMembers(projectId: string): Promise<MemberRow[]> {
    const rows = await this.db
      .selectFrom('project_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .selectAll('m')
      .select(['u.email', 'u.disabled_at'])
      .where('m.project_id', '=', projectId)
      .orderBy('u.email')
      .execute();
    return rows.map((r) => ({ ...toMembership(r), email: r.email, disabled: r.disabled_at !== null }));
  }

  async membershipsOf(userId: string): Promise<Membership[]> {
    return (await this.db.selectFrom('project_members').selectAll().where('user_id', '=', userId).execute()).map(toMembership);
  }

  async setUserDisabled(userId: string, at: number | null): Promise<boolean> {
    const res = await this.db.updateTable('users').set({ disabled_at: at }).where('id', '=', userId).where('removed_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async removeUser(userId: string, at: number): Promise<{ tokenIds: string[]; sessionHashes: string[] } | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable('users')
        .set({ removed_at: at, disabled_at: at })
        .where('id', '=', userId)
        .where('removed_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return undefined;
      await tx.deleteFrom('project_members').where('user_id', '=', userId).execute();
      const tokens = await tx.selectFrom('api_tokens').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
      await tx.updateTable('api_tokens').set({ revoked_at: at }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
      const sessions = await tx.selectFrom('sessions').select('id_hash').where('user_id', '=', userId).execute();
      await tx.deleteFrom('sessions').where('user_id', '=', userId).execute();
      return { tokenIds: tokens.map((t) => t.id), sessionHashes: sessions.map((s) => s.id_hash) };
    });
  }

  async setPassword(userId: string, passwordHash: string, mustChange: boolean): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash, must_change_password: mustChange ? 1 : 0 }).where('id', '=', userId).execute();
  }

  async setOwner(userId: string, owner: boolean): Promise<boolean> {
    const res = await this.db.updateTable('users').set({ is_admin: owner ? 1 : 0 }).where('id', '=', userId).where('removed_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async listAllTokens(): Promise<ApiToken[]> {
    return (await this.db.selectFrom('api_tokens').selectAll().orderBy('created_at', 'desc').execute()).map(this.toToken);
  }

  async revokeAnyToken(id: string, at: number): Promise<boolean> {
    const res = await this.db.updateTable('api_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async createCiToken(t: CiToken): Promise<void> {
    await this.db
      .insertInto('ci_tokens')
      .values({
        id: t.id,
        project_id: t.projectId,
        name: t.name,
        role: t.role,
        prefix: t.prefix,
        token_hash: t.tokenHash,
        created_at: t.createdAt,
        created_by: t.createdBy,
        expires_at: t.expiresAt,
        last_used_at: t.lastUsedAt,
        revoked_at: t.revokedAt,
      })
      .execute();
  }

  async findCiTokenByHash(hash: string): Promise<CiToken | undefined> {
    const r = await this.db.selectFrom('ci_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    return r && toCiToken(r);
  }

  async getCiToken(id: string): Promise<CiToken | undefined> {
    const r = await this.db.selectFrom('ci_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toCiToken(r);
  }

  async listCiTokens(projectId: string): Promise<CiToken[]> {
    return (await this.db.selectFrom('ci_tokens').selectAll().where('project_id', '=', projectId).orderBy('created_at', 'desc').execute()).map(toCiToken);
  }

  async revokeCiToken(id: string, projectId: string, at: number): Promise<boolean> {
    const res = await this.db
      .updateTable('ci_tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('project_id', '=', projectId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async touchCiToken(id: string, at: number): Promise<void> {
    await this.db.updateTable('ci_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async listSessions(userId: string): Promise<Session[]> {
    return (await this.db.selectFrom('sessions').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').execute()).map(toSession);
  }

  async deleteUserSessions(userId: string, except?: string): Promise<string[]> {
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx.selectFrom('sessions').select('id_hash').where('user_id', '=', userId).where('id_hash', '!=', except ?? '').execute();
      await tx.deleteFrom('sessions').where('user_id', '=', userId).where('id_hash', '!=', except ?? '').execute();
      return rows.map((r) => r.id_hash);
    });
  }

  async deleteUserSession(userId: string, idHash: string): Promise<boolean> {
    const res = await this.db.deleteFrom('sessions').where('user_id', '=', userId).where('id_hash', '=', idHash).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
