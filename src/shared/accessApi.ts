/**
 * The REST views and requests of people and access (users, tokens, sessions, project members,
 * CI tokens), defined once: the server builds them here, the CLI and the dashboard read them.
 */
import { Type } from '@sinclair/typebox';
import type { ApiToken, CiToken, MemberRow, Session, User } from '../domain/model.js';
import { PROJECT_ROLES, type ProjectRole } from '../domain/roles.js';

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export interface UserView {
  id: string;
  email: string;
  /** Server-wide owner (is_admin kept for clients of earlier versions). */
  owner: boolean;
  is_admin: boolean;
  disabled: boolean;
  must_change_password: boolean;
  created_at: string;
}

export const userView = (u: User): UserView => ({
  id: u.id,
  email: u.email,
  owner: u.isAdmin,
  is_admin: u.isAdmin,
  disabled: u.disabledAt !== null,
  must_change_password: u.mustChangePassword,
  created_at: iso(u.createdAt),
});

export interface MeView {
  id: string | null;
  email: string | null;
  owner: boolean;
  is_admin: boolean;
  /** Who the server records as acting: the person, their token, or a CI token. */
  actor: string;
  must_change_password: boolean;
  /** The caller's role per project name, after its token's limits. */
  roles: Record<string, ProjectRole>;
  token: { read_only: boolean; projects: string[] | null; expires_at: string | null } | null;
}

export interface TokenView {
  id: string;
  name: string;
  prefix: string;
  user_id: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  expires_at: string | null;
  read_only: boolean;
  /** Project ids it is limited to; null: all its owner's. */
  project_ids: string[] | null;
}

export const tokenView = (t: ApiToken): TokenView => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  user_id: t.userId,
  created_at: iso(t.createdAt),
  last_used_at: isoOrNull(t.lastUsedAt),
  revoked_at: isoOrNull(t.revokedAt),
  expires_at: isoOrNull(t.expiresAt),
  read_only: t.readOnly,
  project_ids: t.projectIds,
});

export interface CiTokenView {
  id: string;
  name: string;
  prefix: string;
  role: ProjectRole;
  created_at: string;
  created_by: string;
  last_used_at: string | null;
  revoked_at: string | null;
  expires_at: string | null;
}

export const ciTokenView = (t: CiToken): CiTokenView => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  role: t.role,
  created_at: iso(t.createdAt),
  created_by: t.createdBy,
  last_used_at: isoOrNull(t.lastUsedAt),
  revoked_at: isoOrNull(t.revokedAt),
  expires_at: isoOrNull(t.expiresAt),
});

export interface SessionView {
  /** The stored hash of the session's secret: names it, cannot be used to sign in. */
  id: string;
  address: string | null;
  created_at: string;
  expires_at: string;
  current: boolean;
}

export const sessionView = (s: Session, current: string | undefined): SessionView => ({
  id: s.idHash,
  address: s.address,
  created_at: iso(s.createdAt),
  expires_at: iso(s.expiresAt),
  current: s.idHash === current,
});

export interface MemberView {
  user_id: string;
  email: string;
  role: ProjectRole;
  disabled: boolean;
  since: string;
}

export const memberView = (m: MemberRow): MemberView => ({ user_id: m.userId, email: m.email, role: m.role, disabled: m.disabled, since: iso(m.createdAt) });

/** Checked by core (checkRole), whose error names the roles there are. */
const Role = Type.String({ maxLength: 40, description: `One of ${PROJECT_ROLES.join(', ')}.` });
const Expiry = Type.Optional(Type.Union([Type.String({ format: 'date-time', maxLength: 40 }), Type.Null()], { description: 'ISO 8601; null or absent: never.' }));

export const CreateTokenRequest = Type.Object(
  {
    name: Type.String({ maxLength: 200 }),
    projects: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100, description: 'Project names or ids; absent: all of yours.' })),
    read_only: Type.Optional(Type.Boolean()),
    expires_at: Expiry,
  },
  { additionalProperties: false },
);
export type CreateTokenRequest = { name: string; projects?: string[]; read_only?: boolean; expires_at?: string | null };

export const CreateCiTokenRequest = Type.Object({ name: Type.String({ maxLength: 200 }), role: Role, expires_at: Expiry }, { additionalProperties: false });
export type CreateCiTokenRequest = { name: string; role: ProjectRole; expires_at?: string | null };

export const SetMemberRequest = Type.Object({ email: Type.String({ maxLength: 254 }), role: Role }, { additionalProperties: false });
export type SetMemberRequest = { email: string; role: ProjectRole };

export const ChangePasswordRequest = Type.Object(
  { current_password: Type.String({ maxLength: 1024 }), new_password: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false },
);

export const UpdateUserRequest = Type.Object({ disabled: Type.Optional(Type.Boolean()), owner: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

/** An ISO time from a request, as unix ms (the schema checked its form). */
export function expiryOf(value: string | null | undefined): number | null {
  return value ? Date.parse(value) : null;
}
