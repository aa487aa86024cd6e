/** REST: the dashboard session, users, and personal API tokens. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { createToken, createUser, revokeToken } from '../../core/accounts.js';
import { login, logout, SESSION_COOKIE, SESSION_TTL_MS } from '../../core/sessions.js';
import { UserError } from '../../shared/errors.js';
import { CreateTokenRequest, ErrorBody } from '../../shared/api.js';
import { iso } from '../../shared/views.js';
import type { ApiToken, User } from '../../domain/model.js';
import { requireAdmin, requireUser } from '../userAuth.js';

const errors = { 200: Type.Any(), 201: Type.Any(), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };
const LoginRequest = Type.Object({ email: Type.String({ maxLength: 254 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false });
const CreateUserRequest = Type.Object(
  { email: Type.String({ maxLength: 254 }), password: Type.String({ minLength: 12, maxLength: 1024 }), is_admin: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });

const userView = (u: User) => ({ id: u.id, email: u.email, is_admin: u.isAdmin, created_at: iso(u.createdAt) });
const tokenView = (t: ApiToken) => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  created_at: iso(t.createdAt),
  last_used_at: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
  revoked_at: t.revokedAt === null ? null : iso(t.revokedAt),
});

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  // Secure whenever the browser reached us over HTTPS (directly, or through a trusted proxy).
  const secure = request.protocol === 'https' ? '; Secure' : '';
  reply.header('set-cookie', `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`);
}

export function registerUserRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['users'];

  app.post('/api/v1/session', { schema: { tags, security: [], body: LoginRequest, response: errors } }, async (request, reply) => {
    const { email, password } = request.body as { email: string; password: string };
    const { secret, session, user } = await login(core, email, password, request.ip);
    setSessionCookie(request, reply, secret, Math.floor(SESSION_TTL_MS / 1000));
    return { user: { id: user.id, email: user.email, is_admin: user.isAdmin }, csrf_token: session.csrfToken };
  });

  app.get('/api/v1/session', { schema: { tags } }, async (request) => {
    const caller = await requireUser(core, request);
    if (!caller.session) throw new UserError('DC_UNAUTHENTICATED', 'No browser session (this request used an API token).');
    return { user: { id: caller.user.id, email: caller.user.email, is_admin: caller.user.isAdmin }, csrf_token: caller.session.csrfToken };
  });

  app.delete('/api/v1/session', { schema: { tags } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    if (caller.session) await logout(core, caller.session, caller.actor);
    setSessionCookie(request, reply, '', 0);
    return { ok: true };
  });

  app.get('/api/v1/me', { schema: { tags } }, async (request) => {
    const caller = await requireUser(core, request);
    return { id: caller.user.id, email: caller.user.email, is_admin: caller.user.isAdmin, actor: caller.actor.label };
  });

  app.get('/api/v1/users', { schema: { tags } }, async (request) => {
    requireAdmin(await requireUser(core, request));
    return { items: (await core.store.listUsers()).map(userView) };
  });

  app.post('/api/v1/users', { schema: { tags, body: CreateUserRequest, response: errors } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    requireAdmin(caller);
    const body = request.body as { email: string; password: string; is_admin?: boolean };
    const user = await createUser(core, caller.actor, { email: body.email, password: body.password, isAdmin: body.is_admin ?? false });
    reply.status(201);
    return userView(user);
  });

  app.get('/api/v1/tokens', { schema: { tags } }, async (request) => {
    const caller = await requireUser(core, request);
    return { items: (await core.store.listTokens(caller.user.id)).map(tokenView) };
  });

  app.post('/api/v1/tokens', { schema: { tags, body: CreateTokenRequest, response: errors } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const { token, secret } = await createToken(core, caller.actor, caller.user, (request.body as { name: string }).name);
    reply.status(201);
    return { ...tokenView(token), token: secret };
  });

  app.post('/api/v1/tokens/:id/revoke', { schema: { tags, params: IdParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    await revokeToken(core, caller.actor, caller.user, (request.params as { id: string }).id);
    return { ok: true };
  });
}
