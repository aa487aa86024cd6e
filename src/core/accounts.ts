/** Users, their passwords and personal API tokens, and the first admin. */
import { randomUUID } from 'node:crypto';
import type { Actor, ApiToken, User } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { insertUnlessTaken } from './uniqueness.js';
import { topics } from './notifier.js';
import { hashPassword, hashSecret, newPassword, newUserToken, verifyPassword, USER_TOKEN_PREFIX } from './secrets.js';
import { isOwner, type Grants } from '../domain/roles.js';
import { grantsOf, personGrants, requireProject, userBlocked, type Principal } from './access.js';
import { authenticateCiToken } from './ciTokens.js';
import { checkExpiry, checkTokenName } from '../domain/tokenRules.js';

const EMAIL = /^[^\s@\u0000-\u001f\u007f]+@[^\s@\u0000-\u001f\u007f]+$/;
/** No stored name or email has one; a NUL would not even reach PostgreSQL. */
const CONTROL = /[\u0000-\u001f\u007f]/;

export function normaliseEmail(email: string): string {
  const e = email.trim().toLowerCase();
  if (!EMAIL.test(e) || e.length > 254) throw new UserError('DC_VALIDATION', `"${email}" is not an email address.`, { field: 'email' });
  return e;
}

export async function createUser(core: Core, actor: Actor, input: { email: string; password: string; isAdmin: boolean; oneTimePassword?: boolean }): Promise<User> {
  const email = normaliseEmail(input.email);
  if (input.password.length < 12) throw new UserError('DC_VALIDATION', 'Passwords need at least 12 characters.', { field: 'password' });
  if (await core.store.findUserByEmail(email)) throw new UserError('DC_USER_EXISTS', `A user with email ${email} exists already.`);
  const user: User = {
    id: randomUUID(),
    email,
    passwordHash: await hashPassword(input.password),
    isAdmin: input.isAdmin,
    createdAt: core.now(),
    disabledAt: null,
    removedAt: null,
    mustChangePassword: input.oneTimePassword ?? false,
  };
  await insertUnlessTaken(
    () => core.store.createUser(user),
    async () => (await core.store.findUserByEmail(email)) !== undefined,
    new UserError('DC_USER_EXISTS', `A user with email ${email} exists already.`),
  );
  await audit(core, actor, { action: 'user.create', details: { email, owner: input.isAdmin, one_time_password: user.mustChangePassword } });
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
    // A generated password is a one-time password: the first sign-in sets the admin's own.
    const user = await createUser(core, actor, { email: opts.email, password: opts.password ?? generated!, isAdmin: true, oneTimePassword: generated !== undefined });
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

export interface TokenLimits {
  /** Project names or ids; the token sees only these (each must be one its owner sees). */
  projects?: string[];
  readOnly?: boolean;
  /** Unix ms; null or absent: no end. */
  expiresAt?: number | null;
  /** What the asker may do (a limited token asking keeps its limits); default: the user's own. */
  grants?: Grants;
}

/**
 * A personal token of `user`, asked for by `actor` (the user, or an admin CLI on the server host).
 * It never carries more than `grants` (the user's, or those of the token used to ask): limits only
 * narrow, and a token made with a limited token keeps those limits.
 */
export async function createToken(core: Core, actor: Actor, user: User, name: string, limits: TokenLimits = {}): Promise<{ token: ApiToken; secret: string }> {
  const grants = limits.grants ?? (await personGrants(core, user));
  const principal: Principal = { user, actor, grants, credential: { kind: 'token', id: '' } };
  const trimmed = checkTokenName(name);
  const expiresAt = checkExpiry(core.now(), limits.expiresAt);
  let projectIds: string[] | null = grants.limitedTo ? [...grants.limitedTo] : null;
  if (limits.projects && limits.projects.length > 0) {
    const ids: string[] = [];
    for (const ref of limits.projects) ids.push((await requireProject(core, principal, ref, 'view')).id);
    projectIds = [...new Set(ids)];
  }
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
    projectIds,
    readOnly: grants.readOnly || (limits.readOnly ?? false),
    expiresAt,
  };
  await core.store.createToken(token);
  await audit(core, actor, {
    action: 'token.create',
    details: { user: user.email, token_name: trimmed, prefix: s.prefix, project_ids: projectIds, read_only: token.readOnly, expires_at: expiresAt },
  });
  return { token, secret: s.secret };
}

export function tokenActor(token: ApiToken, user: User, address: string | null): Actor {
  return { type: 'token', id: token.id, label: `${user.email} (token ${token.name})`, address };
}

/**
 * Resolves a bearer token (personal or CI) to its principal. Unknown and revoked tokens, expired
 * ones and tokens of disabled people each get their own 401.
 */
export async function authenticateBearer(core: Core, secret: string, address: string | null): Promise<Principal> {
  if (!secret.startsWith(USER_TOKEN_PREFIX)) throw new UserError('DC_UNAUTHENTICATED', 'Unknown or revoked API token.');
  const hash = hashSecret(secret);
  const now = core.now();
  const holder = await core.store.findTokenByHash(hash);
  if (!holder) return authenticateCiToken(core, hash, address);
  const { token, user, memberships } = holder;
  if (token.revokedAt !== null) throw new UserError('DC_UNAUTHENTICATED', 'Unknown or revoked API token.');
  if (token.expiresAt !== null && token.expiresAt <= now) throw new UserError('DC_TOKEN_EXPIRED', `This API token expired on ${new Date(token.expiresAt).toISOString()}; create a new one with \`djangocommand tokens create\`.`);
  if (!user) throw new UserError('DC_UNAUTHENTICATED', 'Unknown or revoked API token.');
  const blocked = userBlocked(user);
  if (blocked) throw new UserError('DC_ACCOUNT_DISABLED', blocked);
  // Writing on every request would make reads into writes; a minute of precision is enough.
  if (token.lastUsedAt === null || now - token.lastUsedAt > 60_000) await core.store.touchToken(token.id, now);
  return { user, actor: tokenActor(token, user, address), grants: grantsOf(user, memberships, token), credential: { kind: 'token', id: token.id } };
}

/**
 * Revokes a personal token: one's own, or anyone's for an owner. Every live stream that
 * authenticated with it ends at once.
 */
export async function revokeToken(core: Core, principal: Principal, id: string): Promise<void> {
  const token = await core.store.getToken(id);
  const own = token !== undefined && principal.user !== null && token.userId === principal.user.id;
  if (!token || token.revokedAt !== null || (!own && !isOwner(principal.grants))) {
    throw new UserError('DC_UNKNOWN_TOKEN', `There is no active API token ${id} that you may revoke.`);
  }
  await core.store.access.revokeAnyToken(id, core.now());
  core.notifier.publish(topics.credential('token', id));
  await audit(core, principal.actor, { action: 'token.revoke', details: { token_id: id, owner_id: token.userId } });
}
