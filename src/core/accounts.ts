/** Users, their passwords and personal API tokens, and the first admin. */
import { randomUUID } from 'node:crypto';
import type { Actor, ApiToken, User } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { insertUnlessTaken } from './uniqueness.js';
import { topics } from './notifier.js';
import { hashPassword, hashSecret, newPassword, newUserToken, verifyPassword, USER_TOKEN_PREFIX } from './secrets.js';

const EMAIL = /^[^\s@\u0000-\u001f\u007f]+@[^\s@\u0000-\u001f\u007f]+$/;
/** No stored name or email has one; a NUL would not even reach PostgreSQL. */
const CONTROL = /[\u0000-\u001f\u007f]/;

export function normaliseEmail(email: string): string {
  const e = email.trim().toLowerCase();
  if (!EMAIL.test(e) || e.length > 254) throw new UserError('DC_VALIDATION', `"${email}" is not an email address.`, { field: 'email' });
  return e;
}

export async function createUser(core: Core, actor: Actor, input: { email: string; password: string; isAdmin: boolean }): Promise<User> {
  const email = normaliseEmail(input.email);
  if (input.password.length < 12) throw new UserError('DC_VALIDATION', 'Passwords need at least 12 characters.', { field: 'password' });
  if (await core.store.findUserByEmail(email)) throw new UserError('DC_USER_EXISTS', `A user with email ${email} exists already.`);
  const user: User = { id: randomUUID(), email, passwordHash: await hashPassword(input.password), isAdmin: input.isAdmin, createdAt: core.now() };
  await insertUnlessTaken(
    () => core.store.createUser(user),
    async () => (await core.store.findUserByEmail(email)) !== undefined,
    new UserError('DC_USER_EXISTS', `A user with email ${email} exists already.`),
  );
  await audit(core, actor, { action: 'user.create', details: { email, is_admin: input.isAdmin } });
  return user;
}

export interface FirstAdmin {
  user: User;
  /** Present when the password was generated (the caller writes it to a 0600 file). */
  generatedPassword?: string;
}

/** On first start, creates the admin; a no-op (undefined) once any user exists. */
export async function ensureFirstAdmin(core: Core, actor: Actor, opts: { email: string; password?: string }): Promise<FirstAdmin | undefined> {
  if ((await core.store.countUsers()) > 0) return undefined;
  const generated = opts.password ? undefined : newPassword();
  try {
    const user = await createUser(core, actor, { email: opts.email, password: opts.password ?? generated!, isAdmin: true });
    return { user, generatedPassword: generated };
  } catch (err) {
    // Several replicas starting at once on one database: one of them creates the admin.
    if (err instanceof UserError && err.code === 'DC_USER_EXISTS') return undefined;
    throw err;
  }
}

/**
 * The user whose password this is. An unknown email costs the same scrypt work as a wrong
 * password (against a hash of a random password, made once), so the time of an answer does
 * not tell which emails have an account.
 */
export async function checkPassword(core: Core, email: string, password: string): Promise<User | undefined> {
  const user = CONTROL.test(email) ? undefined : await core.store.findUserByEmail(email.trim().toLowerCase());
  const matches = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()));
  return user && matches ? user : undefined;
}

let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(newPassword()).catch((err: unknown) => {
    dummy = undefined;
    throw new Error('cannot make the dummy password hash', { cause: err });
  });
  return dummy;
}

export async function createToken(core: Core, actor: Actor, user: User, name: string): Promise<{ token: ApiToken; secret: string }> {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 100) throw new UserError('DC_VALIDATION', 'A token name needs 1 to 100 characters.', { field: 'name' });
  if (CONTROL.test(trimmed)) throw new UserError('DC_VALIDATION', 'A token name may not contain control characters.', { field: 'name' });
  const s = newUserToken();
  const token: ApiToken = {
    id: randomUUID(),
    userId: user.id,
    name: trimmed,
    prefix: s.prefix,
    tokenHash: s.hash,
    createdAt: core.now(),
    lastUsedAt: null,
    revokedAt: null,
  };
  await core.store.createToken(token);
  await audit(core, actor, { action: 'token.create', details: { user: user.email, token_name: trimmed, prefix: s.prefix } });
  return { token, secret: s.secret };
}

/** Resolves a bearer token to the token and its user, or undefined when unknown or revoked. */
export async function authenticateToken(core: Core, secret: string): Promise<{ token: ApiToken; user: User } | undefined> {
  if (!secret.startsWith(USER_TOKEN_PREFIX)) return undefined;
  const token = await core.store.findTokenByHash(hashSecret(secret));
  if (!token || token.revokedAt !== null) return undefined;
  const user = await core.store.getUser(token.userId);
  if (!user) return undefined;
  const now = core.now();
  // Writing on every request would make reads into writes; a minute of precision is enough.
  if (token.lastUsedAt === null || now - token.lastUsedAt > 60_000) await core.store.touchToken(token.id, now);
  return { token, user };
}

export function tokenActor(token: ApiToken, user: User, address: string | null): Actor {
  return { type: 'token', id: token.id, label: `${user.email} (token ${token.name})`, address };
}

/** Revokes one of the user's tokens; every live stream that authenticated with it ends at once. */
export async function revokeToken(core: Core, actor: Actor, user: User, id: string): Promise<void> {
  if (!(await core.store.revokeToken(id, user.id, core.now()))) {
    throw new UserError('DC_NOT_FOUND', `You have no active API token ${id}.`);
  }
  core.notifier.publish(topics.credential('token', id));
  await audit(core, actor, { action: 'token.revoke', details: { token_id: id } });
}
