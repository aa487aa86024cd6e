/**
 * Single sign-on (OpenID Connect) for the dashboard: whether it is on, the redirect to the
 * provider and the callback that opens a session (core/oidc.ts does the work). The two /auth/
 * routes are browser navigations: every failure sends the browser back to the sign-in page with
 * the error's DC_ code (the page words it), never a provider's or library's internals.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../core/context.js';
import { beginOidcLogin, CALLBACK_PATH, finishOidcLogin, oidcStatus, PENDING_TTL_MS } from '../../core/oidc.js';
import { SESSION_TTL_MS } from '../../core/sessions.js';
import { isUserError } from '../../shared/errors.js';
import { SSO_ERROR_PARAM, type OidcStatusView } from '../../shared/oidcApi.js';
import { cookieOf } from '../userAuth.js';
import { setSessionCookie } from './users.js';

const LOGIN_PATH = '/auth/oidc/login';
/** The browser's half of a started sign-in. SameSite=Lax: it must come back on the provider's redirect. */
const PENDING_COOKIE = 'dc_oidc';

function setPendingCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  reply.header('set-cookie', `${PENDING_COOKIE}=${value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure}`);
}

export function registerOidcRoutes(app: FastifyInstance, core: Core): void {
  function failed(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    let code = 'DC_INTERNAL';
    if (isUserError(err)) {
      code = err.code;
      request.log.warn({ code, reason: err.message }, 'single sign-on refused');
    } else {
      request.log.error({ err }, 'single sign-on failed');
    }
    return reply.redirect(`/#/login?${SSO_ERROR_PARAM}=${code}`, 302);
  }

  app.get('/api/v1/oidc', { schema: { tags: ['users'], security: [] } }, async (): Promise<OidcStatusView> => {
    const s = oidcStatus(core);
    return { enabled: s.enabled, name: s.name, login_url: s.enabled ? LOGIN_PATH : null, local_passwords: s.localPasswords };
  });

  app.get(LOGIN_PATH, { schema: { hide: true } }, async (request, reply) => {
    try {
      const { url, secret } = await beginOidcLogin(core, `${request.protocol}://${request.host}`);
      setPendingCookie(request, reply, secret, Math.floor(PENDING_TTL_MS / 1000));
      reply.header('cache-control', 'no-store');
      return reply.redirect(url, 302);
    } catch (err) {
      return failed(request, reply, err);
    }
  });

  app.get(CALLBACK_PATH, { schema: { hide: true } }, async (request, reply) => {
    // The pending sign-in is used once, whatever happens next.
    setPendingCookie(request, reply, '', 0);
    reply.header('cache-control', 'no-store');
    try {
      const query = new URLSearchParams(request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '');
      const { secret } = await finishOidcLogin(core, { secret: cookieOf(request, PENDING_COOKIE), query, address: request.ip });
      setSessionCookie(request, reply, secret, Math.floor(SESSION_TTL_MS / 1000));
      return reply.redirect('/', 302);
    } catch (err) {
      return failed(request, reply, err);
    }
  });
}
