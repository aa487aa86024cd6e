/**
 * Who is asking, and may they: turns a credential (session, personal token, CI token) into a
 * principal with its grants, and checks the permission table (domain/roles.ts) for a project.
 * Every route, dashboard action and CLI command goes through requireProject / requireOwner.
 */
import type { Actor, ApiToken, CiToken, Execution, Membership, Project, User } from '../domain/model.js';
import { isOwner, may, roleIn, visibleProjects, PERMISSIONS, type Grants, type Permission, type ProjectRole } from '../domain/roles.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { resolveProject } from './projects.js';

export type Credential = { kind: 'session'; idHash: string } | { kind: 'token'; id: string } | { kind: 'ci'; id: string } | { kind: 'host' };

export interface Principal {
  /** The person; null for a CI token. */
  user: User | null;
  actor: Actor;
  grants: Grants;
  credential: Credential;
}

/** Someone on the server host with the database (the `admin` CLI): an owner's powers, no person. */
export function hostPrincipal(actor: Actor): Principal {
  return { user: null, actor, grants: { owner: true, roles: new Map(), limitedTo: null, readOnly: false }, credential: { kind: 'host' } };
}

/** A person's grants, narrowed by the token they use (if any). */
export async function personGrants(core: Core, user: User, token?: ApiToken): Promise<Grants> {
  return grantsOf(user, await core.store.access.membershipsOf(user.id), token);
}

/** personGrants from memberships already read (with the token, in one statement). */
export function grantsOf(user: User, memberships: readonly Membership[], token?: ApiToken): Grants {
  const roles = new Map(memberships.map((m) => [m.projectId, m.role] as const));
  return {
    owner: user.isAdmin,
    roles,
    limitedTo: token?.projectIds ? new Set(token.projectIds) : null,
    readOnly: token?.readOnly ?? false,
  };
}

export function ciGrants(token: CiToken): Grants {
  return { owner: false, roles: new Map([[token.projectId, token.role]]), limitedTo: new Set([token.projectId]), readOnly: false };
}

/** Why a user may not act at all, or undefined when they may. */
export function userBlocked(user: User): string | undefined {
  if (user.removedAt !== null) return 'This account was removed.';
  if (user.disabledAt !== null) return 'This account is disabled; an owner can enable it again.';
  return undefined;
}

export function roleOf(p: Principal, projectId: string): ProjectRole | null {
  return roleIn(p.grants, projectId);
}

/**
 * The project, when the principal may do `permission` in it. A project it may not see answers
 * exactly like one that does not exist (so names cannot be probed); one it sees with too small a
 * role is DC_FORBIDDEN, audited as denied.
 */
export async function requireProject(core: Core, p: Principal, ref: string | undefined, permission: Permission): Promise<Project> {
  const project = ref ? await resolveProject(core, ref) : await onlyVisibleProject(core, p);
  checkProject(p, project, ref);
  await requirePermission(core, p, project, permission);
  return project;
}

/** Like requireProject for a project already loaded (an execution's, a schedule's). */
export async function requirePermission(core: Core, p: Principal, project: Project, permission: Permission): Promise<void> {
  checkProject(p, project, project.name);
  if (may(p.grants, project.id, permission)) return;
  const role = roleIn(p.grants, project.id);
  const needed = PERMISSIONS[permission];
  const why = p.grants.readOnly && role === 'viewer' ? 'this token is read-only' : `your role in project ${project.name} is ${role}`;
  await audit(core, p.actor, { action: 'access.denied', projectId: project.id, outcome: 'denied', details: { permission, role, needed } });
  throw new UserError('DC_FORBIDDEN', `This needs the ${needed} role (${permission}); ${why}.`, { permission, role, needed });
}

function checkProject(p: Principal, project: Project, ref: string | undefined): void {
  if (roleIn(p.grants, project.id) === null) throw new UserError('DC_UNKNOWN_PROJECT', `No project named "${ref ?? project.name}".`);
}

/** With no project named: the one project the principal may see, if there is exactly one. */
async function onlyVisibleProject(core: Core, p: Principal): Promise<Project> {
  const all = await visibleProjectList(core, p);
  if (all.length === 1) return all[0];
  if (all.length === 0) throw new UserError('DC_UNKNOWN_PROJECT', 'You are not a member of any project yet: ask a project admin to add you.');
  throw new UserError('DC_VALIDATION', `Name a project: there are ${all.length} (${all.map((x) => x.name).join(', ')}).`, { field: 'project' });
}

export async function visibleProjectList(core: Core, p: Principal): Promise<Project[]> {
  const ids = visibleProjects(p.grants);
  const all = await core.store.listProjects();
  return ids === null ? all : all.filter((x) => ids.has(x.id));
}

/** The ids of the projects the principal may see; null: all. */
export function visibleProjectIds(p: Principal): ReadonlySet<string> | null {
  return visibleProjects(p.grants);
}

/** Owner powers: users, projects, server-wide settings. */
export function requireOwner(p: Principal): void {
  if (!isOwner(p.grants)) {
    const why = p.grants.owner ? 'this token is limited (read-only or to some projects)' : 'only an owner may';
    throw new UserError('DC_FORBIDDEN', `This needs the server-wide owner role; ${why}.`, { needed: 'owner' });
  }
}

/** The person behind the principal; a CI token has none. */
export function requirePerson(p: Principal, what: string): User {
  if (!p.user) throw new UserError('DC_FORBIDDEN', `A CI token acts for no person and cannot ${what}; use a personal token.`);
  return p.user;
}

/**
 * The execution, when the principal may do `permission` in its project; one in a project it may
 * not see answers like one that does not exist.
 */
export async function requireExecution(core: Core, p: Principal, id: string, permission: Permission): Promise<Execution> {
  const e = await core.store.getExecution(id);
  if (!e || roleIn(p.grants, e.projectId) === null) throw new UserError('DC_UNKNOWN_EXECUTION', `No execution ${id}.`);
  const project = await core.store.getProject(e.projectId);
  if (!project) throw new UserError('DC_UNKNOWN_EXECUTION', `No execution ${id}.`);
  await requirePermission(core, p, project, permission);
  return e;
}

/** The filter value for lists: undefined (all) for an owner's unlimited credential, else the visible ids. */
export function visibleFilter(p: Principal): string[] | undefined {
  const ids = visibleProjects(p.grants);
  return ids === null ? undefined : [...ids];
}

/**
 * The principal's grants as they are now (a long-lived shell or stream checks again): undefined
 * when its credential or person no longer works at all.
 */
export async function freshGrants(core: Core, p: Principal): Promise<Grants | undefined> {
  const now = core.now();
  const c = p.credential;
  if (c.kind === 'host') return p.grants;
  if (c.kind === 'ci') {
    const t = await core.store.access.getCiToken(c.id);
    return t && t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now) ? ciGrants(t) : undefined;
  }
  let token: ApiToken | undefined;
  if (c.kind === 'session') {
    const s = await core.store.findSession(c.idHash);
    if (!s || s.expiresAt <= now) return undefined;
  } else {
    token = await core.store.getToken(c.id);
    if (!token || token.revokedAt !== null || (token.expiresAt !== null && token.expiresAt <= now)) return undefined;
  }
  const user = p.user && (await core.store.getUser(p.user.id));
  if (!user || userBlocked(user)) return undefined;
  return personGrants(core, user, token);
}
