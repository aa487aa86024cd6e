/**
 * Single sign-on with OpenID Connect: the authorization code flow with PKCE, state and nonce,
 * through the maintained `openid-client`.
 *
 * A sign-in has two halves. begin: a random secret goes to the browser in a short-lived cookie;
 * the state, nonce and PKCE verifier stay in the database under the secret's hash, and the
 * browser is sent to the provider. finish: the provider sends the browser back with a code; the
 * cookie finds the record (used once, for PENDING_TTL_MS at most), the state must match, and
 * openid-client redeems the code with the verifier and checks the ID token (signature, issuer,
 * audience, nonce). The person is then the user linked to (issuer, subject), or a user made just
 * in time; their memberships are set from the roles claim (domain/oidcRoleMap.ts), and a session
 * opens exactly as a password sign-in's does (sessions.ts startSession). Every step is audited.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import type { Actor, Session, User } from '../domain/model.js';
import { claimValues, mapRoles, roleFor, type RoleMapEntry } from '../domain/oidcRoleMap.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { createUser, normaliseEmail } from './accounts.js';
import { userBlocked } from './access.js';
import { topics } from './notifier.js';
import { hashPassword, hashSecret, newPassword } from './secrets.js';
import { startSession, sessionActor } from './sessions.js';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  /** Undefined for a public client. */
  clientSecret: string | undefined;
  /** Space-separated, with openid. */
  scopes: string;
  rolesClaim: string;
  roleMap: RoleMapEntry[];
  /** The button says "Sign in with <name>". */
  name: string;
  /** The dashboard's address (no trailing slash); undefined: the address the browser used. */
  publicUrl: string | undefined;
}

export interface SignInSettings {
  /** false: email and password sign-in is refused (the `admin` CLI on the host still works). */
  localPasswords: boolean;
  /** Set when single sign-on is configured. */
  oidc: OidcSettings | undefined;
}

declare module './context.js' {
  interface Core {
    /** How people sign in (serve.ts sets it from the configuration); absent: passwords only. */
    signIn?: SignInSettings;
  }
}

/** How long a started sign-in may take at the provider. */
export const PENDING_TTL_MS = 10 * 60 * 1000;
export const CALLBACK_PATH = '/auth/oidc/callback';

export interface OidcStatus {
  enabled: boolean;
  name: string | null;
  localPasswords: boolean;
}

export function oidcStatus(core: Core): OidcStatus {
  const oidc = core.signIn?.oidc;
  return { enabled: oidc !== undefined, name: oidc?.name ?? null, localPasswords: core.signIn?.localPasswords ?? true };
}

function requireOidc(core: Core): OidcSettings {
  const oidc = core.signIn?.oidc;
  if (!oidc) throw new UserError('DC_OIDC_OFF', 'Single sign-on is not configured on this server (DJANGOCOMMAND_OIDC_ISSUER).');
  return oidc;
}

/** The provider's metadata, discovered once per settings (a failed discovery is tried again next time). */
const providers = new WeakMap<OidcSettings, Promise<client.Configuration>>();

function provider(settings: OidcSettings): Promise<client.Configuration> {
  let found = providers.get(settings);
  if (!found) {
    const url = new URL(settings.issuer);
    // serverConfig.ts allows http only on loopback (a provider on the same machine, or in tests).
    const insecure = url.protocol === 'http:';
    const auth = settings.clientSecret ? client.ClientSecretBasic(settings.clientSecret) : client.None();
    found = client.discovery(url, settings.clientId, undefined, auth, { timeout: 10, execute: insecure ? [client.allowInsecureRequests] : [] }).catch((err: unknown) => {
      providers.delete(settings);
      throw new UserError('DC_OIDC_FAILED', `The identity provider at ${settings.issuer} could not be reached or described itself wrongly (${describe(err)}).`);
    });
    providers.set(settings, found);
  }
  return found;
}

/**
 * Starts a sign-in: returns where to send the browser and the secret for its cookie.
 * `origin` is the address the browser used (scheme://host), for the redirect URI when no public URL is set.
 */
export async function beginOidcLogin(core: Core, origin: string): Promise<{ url: string; secret: string }> {
  const settings = requireOidc(core);
  const config = await provider(settings);
  const now = core.now();
  const secret = randomBytes(32).toString('base64url');
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const redirectUri = `${settings.publicUrl ?? origin}${CALLBACK_PATH}`;
  await core.store.oidc.prunePendingLogins(now);
  await core.store.oidc.savePendingLogin({ idHash: hashSecret(secret), state, nonce, codeVerifier, redirectUri, createdAt: now, expiresAt: now + PENDING_TTL_MS });
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: settings.scopes,
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url: url.href, secret };
}

/**
 * Finishes a sign-in from the provider's answer (the callback's query) and the browser's cookie
 * secret; opens a session for the person, made and given roles as the role map says.
 */
export async function finishOidcLogin(core: Core, input: { secret: string | undefined; query: URLSearchParams; address: string }): Promise<{ secret: string; session: Session; user: User }> {
  const settings = requireOidc(core);
  const { query, address } = input;
  const anonymous: Actor = { type: 'user', id: null, label: `single sign-on (${settings.name})`, address };
  const deny = async (reason: string, details: Record<string, unknown> = {}) =>
    audit(core, anonymous, { action: 'session.login', outcome: 'denied', details: { method: 'oidc', reason, ...details } });

  const pending = input.secret ? await core.store.oidc.takePendingLogin(hashSecret(input.secret), core.now()) : undefined;
  if (!pending) {
    await deny('unknown, used or expired sign-on attempt');
    throw new UserError('DC_OIDC_LOGIN_EXPIRED', 'This single sign-on attempt is unknown, was used already or took too long; start again from the sign-in page.');
  }
  const state = query.get('state');
  if (state === null || !sameText(state, pending.state)) {
    await deny('state does not match');
    throw new UserError('DC_OIDC_STATE_MISMATCH', "The provider's answer does not belong to this browser's sign-on attempt; start again from the sign-in page.");
  }
  const error = query.get('error');
  if (error !== null) {
    const said = clean(`${error}${query.get('error_description') ? `: ${query.get('error_description')}` : ''}`);
    await deny('the provider refused', { provider_error: said });
    throw new UserError('DC_OIDC_DENIED', `The identity provider refused the sign-in (${said}).`);
  }

  const config = await provider(settings);
  // The URL the provider sent the browser to, as registered there (not as a proxy may have rewritten it).
  const callback = new URL(pending.redirectUri);
  callback.search = query.toString();
  let claims: Record<string, unknown>;
  try {
    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const idToken = tokens.claims()!;
    claims = { ...idToken };
    // Groups and email often come only from userinfo. If it fails, stop: roles computed without the
    // claim would remove memberships the person still has.
    if (config.serverMetadata().userinfo_endpoint && tokens.access_token) {
      const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub);
      claims = { ...info, ...idToken };
    }
  } catch (err) {
    await deny('the answer failed verification', { error: describe(err) });
    throw new UserError('DC_OIDC_FAILED', `The identity provider's answer could not be verified (${describe(err)}); start again from the sign-in page.`);
  }

  const issuer = String(claims.iss);
  const subject = String(claims.sub);
  if (typeof claims.email !== 'string' || claims.email.trim() === '') {
    await deny('no email claim', { issuer, subject });
    throw new UserError('DC_OIDC_NO_EMAIL', `The identity provider gave no email address; ask for the email scope (DJANGOCOMMAND_OIDC_SCOPES is "${settings.scopes}").`);
  }
  if (claims.email_verified === false) {
    await deny('email not verified', { issuer, subject, email: claims.email.slice(0, 254) });
    throw new UserError('DC_OIDC_EMAIL_UNVERIFIED', `The identity provider says ${claims.email.slice(0, 254)} is not verified; verify it there, then sign in again.`);
  }
  const email = normaliseEmail(claims.email);
  const provisioner: Actor = { type: 'system', id: null, label: `single sign-on (${settings.name}) for ${email}`, address };
  const user = await userFor(core, provisioner, { issuer, subject, email, verified: claims.email_verified === true });
  const blocked = userBlocked(user);
  if (blocked) {
    await audit(core, sessionActor(user, address), { action: 'session.login', outcome: 'denied', details: { method: 'oidc', reason: blocked } });
    throw new UserError('DC_ACCOUNT_DISABLED', blocked);
  }
  await core.store.oidc.touchIdentity(issuer, subject, email, core.now());
  await syncRoles(core, provisioner, user, settings.roleMap, claimValues(claims[settings.rolesClaim]));
  const fresh = (await core.store.getUser(user.id)) ?? user;
  return startSession(core, fresh, address, { method: 'oidc', issuer, subject });
}

/**
 * The user this provider identity is: the linked one; else the user with that email when the
 * provider vouches for it (email_verified true), linked now; else a new user, made just in time
 * with a random password nobody knows (it signs in through the provider only).
 */
async function userFor(core: Core, actor: Actor, who: { issuer: string; subject: string; email: string; verified: boolean }, again = false): Promise<User> {
  const linked = await core.store.oidc.findIdentity(who.issuer, who.subject);
  if (linked) {
    const user = await core.store.getUser(linked.userId);
    if (!user) throw new Error(`oidc identity ${who.issuer} ${who.subject} points at a missing user ${linked.userId}`);
    return user;
  }
  const now = core.now();
  let user = await core.store.findUserByEmail(who.email);
  if (user) {
    if (userBlocked(user)) return user;
    if (!who.verified) {
      await audit(core, actor, { action: 'oidc.link', outcome: 'denied', details: { email: who.email, issuer: who.issuer, subject: who.subject, reason: 'email_verified is not true' } });
      throw new UserError(
        'DC_OIDC_EMAIL_TAKEN',
        `A user with email ${who.email} exists and the identity provider does not say the address is verified, so the accounts are not linked; an owner can remove the local user, or the provider can verify the address.`,
      );
    }
  } else {
    try {
      user = await createUser(core, actor, { email: who.email, password: newPassword(), isAdmin: false, oneTimePassword: false });
    } catch (err) {
      // Two first sign-ins at once: the other made the user; link to it (it vouched the same way).
      if (err instanceof UserError && err.code === 'DC_USER_EXISTS' && !again) return userFor(core, actor, { ...who, verified: true }, true);
      throw err;
    }
  }
  if (!(await core.store.oidc.linkIdentity({ issuer: who.issuer, subject: who.subject, userId: user.id, email: who.email, createdAt: now, lastLoginAt: now }))) {
    if (!again) return userFor(core, actor, who, true);
    throw new Error(`oidc identity ${who.issuer} ${who.subject} could not be linked`);
  }
  // A one-time password was made for someone else to hand over; who signs on through the provider
  // never needs it, so it stops working (nobody is left holding a password to this account).
  const retired = user.mustChangePassword;
  if (retired) await core.store.access.setPassword(user.id, await hashPassword(newPassword()), false);
  await audit(core, actor, { action: 'oidc.link', details: { email: who.email, issuer: who.issuer, subject: who.subject, user_id: user.id, one_time_password_retired: retired } });
  return retired ? ((await core.store.getUser(user.id)) ?? user) : user;
}

/**
 * Sets the memberships the role map covers from the person's claim values: a role where the map
 * gives one, no membership where it covers the project and gives none. The owner flag follows
 * the map when it has an owner entry (never taking away the last enabled owner).
 */
async function syncRoles(core: Core, actor: Actor, user: User, map: readonly RoleMapEntry[], values: string[]): Promise<void> {
  const mapped = mapRoles(map, values);
  const had = new Map((await core.store.access.membershipsOf(user.id)).map((m) => [m.projectId, m.role] as const));
  let changed = false;
  for (const project of await core.store.listProjects()) {
    const { covered, role } = roleFor(mapped, project.name);
    const before = had.get(project.id) ?? null;
    if (!covered || role === before) continue;
    changed = true;
    if (role) {
      const added = await core.store.access.setMember(project.id, user.id, role, core.now());
      await audit(core, actor, { action: added ? 'member.add' : 'member.role', projectId: project.id, details: { email: user.email, role, was: before, via: 'oidc', claim_values: values } });
    } else {
      await core.store.access.removeMember(project.id, user.id);
      await audit(core, actor, { action: 'member.remove', projectId: project.id, details: { email: user.email, was: before, via: 'oidc', claim_values: values } });
    }
  }
  if (mapped.owner !== undefined && mapped.owner !== user.isAdmin) {
    const others = mapped.owner ? [] : (await core.store.listUsers()).filter((u) => u.isAdmin && u.id !== user.id && u.disabledAt === null);
    if (!mapped.owner && others.length === 0) {
      await audit(core, actor, { action: 'user.owner_revoke', outcome: 'denied', details: { email: user.email, via: 'oidc', reason: 'the only enabled owner keeps the role' } });
    } else {
      changed = true;
      await core.store.access.setOwner(user.id, mapped.owner);
      await audit(core, actor, { action: mapped.owner ? 'user.owner_grant' : 'user.owner_revoke', details: { email: user.email, via: 'oidc', claim_values: values } });
    }
  }
  // Live streams of the person's other sessions re-check what they may see.
  if (changed) core.notifier.publish(topics.credential('user', user.id));
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A provider's or library's words, safe to show and store: no control characters, bounded. */
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300);
}

function describe(err: unknown): string {
  if (err instanceof UserError) return err.message;
  if (err instanceof client.ResponseBodyError) return clean(`${err.error}${err.error_description ? `: ${err.error_description}` : ''}`);
  if (err instanceof client.AuthorizationResponseError) return clean(`${err.error}${err.error_description ? `: ${err.error_description}` : ''}`);
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return clean(`${err.message}${cause}`);
  }
  return clean(String(err));
}
