/**
 * The store's part for who may do what: project members, CI tokens, and the states of users and
 * their credentials (disable, remove, sessions). Implemented once over SQLite and PostgreSQL in
 * accessSql.ts.
 */
import type { ApiToken, CiToken, Membership, MemberRow, Session } from '../domain/model.js';
import type { ProjectRole } from '../domain/roles.js';

export interface AccessStore {
  /** Adds or changes a member's role; true when the user was not a member before. */
  setMember(projectId: string, userId: string, role: ProjectRole, at: number): Promise<boolean>;
  removeMember(projectId: string, userId: string): Promise<boolean>;
  listMembers(projectId: string): Promise<MemberRow[]>;
  membershipsOf(userId: string): Promise<Membership[]>;

  setUserDisabled(userId: string, at: number | null): Promise<boolean>;
  /**
   * Removes a user in one transaction: marks the row removed and disabled, drops their
   * memberships, revokes their tokens and deletes their sessions. Returns the ids of the
   * tokens revoked and the sessions ended (their live streams are ended by the caller).
   */
  removeUser(userId: string, at: number): Promise<{ tokenIds: string[]; sessionHashes: string[] } | undefined>;
  setPassword(userId: string, passwordHash: string, mustChange: boolean): Promise<void>;
  /** Sets the owner flag (is_admin); false when no such user. */
  setOwner(userId: string, owner: boolean): Promise<boolean>;

  listAllTokens(): Promise<ApiToken[]>;
  /** Revokes any personal token; false when it is unknown or revoked already. */
  revokeAnyToken(id: string, at: number): Promise<boolean>;

  createCiToken(token: CiToken): Promise<void>;
  findCiTokenByHash(hash: string): Promise<CiToken | undefined>;
  getCiToken(id: string): Promise<CiToken | undefined>;
  listCiTokens(projectId: string): Promise<CiToken[]>;
  revokeCiToken(id: string, projectId: string, at: number): Promise<boolean>;
  touchCiToken(id: string, at: number): Promise<void>;

  listSessions(userId: string): Promise<Session[]>;
  /** Deletes every session of the user but `except` (disable, password change); returns their hashes. */
  deleteUserSessions(userId: string, except?: string): Promise<string[]>;
  /** Deletes one session of the user; false when it is not theirs. */
  deleteUserSession(userId: string, idHash: string): Promise<boolean>;
}
