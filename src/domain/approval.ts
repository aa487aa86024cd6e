/**
 * Four-eyes approvals, the rules: which runs need one, who may decide, and what an approval is
 * bound to. Pure: no I/O here (core/approvals.ts applies them).
 *
 * A request's states:  pending ──▶ approved | denied | expired
 *                         └─────▶ closed      (its execution ended otherwise: cancelled)
 * Its execution moves awaiting_approval → queued (approved) | rejected (denied, expired, or what
 * would run changed) | cancelled, always through core/executionState.ts.
 */
import { atLeast, type ProjectRole } from './roles.js';
import type { ApproverRole, CommandSettings } from './commandSettings.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'closed';

export interface ApprovalRequest {
  executionId: string;
  projectId: string;
  command: string;
  /** SHA-256 of bindingText() of what was asked: checked again when it is approved. */
  bindingHash: string;
  /** The people behind the request (user ids): none of them may decide it. */
  requesterIds: string[];
  requestedBy: string;
  approverRole: ApproverRole;
  /** The start timeout the run asked for: its start deadline counts from the approval. */
  startTimeoutSeconds: number;
  status: ApprovalStatus;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  decidedById: string | null;
  decidedBy: string | null;
  comment: string | null;
}

/**
 * Whether a run with these arguments (shell-joined, canonical quoting) needs approval. A pattern
 * that cannot be read any more (it was checked when saved) fails safe: approval is needed.
 */
export function needsApproval(s: Pick<CommandSettings, 'requiresApproval' | 'approvalPattern'>, args: string): boolean {
  if (!s.requiresApproval) return false;
  if (s.approvalPattern === null) return true;
  try {
    return new RegExp(s.approvalPattern, 'u').test(args);
  } catch {
    return true;
  }
}

/** Whether a member with `role` may approve for a command whose approver role is `needed`. */
export function mayApproveAs(role: ProjectRole | null, needed: ApproverRole): boolean {
  return atLeast(role, needed);
}

/** The stricter of two approver roles (the one asked when the request was made, and today's). */
export function stricterRole(a: ApproverRole, b: ApproverRole): ApproverRole {
  return a === 'admin' || b === 'admin' ? 'admin' : 'operator';
}

/** What an approval is bound to: project, command, exact arguments and database mode. */
export interface ApprovalBinding {
  projectId: string;
  command: string;
  argv: readonly string[];
  args: string;
  readOnly: boolean;
}

/** The binding as canonical JSON (core/approvals.ts stores its SHA-256): any change of what would run changes it. */
export function bindingText(b: ApprovalBinding): string {
  return JSON.stringify([b.projectId, b.command, [...b.argv], b.args, b.readOnly]);
}
