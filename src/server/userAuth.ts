/** Authenticates REST API callers: personal API tokens (dct_...) as bearer tokens. */
import type { FastifyRequest } from 'fastify';
import type { Actor, User } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from '../core/context.js';
import { authenticateToken, tokenActor } from '../core/accounts.js';
import { RUNNER_KEY_PREFIX } from '../core/secrets.js';

export interface Caller {
  user: User;
  actor: Actor;
}

export function bearerOf(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

export async function requireUser(core: Core, request: FastifyRequest): Promise<Caller> {
  const secret = bearerOf(request);
  if (!secret) throw new UserError('DC_UNAUTHENTICATED', 'Send a personal API token as "Authorization: Bearer dct_..." (create one with `djangocommand admin create-token`).', 401);
  if (secret.startsWith(RUNNER_KEY_PREFIX)) {
    throw new UserError('DC_WRONG_CREDENTIAL', 'This is a runner API key; the REST API takes a personal API token (dct_...).', 403);
  }
  const found = await authenticateToken(core, secret);
  if (!found) throw new UserError('DC_UNAUTHENTICATED', 'Unknown or revoked API token.', 401);
  return { user: found.user, actor: tokenActor(found.token, found.user, request.ip) };
}

export function requireAdmin(caller: Caller): void {
  if (!caller.user.isAdmin) throw new UserError('DC_FORBIDDEN', 'Only an admin may do this.', 403);
}
