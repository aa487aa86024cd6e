/**
 * People and their places: project members and their roles (project admins), and the states of
 * users (owners): disabled, removed, owner or not. Ending someone's access ends it everywhere at
 * once: sessions, tokens and the live streams opened with them.
 */
import type { MemberRow, Project, User } from '../domain/model.js';
import { checkRole, type ProjectRole } from '../domain/roles.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { topics } from './notifier.js';
import { normaliseEmail } from './accounts.js';
import { requireOwner, requirePermission, type Principal } from './access.js';

async function userByEmail(core: Core, email: string): Promise<User> {
  const user = await core.store.findUserByEmail(normaliseEmail(email));
  if (!user || user.removedAt !== null) throw new UserError('DC_UNKNOWN_USER', `No user with email ${email}; an owner can create one with \`djangocommand users create\`.`);
  return user;
}

/** Adds a member or changes their role. */
export async function setMember(core: Core, principal: Principal, project: Project, email: string, role: string): Promise<{ user: User; role: ProjectRole; added: boolean }> {
  await requirePermission(core, principal, project, 'members.manage');
  const r = checkRole(role);
  const user = await userByEmail(core, email);
  const added = await core.store.access.setMember(project.id, user.id, r, core.now());
  // Live streams re-check what they may see (a lowered role may no longer reach them).
  if (!added) core.notifier.publish(topics.credential('user', user.id));
  await audit(core, principal.actor, { action: added ? 'member.add' : 'member.role', projectId: project.id, details: { email: user.email, role: r } });
  return { user, role: r, added };
}

export async function removeMember(core: Core, principal: Principal, project: Project, email: string): Promise<void> {
  await requirePermission(core, principal, project, 'members.manage');
  const user = await userByEmail(core, email);
  if (!(await core.store.access.removeMember(project.id, user.id))) {
    throw new UserError('DC_NOT_A_MEMBER', `${user.email} is not a member of project ${project.name}.`);
  }
  core.notifier.publish(topics.credential('user', user.id));
  await audit(core, principal.actor, { action: 'member.remove', projectId: project.id, details: { email: user.email } });
}

export async function listMembers(core: Core, principal: Principal, project: Project): Promise<MemberRow[]> {
  await requirePermission(core, principal, project, 'view');
  return core.store.access.listMembers(project.id);
}

/** Disables (or enables) a user; disabling ends their sessions, token use and live streams at once. */
export async function setUserDisabled(core: Core, principal: Principal, email: string, disabled: boolean): Promise<User> {
  requireOwner(principal);
  const user = await userByEmail(core, email);
  if (disabled && principal.user?.id === user.id) throw new UserError('DC_VALIDATION', 'You cannot disable yourself; another owner can.', { field: 'email' });
  if (disabled && user.isAdmin) await keepAnOwner(core, user);
  await core.store.access.setUserDisabled(user.id, disabled ? core.now() : null);
  if (disabled) {
    for (const hash of await core.store.access.deleteUserSessions(user.id)) core.notifier.publish(topics.credential('session', hash));
    core.notifier.publish(topics.credential('user', user.id));
  }
  await audit(core, principal.actor, { action: disabled ? 'user.disable' : 'user.enable', details: { email: user.email } });
  return (await core.store.getUser(user.id))!;
}

/** Removes a user: gone from lists, memberships, tokens and sessions; their history stays attributed. */
export async function removeUser(core: Core, principal: Principal, email: string): Promise<void> {
  requireOwner(principal);
  const user = await userByEmail(core, email);
  if (principal.user?.id === user.id) throw new UserError('DC_VALIDATION', 'You cannot remove yourself; another owner can.', { field: 'email' });
  if (user.isAdmin) await keepAnOwner(core, user);
  const ended = await core.store.access.removeUser(user.id, core.now());
  if (!ended) throw new UserError('DC_UNKNOWN_USER', `No user with email ${email}.`);
  for (const id of ended.tokenIds) core.notifier.publish(topics.credential('token', id));
  for (const hash of ended.sessionHashes) core.notifier.publish(topics.credential('session', hash));
  core.notifier.publish(topics.credential('user', user.id));
  await audit(core, principal.actor, { action: 'user.remove', details: { email: user.email, tokens_revoked: ended.tokenIds.length, sessions_ended: ended.sessionHashes.length } });
}

/** Makes a user an owner, or not; the server always keeps one enabled owner. */
export async function setOwner(core: Core, principal: Principal, email: string, owner: boolean): Promise<User> {
  requireOwner(principal);
  const user = await userByEmail(core, email);
  if (!owner && user.isAdmin) await keepAnOwner(core, user);
  await core.store.access.setOwner(user.id, owner);
  core.notifier.publish(topics.credential('user', user.id));
  await audit(core, principal.actor, { action: owner ? 'user.owner_grant' : 'user.owner_revoke', details: { email: user.email } });
  return (await core.store.getUser(user.id))!;
}

async function keepAnOwner(core: Core, leaving: User): Promise<void> {
  const others = (await core.store.listUsers()).filter((u) => u.isAdmin && u.id !== leaving.id && u.disabledAt === null);
  if (others.length === 0) throw new UserError('DC_LAST_OWNER', `${leaving.email} is the only enabled owner; make someone else an owner first.`);
}
