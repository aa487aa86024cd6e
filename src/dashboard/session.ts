/**
 * Who is signed in in this tab, and what they may do. The cookie is HttpOnly: the page only
 * knows what the server said. Their roles come from /api/v1/me once after sign-in, and again
 * when the server refuses something (the role may have changed). The page hides what a role
 * may not use; the server still decides, and its DC_ error is shown when it refuses.
 */
import { api, setCsrfToken, type SessionUser, type SessionView } from './api.js';
import { accessApi, type MeView } from './accessApi.js';
import { atLeast, PERMISSIONS, type Permission, type ProjectRole } from '../domain/roles.js';

let user: SessionUser | null = null;
let me: MeView | null = null;

export function signedInUser(): SessionUser | null {
  return user;
}

export function adopt(session: SessionView | null): void {
  user = session?.user ?? null;
  me = null;
  setCsrfToken(session?.csrf_token ?? null);
}

/** Asks the server whether the cookie still holds a session, and what its person may do. */
export async function loadSession(): Promise<SessionUser | null> {
  try {
    adopt(await api.session());
  } catch {
    adopt(null);
  }
  if (user) await loadRoles();
  return user;
}

/** Fetches the caller's roles; true when they differ from what the page knew. */
export async function loadRoles(): Promise<boolean> {
  const before = me ? rolesKey(me) : null;
  try {
    me = await accessApi.me();
  } catch {
    // Signed out meanwhile (the 401 handler takes over), or the server is away: keep what we knew.
    return false;
  }
  if (user) user = { ...user, owner: me.owner, is_admin: me.is_admin, must_change_password: me.must_change_password };
  return before !== null && before !== rolesKey(me);
}

/** Whether the roles were loaded since sign-in. */
export function rolesLoaded(): boolean {
  return me !== null;
}

function rolesKey(m: MeView): string {
  return JSON.stringify([m.owner, m.must_change_password, Object.entries(m.roles).sort()]);
}

/** The caller's role in a project (by name), null when they are not a member. */
export function roleIn(project: string): ProjectRole | null {
  // An owner is admin of every project, also of one made after /me answered.
  if (me?.owner && !me.token) return 'admin';
  return me?.roles[project] ?? null;
}

/** Whether the caller's role in the project allows `permission` (the server's table, domain/roles.ts). */
export function may(project: string, permission: Permission): boolean {
  return atLeast(roleIn(project), PERMISSIONS[permission]);
}

/** Whether the caller may do `permission` in at least one project (a "New schedule" button, say). */
export function mayInSome(permission: Permission): boolean {
  if (me?.owner && !me.token) return true;
  return Object.values(me?.roles ?? {}).some((role) => atLeast(role, PERMISSIONS[permission]));
}

/** Server-wide owner: users and projects. */
export function isOwner(): boolean {
  return me?.owner ?? user?.owner ?? false;
}

/** The first sign-in with a one-time password must set a new one before anything else. */
export function mustChangePassword(): boolean {
  return user?.must_change_password ?? false;
}

/** After the new password was set: the session stays, with its roles. */
export function passwordChanged(): void {
  if (user) user = { ...user, must_change_password: false };
  if (me) me = { ...me, must_change_password: false };
}

/** The server said the password must be changed first (DC_PASSWORD_CHANGE_REQUIRED). */
export function passwordChangeRequired(): void {
  if (user) user = { ...user, must_change_password: true };
}
