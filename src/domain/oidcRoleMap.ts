/**
 * How a single sign-on provider's group claim becomes project roles (DJANGOCOMMAND_OIDC_ROLE_MAP).
 *
 * The map is a comma-separated list of `VALUE=TARGET`, where VALUE is one value of the roles
 * claim (a group name) and TARGET is `PROJECT:ROLE` (a role in one project), `*:ROLE` (that role
 * in every project) or `owner` (the server-wide owner role):
 *
 *     dc-shop-admins=shop:admin,dc-ops=*:operator,dc-owners=owner
 *
 * A person gets the highest role any of their values maps to. The map "covers" the projects it
 * names (every project once `*` appears) and the owner flag once `owner` appears: on each sign-in
 * what it covers is set from the claim, so a group taken away at the provider takes the role away
 * here. What it does not cover is left to the project admins.
 * Pure: no I/O here (core/oidc.ts applies it).
 */
import { PROJECT_ROLES, isProjectRole, lowerRole, type ProjectRole } from './roles.js';

export type RoleTarget = { kind: 'owner' } | { kind: 'project'; project: string | '*'; role: ProjectRole };

export interface RoleMapEntry {
  value: string;
  target: RoleTarget;
}

/** Parses the map; throws an Error whose message names the bad entry and the expected form. */
export function parseRoleMap(text: string): RoleMapEntry[] {
  const entries: RoleMapEntry[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.lastIndexOf('=');
    const value = eq > 0 ? item.slice(0, eq).trim() : '';
    const target = eq > 0 ? item.slice(eq + 1).trim() : '';
    if (value === '' || target === '') throw new Error(`"${item}" is not VALUE=TARGET (e.g. dc-ops=shop:operator)`);
    if (target === 'owner') {
      entries.push({ value, target: { kind: 'owner' } });
      continue;
    }
    const colon = target.lastIndexOf(':');
    const project = colon > 0 ? target.slice(0, colon).trim() : '';
    const role = colon > 0 ? target.slice(colon + 1).trim() : '';
    if (project === '' || !isProjectRole(role)) {
      throw new Error(`"${item}": the target must be owner, PROJECT:ROLE or *:ROLE with ROLE one of ${PROJECT_ROLES.join(', ')}`);
    }
    entries.push({ value, target: { kind: 'project', project, role } });
  }
  return entries;
}

/** The values of the roles claim: a list of strings, or one string (some providers send one group so). */
export function claimValues(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim)) return claim.filter((v): v is string => typeof v === 'string');
  return [];
}

export interface MappedRoles {
  /** The role per project name the map names, null where the person gets none. */
  projects: Map<string, ProjectRole | null>;
  /** The role in every project from `*` entries; null when none applies. */
  everyProject: ProjectRole | null;
  /** Whether any `*` entry exists (then every project is covered). */
  coversEveryProject: boolean;
  /** The owner flag; undefined when the map has no `owner` entry (the flag is left alone). */
  owner: boolean | undefined;
}

/** What the map gives a person with these claim values. */
export function mapRoles(map: readonly RoleMapEntry[], values: readonly string[]): MappedRoles {
  const has = new Set(values);
  const out: MappedRoles = { projects: new Map(), everyProject: null, coversEveryProject: false, owner: undefined };
  for (const { value, target } of map) {
    const applies = has.has(value);
    if (target.kind === 'owner') {
      out.owner = (out.owner ?? false) || applies;
      continue;
    }
    if (target.project === '*') {
      out.coversEveryProject = true;
      if (applies) out.everyProject = higher(out.everyProject, target.role);
      continue;
    }
    const before = out.projects.get(target.project) ?? null;
    out.projects.set(target.project, applies ? higher(before, target.role) : before);
  }
  return out;
}

/** The role the map gives in one project, and whether the map covers that project at all. */
export function roleFor(mapped: MappedRoles, projectName: string): { covered: boolean; role: ProjectRole | null } {
  const named = mapped.projects.has(projectName);
  if (!named && !mapped.coversEveryProject) return { covered: false, role: null };
  return { covered: true, role: higher(mapped.projects.get(projectName) ?? null, mapped.everyProject) };
}

function higher(a: ProjectRole | null, b: ProjectRole | null): ProjectRole | null {
  if (a === null) return b;
  if (b === null) return a;
  return lowerRole(a, b) === a ? b : a;
}
