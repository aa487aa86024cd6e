/**
 * Who may do what: the one table of permissions.
 *
 * Per project, a member is a viewer, an operator or an admin; each role can do what the ones
 * before it can. Server-wide, an owner manages users and projects and is an admin of every
 * project. A personal token acts with its owner's roles, narrowed to some projects and/or to
 * viewer; a CI token has one role in one project and no person behind it.
 * Pure: no I/O here (core/access.ts applies it to a request).
 */
import { UserError } from '../shared/errors.js';

export const PROJECT_ROLES = ['viewer', 'operator', 'admin'] as const;
export type ProjectRole = (typeof PROJECT_ROLES)[number];

const RANK: Record<ProjectRole, number> = { viewer: 1, operator: 2, admin: 3 };

export function isProjectRole(value: unknown): value is ProjectRole {
  return typeof value === 'string' && (PROJECT_ROLES as readonly string[]).includes(value);
}

/** A role given by a person (API body, CLI flag). */
export function checkRole(role: string): ProjectRole {
  if (!isProjectRole(role)) throw new UserError('DC_VALIDATION', `"${role}" is not a role; use one of ${PROJECT_ROLES.join(', ')}.`, { field: 'role' });
  return role;
}

export function atLeast(role: ProjectRole | null, needed: ProjectRole): boolean {
  return role !== null && RANK[role] >= RANK[needed];
}

/** The lower of two roles (a read-only token narrows its owner's role to viewer). */
export function lowerRole(a: ProjectRole, b: ProjectRole): ProjectRole {
  return RANK[a] <= RANK[b] ? a : b;
}

/** Everything that is allowed per project, and the least role that may do it. */
export const PERMISSIONS = {
  /** Executions, their output and downloads, schedules, the catalogue, runners, audit, shells' recordings. */
  view: 'viewer',
  /** Run an allowed command (also again), cancel an execution. */
  run: 'operator',
  cancel: 'operator',
  /** Open a read-only shell. */
  'shell.read': 'operator',
  /** Approve or deny another member's request (commands whose settings name no stricter role). */
  approve: 'operator',
  /** Runner keys, schedules, notification channels, command settings, members, retention, writable shells. */
  'keys.manage': 'admin',
  'schedules.manage': 'admin',
  'channels.manage': 'admin',
  'commands.manage': 'admin',
  'members.manage': 'admin',
  'project.manage': 'admin',
  'shell.write': 'admin',
} as const satisfies Record<string, ProjectRole>;

export type Permission = keyof typeof PERMISSIONS;

/** What a caller is, for the permission table: a person (maybe an owner) or a CI token. */
export interface Grants {
  /** Server-wide owner (manages users and projects; admin everywhere). */
  owner: boolean;
  /** The role per project id; projects not here are invisible. Ignored for an owner unless `limitedTo` is set. */
  roles: ReadonlyMap<string, ProjectRole>;
  /** A token limited to these projects (owner or not); null: no limit. */
  limitedTo: ReadonlySet<string> | null;
  /** A read-only token: at most viewer anywhere, and no owner powers. */
  readOnly: boolean;
}

/** The caller's role in a project, null when it may not even see the project. */
export function roleIn(g: Grants, projectId: string): ProjectRole | null {
  if (g.limitedTo && !g.limitedTo.has(projectId)) return null;
  const role = g.owner ? 'admin' : (g.roles.get(projectId) ?? null);
  if (role === null) return null;
  return g.readOnly ? lowerRole(role, 'viewer') : role;
}

export function may(g: Grants, projectId: string, permission: Permission): boolean {
  return atLeast(roleIn(g, projectId), PERMISSIONS[permission]);
}

/** Owner powers (users, projects, server settings): an owner's session or unlimited, writable token. */
export function isOwner(g: Grants): boolean {
  return g.owner && !g.readOnly && g.limitedTo === null;
}

/** Projects the caller may see; null: all of them. */
export function visibleProjects(g: Grants): ReadonlySet<string> | null {
  if (g.owner) return g.limitedTo;
  const ids = [...g.roles.keys()].filter((id) => !g.limitedTo || g.limitedTo.has(id));
  return new Set(ids);
}
