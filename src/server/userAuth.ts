/**
 * Authenticates REST API callers: a personal API token (Authorization: Bearer dct_...) or the
 * dashboard's session cookie. With the cookie, every state-changing request must carry the
 * session's CSRF token in X-CSRF-Token.
 */
import type { FastifyRequest } from 'fastify';
import type { Actor, Session, User } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from '../core/context.js';
import { authenticateToken, tokenActor } from '../core/accounts.js';
import { RUNNER_KEY_PREFIX } from '../core/secrets.js';
import { csrfMatches, resolveSession, sessionActor, SESSION_COOKIE } from '../core/sessions.js';

export interface Caller {
  user: User;
  actor: Actor;
  session?: Session;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function bearerOf(request: Pick<FastifyRequest, 'headers'>): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

/** A cookie's value; undefined when it is absent or not validly %-encoded (no cookie of ours is). */
export function cookieOf(request: Pick<FastifyRequest, 'headers'>, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // URIError: a forged or mangled cookie is no session, not a server error
      }
    }
  }
  return undefined;
}

export async function requireUser(core: Core, request: FastifyRequest): Promise<Caller> {
  const secret = bearerOf(request);
  if (!secret) {
    const cookie = cookieOf(request, SESSION_COOKIE);
    const found = cookie ? await resolveSession(core, cookie) : undefined;
    if (!found) {
      throw new UserError('DC_UNAUTHENTICATED', 'Sign in, or send a personal API token as "Authorization: Bearer dct_..." (create one with `djangocommand admin create-token`).');
    }
    if (!SAFE_METHODS.has(request.method) && !csrfMatches(found.session, headerOf(request, 'x-csrf-token'))) {
      throw new UserError('DC_FORBIDDEN', 'Missing or wrong X-CSRF-Token header for this session; reload the page.');
    }
    return { user: found.user, actor: sessionActor(found.user, request.ip), session: found.session };
  }
  if (secret.startsWith(RUNNER_KEY_PREFIX)) {
    throw new UserError('DC_WRONG_CREDENTIAL', 'This is a runner API key; the REST API takes a personal API token (dct_...).');
  }
  const found = await authenticateToken(core, secret);
  if (!found) throw new UserError('DC_UNAUTHENTICATED', 'Unknown or revoked API token.');
  return { user: found.user, actor: tokenActor(found.token, found.user, request.ip) };
}

export function requireAdmin(caller: Caller): void {
  if (!caller.user.isAdmin) throw new UserError('DC_FORBIDDEN', 'Only an admin may do this.');
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
