/**
 * Command settings: reading them (every run does) and changing them (project admins: checked,
 * written in one transaction, audited with each field's before and after).
 */
import { checkApprovalPattern, checkApproverRole, defaultSettings, MAX_APPROVAL_EXPIRY_SECONDS, MAX_CONCURRENCY, MAX_DEFAULT_TIMEOUT_SECONDS, type ApproverRole, type CommandSettings } from '../domain/commandSettings.js';
import type { Project } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { requirePermission, type Principal } from './access.js';

export interface CommandSettingsPatch {
  metadataOnly?: boolean;
  defaultTimeoutSeconds?: number | null;
  maxConcurrency?: number | null;
  readOnlyDefault?: boolean;
  requiresApproval?: boolean;
  approvalPattern?: string | null;
  approverRole?: string;
  approvalExpirySeconds?: number;
}

/** The settings of these commands of a project, by name (defaults for those nobody changed). */
export async function settingsFor(core: Core, projectId: string, commands: readonly string[]): Promise<Map<string, CommandSettings>> {
  const found = new Map((await core.store.commandSettings.getMany(projectId, [...new Set(commands)])).map((s) => [s.command, s] as const));
  for (const name of commands) if (!found.has(name)) found.set(name, defaultSettings(projectId, name));
  return found;
}

export async function getCommandSettings(core: Core, principal: Principal, project: Project, command: string): Promise<CommandSettings> {
  await requirePermission(core, principal, project, 'view');
  await requireCommand(core, project, command);
  return (await settingsFor(core, project.id, [command])).get(command)!;
}

/** Changes the fields `patch` names; the others stay. Audited as `command.settings` with from/to per field. */
export async function updateCommandSettings(core: Core, principal: Principal, project: Project, command: string, patch: CommandSettingsPatch): Promise<CommandSettings> {
  await requirePermission(core, principal, project, 'commands.manage');
  await requireCommand(core, project, command);
  const before = (await settingsFor(core, project.id, [command])).get(command)!;
  const after: CommandSettings = { ...before, ...checkPatch(patch), updatedAt: core.now(), updatedBy: principal.actor.label };
  if (after.approvalPattern !== null && !after.requiresApproval && patch.approvalPattern !== undefined) {
    // A pattern alone would do nothing: say so rather than store a setting that looks active.
    throw new UserError('DC_VALIDATION', 'approval_pattern only narrows requires_approval: turn requires_approval on too.', { field: 'approval_pattern' });
  }
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of FIELDS) if (before[key] !== after[key]) changes[key] = { from: before[key], to: after[key] };
  if (Object.keys(changes).length === 0) return before;
  if (!(await core.store.commandSettings.put(after))) await requireCommand(core, project, command);
  await audit(core, principal.actor, { action: 'command.settings', projectId: project.id, details: { command, changes } });
  return after;
}

const FIELDS = ['metadataOnly', 'defaultTimeoutSeconds', 'maxConcurrency', 'readOnlyDefault', 'requiresApproval', 'approvalPattern', 'approverRole', 'approvalExpirySeconds'] as const;

function checkPatch(p: CommandSettingsPatch): Partial<CommandSettings> {
  const out: Partial<CommandSettings> = {};
  if (p.metadataOnly !== undefined) out.metadataOnly = bool(p.metadataOnly, 'metadata_only');
  if (p.readOnlyDefault !== undefined) out.readOnlyDefault = bool(p.readOnlyDefault, 'read_only_default');
  if (p.requiresApproval !== undefined) out.requiresApproval = bool(p.requiresApproval, 'requires_approval');
  if (p.defaultTimeoutSeconds !== undefined) out.defaultTimeoutSeconds = p.defaultTimeoutSeconds === null ? null : whole(p.defaultTimeoutSeconds, 'default_timeout_seconds', 1, MAX_DEFAULT_TIMEOUT_SECONDS);
  if (p.maxConcurrency !== undefined) out.maxConcurrency = p.maxConcurrency === null ? null : whole(p.maxConcurrency, 'max_concurrency', 1, MAX_CONCURRENCY);
  if (p.approvalPattern !== undefined) out.approvalPattern = checkApprovalPattern(p.approvalPattern);
  if (p.approverRole !== undefined) out.approverRole = checkApproverRole(p.approverRole) satisfies ApproverRole;
  if (p.approvalExpirySeconds !== undefined) out.approvalExpirySeconds = whole(p.approvalExpirySeconds, 'approval_expiry_seconds', 60, MAX_APPROVAL_EXPIRY_SECONDS);
  return out;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new UserError('DC_VALIDATION', `${field} must be true or false.`, { field });
  return v;
}

function whole(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new UserError('DC_VALIDATION', `${field} must be a whole number from ${min} to ${max}.`, { field });
  }
  return v;
}

async function requireCommand(core: Core, project: Project, command: string): Promise<void> {
  if (!(await core.store.getCommand(project.id, command))) {
    throw new UserError('DC_UNKNOWN_COMMAND', `Project "${project.name}" has no command "${command}".`);
  }
}
