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
  await core.store.clearLoginAttempts(keyHash);
  const secret = randomBytes(32).toString('base64url');
  const session: Session = { idHash: hashSecret(secret), userId: user.id, csrfToken: randomBytes(24).toString('base64url'), address, createdAt: now, expiresAt: now + SESSION_TTL_MS };
  await core.store.createSession(session);
  await core.store.pruneSessions(now);
  await audit(core, sessionActor(user, address), { action: 'session.login' });
  return { secret, session, user };
}

export async function resolveSession(core: Core, secret: string): Promise<{ session: Session; user: User } | undefined> {
  const session = await core.store.findSession(hashSecret(secret));
  if (!session || session.expiresAt <= core.now()) return undefined;
  const user = await core.store.getUser(session.userId);
  return user && { session, user };
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
