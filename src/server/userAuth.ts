/**
 * Authenticates REST API callers: a personal API token (Authorization: Bearer dct_...) or the
 * dashboard's session cookie. With the cookie, every state-changing request must carry the
 * session's CSRF token in X-CSRF-Token.
 */
import type { FastifyRequest } from 'fastify';
import type { Project, Session } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from '../core/context.js';
import { authenticateBearer } from '../core/accounts.js';
import { personGrants, requireOwner, requireProject, type Principal } from '../core/access.js';
import type { Permission } from '../domain/roles.js';
import { RUNNER_KEY_PREFIX } from '../core/secrets.js';
import { csrfMatches, resolveSession, sessionActor, SESSION_COOKIE } from '../core/sessions.js';

/** The principal of a REST request, with the browser session when it came with the cookie. */
export interface Caller extends Principal {
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

/** Routes a person with a one-time password may still use (to set a new one, or to leave). */
const ONE_TIME_PASSWORD_ROUTES = new Set(['GET /api/v1/session', 'DELETE /api/v1/session', 'POST /api/v1/me/password', 'GET /api/v1/me']);

export async function requireUser(core: Core, request: FastifyRequest): Promise<Caller> {
  const secret = bearerOf(request);
  if (!secret) {
    const cookie = cookieOf(request, SESSION_COOKIE);
    const found = cookie ? await resolveSession(core, cookie) : undefined;
    if (!found) {
      throw new UserError('DC_UNAUTHENTICATED', 'Sign in, or send a personal API token as "Authorization: Bearer dct_..." (create one with `djangocommand tokens create`).');
    }
    if (!SAFE_METHODS.has(request.method) && !csrfMatches(found.session, headerOf(request, 'x-csrf-token'))) {
      throw new UserError('DC_FORBIDDEN', 'Missing or wrong X-CSRF-Token header for this session; reload the page.');
    }
    const { user, session } = found;
    if (user.mustChangePassword && !ONE_TIME_PASSWORD_ROUTES.has(`${request.method} ${request.routeOptions.url ?? ''}`)) {
      throw new UserError('DC_PASSWORD_CHANGE_REQUIRED', 'Your password is a one-time password: set a new one first (POST /api/v1/me/password, or the dashboard asks).');
    }
    return { user, actor: sessionActor(user, request.ip), grants: await personGrants(core, user), credential: { kind: 'session', idHash: session.idHash }, session };
  }
  if (secret.startsWith(RUNNER_KEY_PREFIX)) {
    throw new UserError('DC_WRONG_CREDENTIAL', 'This is a runner API key; the REST API takes a personal API token (dct_...).');
  }
  return authenticateBearer(core, secret, request.ip);
}

/** Owner powers, for routes with no project: users, projects, server settings. */
export function requireAdmin(caller: Caller): void {
  requireOwner(caller);
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The caller and the project it names, when the caller may do `permission` there (core/access.ts). */
export async function requireProjectCaller(core: Core, request: FastifyRequest, ref: string | undefined, permission: Permission): Promise<{ caller: Caller; project: Project }> {
  const caller = await requireUser(core, request);
  return { caller, project: await requireProject(core, caller, ref, permission) };
}
