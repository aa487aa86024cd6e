/**
 * Browser sessions for the dashboard: a random secret in an HttpOnly cookie (only its hash is
 * stored), a CSRF token the page sends back on every change, and login attempts limited per
 * address and email so passwords cannot be guessed at speed.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Actor, Session, User } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { checkPassword } from './accounts.js';
import { hashPassword, verifyPassword } from './secrets.js';
import { requireOwner, requirePerson, userBlocked, type Principal } from './access.js';
import { hashSecret } from './secrets.js';
import { topics } from './notifier.js';

export const SESSION_COOKIE = 'dc_session';
export const SESSION_TTL_MS = 12 * 3600 * 1000;
/** Failed sign-ins allowed per address and email in ATTEMPT_WINDOW_MS. */
const MAX_FAILED_ATTEMPTS = 5;
const ATTEMPT_WINDOW_MS = 15 * 60 * 1000;

export function sessionActor(user: User, address: string | null): Actor {
  return { type: 'user', id: user.id, label: user.email, address };
}

/**
 * Signs in. Every attempt is counted before the password is checked (in the database, so
 * simultaneous attempts and other replicas count too); past MAX_FAILED_ATTEMPTS in the window
 * the answer is 429 without looking at the password. Success clears the count.
 */
export async function login(core: Core, email: string, password: string, address: string): Promise<{ secret: string; session: Session; user: User }> {
  if (core.signIn?.localPasswords === false) {
    await audit(core, { type: 'user', id: null, label: email.slice(0, 254), address }, { action: 'session.login', outcome: 'denied', details: { reason: 'local passwords are off' } });
    throw new UserError('DC_LOCAL_PASSWORDS_OFF', 'Signing in with an email and password is turned off on this server; use single sign-on.');
  }
  const now = core.now();
  const keyHash = hashSecret(`${address}|${email.trim().toLowerCase()}`);
  const { attempts, windowEndsAt } = await core.store.recordLoginAttempt(keyHash, now, ATTEMPT_WINDOW_MS);
  if (attempts > MAX_FAILED_ATTEMPTS) {
    throw new UserError('DC_RATE_LIMITED', `Too many failed sign-ins; try again in ${Math.ceil((windowEndsAt - now) / 60000)} minute(s).`);
  }
  const user = await checkPassword(core, email, password);
  if (!user) {
    await audit(core, { type: 'user', id: null, label: email.slice(0, 254), address }, { action: 'session.login', outcome: 'denied', details: { reason: 'wrong email or password' } });
    throw new UserError('DC_UNAUTHENTICATED', 'Wrong email or password.');
  }
  const blocked = userBlocked(user);
  if (blocked) {
    await audit(core, sessionActor(user, address), { action: 'session.login', outcome: 'denied', details: { reason: blocked } });
    throw new UserError('DC_ACCOUNT_DISABLED', blocked);
  }
  await core.store.clearLoginAttempts(keyHash);
  return startSession(core, user, address);
}

/**
 * Opens a browser session for a user who has proved who they are (a password, or single
 * sign-on: `details` says how). The caller has checked that the user is not blocked.
 */
export async function startSession(core: Core, user: User, address: string, details?: Record<string, unknown>): Promise<{ secret: string; session: Session; user: User }> {
  const now = core.now();
  const secret = randomBytes(32).toString('base64url');
  const session: Session = { idHash: hashSecret(secret), userId: user.id, csrfToken: randomBytes(24).toString('base64url'), address, createdAt: now, expiresAt: now + SESSION_TTL_MS };
  await core.store.createSession(session);
  await core.store.pruneSessions(now);
  await audit(core, sessionActor(user, address), { action: 'session.login', details });
  return { secret, session, user };
}

export async function resolveSession(core: Core, secret: string): Promise<{ session: Session; user: User } | undefined> {
  const session = await core.store.findSession(hashSecret(secret));
  if (!session || session.expiresAt <= core.now()) return undefined;
  const user = await core.store.getUser(session.userId);
  return user && !userBlocked(user) ? { session, user } : undefined;
}

export function csrfMatches(session: Session, given: string | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function logout(core: Core, session: Session, actor: Actor): Promise<void> {
  await core.store.deleteSession(session.idHash);
  core.notifier.publish(topics.credential('session', session.idHash));
  await audit(core, actor, { action: 'session.logout' });
}

/**
 * Sets a new password (the one-time password's first sign-in, or any time): the current one must
 * be given; every other session of the user ends (the browser that changed it stays signed in).
 */
export async function changePassword(core: Core, principal: Principal & { session?: Session }, current: string, next: string): Promise<void> {
  const keepSession = principal.session?.idHash;
  const user = requirePerson(principal, 'have a password');
  if (next.length < 12) throw new UserError('DC_VALIDATION', 'Passwords need at least 12 characters.', { field: 'new_password' });
  if (next === current) throw new UserError('DC_VALIDATION', 'The new password must differ from the current one.', { field: 'new_password' });
  const fresh = await core.store.getUser(user.id);
  if (!fresh || !(await verifyPassword(current, fresh.passwordHash))) {
    await audit(core, principal.actor, { action: 'user.password', outcome: 'denied', details: { reason: 'wrong current password' } });
    throw new UserError('DC_FORBIDDEN', 'The current password is wrong.', { field: 'current_password' });
  }
  await core.store.access.setPassword(user.id, await hashPassword(next), false);
  for (const hash of await core.store.access.deleteUserSessions(user.id, keepSession)) core.notifier.publish(topics.credential('session', hash));
  await audit(core, principal.actor, { action: 'user.password', details: { was_one_time: fresh.mustChangePassword } });
}

/** A user's sessions: one's own, or anyone's for an owner. */
export async function listSessions(core: Core, principal: Principal, userId: string): Promise<Session[]> {
  if (principal.user?.id !== userId) requireOwner(principal);
  const now = core.now();
  return (await core.store.access.listSessions(userId)).filter((s) => s.expiresAt > now);
}

/** Ends a session: one's own, or anyone's for an owner; its live streams end at once. */
export async function revokeSession(core: Core, principal: Principal, userId: string, idHash: string): Promise<void> {
  if (principal.user?.id !== userId) requireOwner(principal);
  if (!(await core.store.access.deleteUserSession(userId, idHash))) throw new UserError('DC_UNKNOWN_SESSION', `No session ${idHash.slice(0, 12)}… of that user.`);
  core.notifier.publish(topics.credential('session', idHash));
  await audit(core, principal.actor, { action: 'session.revoke', details: { user_id: userId, session: idHash.slice(0, 12) } });
}
