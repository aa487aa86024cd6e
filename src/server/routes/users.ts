/** REST: the dashboard session, the caller, users (owners), personal API tokens and sessions. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { createToken, createUser, revokeToken } from '../../core/accounts.js';
import { changePassword, listSessions, login, logout, revokeSession, SESSION_COOKIE, SESSION_TTL_MS } from '../../core/sessions.js';
import { removeUser, setOwner, setUserDisabled } from '../../core/members.js';
import { requireOwner, requirePerson } from '../../core/access.js';
import { roleIn } from '../../domain/roles.js';
import { UserError } from '../../shared/errors.js';
import { ErrorBody } from '../../shared/api.js';
import {
  ChangePasswordRequest,
  CreateTokenRequest,
  expiryOf,
  sessionView,
  tokenView,
  UpdateUserRequest,
  userView,
  type MeView,
} from '../../shared/accessApi.js';
import { requireUser, type Caller } from '../userAuth.js';

const errors = { 200: Type.Any(), 201: Type.Any(), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };
const LoginRequest = Type.Object({ email: Type.String({ maxLength: 254 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false });
const CreateUserRequest = Type.Object(
  {
    email: Type.String({ maxLength: 254 }),
    password: Type.String({ minLength: 12, maxLength: 1024 }),
    owner: Type.Optional(Type.Boolean()),
    is_admin: Type.Optional(Type.Boolean({ description: 'The same as owner (earlier versions).' })),
    one_time_password: Type.Optional(Type.Boolean({ description: 'The first sign-in must set a new password (default true).' })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const EmailParams = Type.Object({ email: Type.String({ maxLength: 254 }) });
const SessionParams = Type.Object({ email: Type.String({ maxLength: 254 }), id: Type.String({ maxLength: 100 }) });
const AllQuery = Type.Object({ all: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'true: every user\'s tokens (owners).' })) }, { additionalProperties: false });

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  // Secure whenever the browser reached us over HTTPS (directly, or through a trusted proxy).
  const secure = request.protocol === 'https' ? '; Secure' : '';
  reply.header('set-cookie', `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`);
}

export function registerUserRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['users'];

  async function me(caller: Caller): Promise<MeView> {
    const roles: MeView['roles'] = {};
    for (const p of await core.store.listProjects()) {
      const role = roleIn(caller.grants, p.id);
      if (role) roles[p.name] = role;
    }
    const token = caller.credential.kind === 'token' ? await core.store.getToken(caller.credential.id) : undefined;
    return {
      id: caller.user?.id ?? null,
      email: caller.user?.email ?? null,
      owner: caller.user?.isAdmin ?? false,
      is_admin: caller.user?.isAdmin ?? false,
      actor: caller.actor.label,
      must_change_password: caller.user?.mustChangePassword ?? false,
      roles,
      token: token ? { read_only: token.readOnly, projects: token.projectIds, expires_at: token.expiresAt === null ? null : new Date(token.expiresAt).toISOString() } : null,
    };
  }

  /** The user an owner names by email (or id), for the user routes. */
  async function namedUser(ref: string) {
    const user = ref.includes('@') ? await core.store.findUserByEmail(ref.trim().toLowerCase()) : await core.store.getUser(ref);
    if (!user || user.removedAt !== null) throw new UserError('DC_UNKNOWN_USER', `No user ${ref}.`);
    return user;
  }

  app.post('/api/v1/session', { schema: { tags, security: [], body: LoginRequest, response: errors } }, async (request, reply) => {
    const { email, password } = request.body as { email: string; password: string };
    const { secret, session, user } = await login(core, email, password, request.ip);
    setSessionCookie(request, reply, secret, Math.floor(SESSION_TTL_MS / 1000));
    return { user: userView(user), csrf_token: session.csrfToken };
  });

  app.get('/api/v1/session', { schema: { tags } }, async (request) => {
    const caller = await requireUser(core, request);
    if (!caller.session || !caller.user) throw new UserError('DC_UNAUTHENTICATED', 'No browser session (this request used an API token).');
    return { user: userView(caller.user), csrf_token: caller.session.csrfToken };
  });

  app.delete('/api/v1/session', { schema: { tags } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    if (caller.session) await logout(core, caller.session, caller.actor);
    setSessionCookie(request, reply, '', 0);
    return { ok: true };
  });

  app.get('/api/v1/me', { schema: { tags } }, async (request) => me(await requireUser(core, request)));

  app.post('/api/v1/me/password', { schema: { tags, body: ChangePasswordRequest, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    const body = request.body as { current_password: string; new_password: string };
    await changePassword(core, caller, body.current_password, body.new_password);
    return { ok: true };
  });

  app.get('/api/v1/users', { schema: { tags } }, async (request) => {
    requireOwner(await requireUser(core, request));
    return { items: (await core.store.listUsers()).map(userView) };
  });

  app.post('/api/v1/users', { schema: { tags, body: CreateUserRequest, response: errors } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    requireOwner(caller);
    const body = request.body as { email: string; password: string; owner?: boolean; is_admin?: boolean; one_time_password?: boolean };
    const user = await createUser(core, caller.actor, {
      email: body.email,
      password: body.password,
      isAdmin: body.owner ?? body.is_admin ?? false,
      oneTimePassword: body.one_time_password ?? true,
    });
    reply.status(201);
    return userView(user);
  });

  app.patch('/api/v1/users/:email', { schema: { tags, params: EmailParams, body: UpdateUserRequest, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    requireOwner(caller);
    const user = await namedUser((request.params as { email: string }).email);
    const body = request.body as { disabled?: boolean; owner?: boolean };
    let view = userView(user);
    if (body.disabled !== undefined) view = userView(await setUserDisabled(core, caller, user.email, body.disabled));
    if (body.owner !== undefined) view = userView(await setOwner(core, caller, user.email, body.owner));
    return view;
  });

  app.delete('/api/v1/users/:email', { schema: { tags, params: EmailParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    requireOwner(caller);
    await removeUser(core, caller, (await namedUser((request.params as { email: string }).email)).email);
    return { ok: true };
  });

  app.get('/api/v1/users/:email/sessions', { schema: { tags, params: EmailParams } }, async (request) => {
    const caller = await requireUser(core, request);
    const user = await namedUser((request.params as { email: string }).email);
    return { items: (await listSessions(core, caller, user.id)).map((s) => sessionView(s, caller.session?.idHash)) };
  });

  app.delete('/api/v1/users/:email/sessions/:id', { schema: { tags, params: SessionParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    const params = request.params as { email: string; id: string };
    await revokeSession(core, caller, (await namedUser(params.email)).id, params.id);
    return { ok: true };
  });

  app.get('/api/v1/tokens', { schema: { tags, querystring: AllQuery } }, async (request) => {
    const caller = await requireUser(core, request);
    if ((request.query as { all?: string }).all === 'true') {
      requireOwner(caller);
      return { items: (await core.store.access.listAllTokens()).map(tokenView) };
    }
    const user = requirePerson(caller, 'have personal tokens');
    return { items: (await core.store.listTokens(user.id)).map(tokenView) };
  });

  app.post('/api/v1/tokens', { schema: { tags, body: CreateTokenRequest, response: errors } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const body = request.body as CreateTokenRequest;
    const user = requirePerson(caller, 'create personal tokens');
    const { token, secret } = await createToken(core, caller.actor, user, body.name, {
      grants: caller.grants,
      projects: body.projects,
      readOnly: body.read_only,
      expiresAt: expiryOf(body.expires_at),
    });
    reply.status(201);
    return { ...tokenView(token), token: secret };
  });

  app.post('/api/v1/tokens/:id/revoke', { schema: { tags, params: IdParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    await revokeToken(core, caller, (request.params as { id: string }).id);
    return { ok: true };
  });
}
