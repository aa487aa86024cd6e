/**
 * Per-command settings a project admin chooses (dashboard, API, CLI), and the rules of four-eyes
 * approvals that depend on them. Pure: no I/O here (core/commandSettings.ts stores and audits).
 *
 *  - metadataOnly: the output is not kept (v1 `use_metadata_only_mode`, v2 `metadata_only`);
 *    either the runner's DJANGOCOMMAND_METADATAONLY_COMMANDS or this turns it on.
 *  - defaultTimeoutSeconds: the timeout of a run that names none (null: the server's default).
 *  - maxConcurrency, readOnlyDefault: kept on the catalogue row (they predate this file).
 *  - requiresApproval: runs wait in `awaiting_approval` until another member approves;
 *    approvalPattern (a regular expression over the run's arguments joined as shell words, e.g.
 *    `^\S+ \d{4}$` for `migrate shop 0042`) narrows that to the runs whose arguments match.
 *  - approverRole: the least project role that may approve (operator or admin).
 *  - approvalExpirySeconds: an unanswered request is rejected ("approval expired") after this.
 */
import { UserError } from '../shared/errors.js';

export const APPROVER_ROLES = ['operator', 'admin'] as const;
export type ApproverRole = (typeof APPROVER_ROLES)[number];

export const DEFAULT_APPROVAL_EXPIRY_SECONDS = 24 * 3600;
export const MAX_APPROVAL_EXPIRY_SECONDS = 30 * 24 * 3600;
export const MAX_PATTERN_CHARS = 500;
/** The longest default timeout: the longest a run may ask for (core/executions.ts). */
export const MAX_DEFAULT_TIMEOUT_SECONDS = 7 * 24 * 3600;
export const MAX_CONCURRENCY = 1000;

export interface CommandSettings {
  projectId: string;
  command: string;
  metadataOnly: boolean;
  defaultTimeoutSeconds: number | null;
  maxConcurrency: number | null;
  readOnlyDefault: boolean;
  requiresApproval: boolean;
  approvalPattern: string | null;
  approverRole: ApproverRole;
  approvalExpirySeconds: number;
  /** When and by whom they last changed; null before anyone did. */
  updatedAt: number | null;
  updatedBy: string | null;
}

/** The settings of a command nobody has changed. */
export function defaultSettings(projectId: string, command: string): CommandSettings {
  return {
    projectId,
    command,
    metadataOnly: false,
    defaultTimeoutSeconds: null,
    maxConcurrency: null,
    readOnlyDefault: false,
    requiresApproval: false,
    approvalPattern: null,
    approverRole: 'operator',
    approvalExpirySeconds: DEFAULT_APPROVAL_EXPIRY_SECONDS,
    updatedAt: null,
    updatedBy: null,
  };
}

export function checkApproverRole(role: string): ApproverRole {
  if (!(APPROVER_ROLES as readonly string[]).includes(role)) {
    throw new UserError('DC_VALIDATION', `approver_role "${role}" is not one of ${APPROVER_ROLES.join(', ')}.`, { field: 'approver_role' });
  }
  return role as ApproverRole;
}

/** The pattern as stored, or a DC_VALIDATION naming what is wrong with it. */
export function checkApprovalPattern(pattern: string | null): string | null {
  if (pattern === null || pattern === '') return null;
  if (pattern.length > MAX_PATTERN_CHARS) {
    throw new UserError('DC_VALIDATION', `approval_pattern may be at most ${MAX_PATTERN_CHARS} characters.`, { field: 'approval_pattern' });
  }
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    throw new UserError('DC_VALIDATION', `approval_pattern is not a regular expression: ${(err as Error).message}.`, { field: 'approval_pattern' });
  }
  return pattern;
}
