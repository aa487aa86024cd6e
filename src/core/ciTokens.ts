/**
 * Tokens for CI: a `dct_...` secret with one role in one project and no person behind it, made
 * and revoked by the project's admins. Everything a CI token does is audited under its name.
 */
import { randomUUID } from 'node:crypto';
import type { Actor, CiToken, Project } from '../domain/model.js';
import { checkRole } from '../domain/roles.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { topics } from './notifier.js';
import { newUserToken } from './secrets.js';
import { ciGrants, requirePermission, type Principal } from './access.js';
import { checkExpiry, checkTokenName } from '../domain/tokenRules.js';

export function ciActor(token: CiToken, address: string | null): Actor {
  return { type: 'token', id: token.id, label: `CI token ${token.name}`, address };
}

export async function createCiToken(
  core: Core,
  principal: Principal,
  project: Project,
  input: { name: string; role: string; expiresAt?: number | null },
): Promise<{ token: CiToken; secret: string }> {
  await requirePermission(core, principal, project, 'members.manage');
  const name = checkTokenName(input.name);
  const role = checkRole(input.role);
  const s = newUserToken();
  const token: CiToken = {
    id: randomUUID(),
    projectId: project.id,
    name,
    role,
    prefix: s.prefix,
    tokenHash: s.hash,
    createdAt: core.now(),
    createdBy: principal.actor.label,
    expiresAt: checkExpiry(core.now(), input.expiresAt),
    lastUsedAt: null,
    revokedAt: null,
  };
  await core.store.access.createCiToken(token);
  await audit(core, principal.actor, { action: 'ci_token.create', projectId: project.id, details: { token_id: token.id, name, role, prefix: s.prefix, expires_at: token.expiresAt } });
  return { token, secret: s.secret };
}

export async function revokeCiToken(core: Core, principal: Principal, project: Project, id: string): Promise<void> {
  await requirePermission(core, principal, project, 'members.manage');
  if (!(await core.store.access.revokeCiToken(id, project.id, core.now()))) {
    throw new UserError('DC_UNKNOWN_TOKEN', `Project ${project.name} has no active CI token ${id}.`);
  }
  core.notifier.publish(topics.credential('token', id));
  await audit(core, principal.actor, { action: 'ci_token.revoke', projectId: project.id, details: { token_id: id } });
}

/** The principal of a CI token, by the hash of its secret (personal tokens are looked up first). */
export async function authenticateCiToken(core: Core, hash: string, address: string | null): Promise<Principal> {
  const token = await core.store.access.findCiTokenByHash(hash);
  const now = core.now();
  if (!token || token.revokedAt !== null) throw new UserError('DC_UNAUTHENTICATED', 'Unknown or revoked API token.');
  if (token.expiresAt !== null && token.expiresAt <= now) {
    throw new UserError('DC_TOKEN_EXPIRED', `This CI token expired on ${new Date(token.expiresAt).toISOString()}; a project admin can make a new one.`);
  }
  if (token.lastUsedAt === null || now - token.lastUsedAt > 60_000) await core.store.access.touchCiToken(token.id, now);
  return { user: null, actor: ciActor(token, address), grants: ciGrants(token), credential: { kind: 'ci', id: token.id } };
}
