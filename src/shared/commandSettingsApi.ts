/**
 * The REST views and requests of command settings and four-eyes approvals, defined once: the
 * server builds them here, the CLI and the dashboard read them.
 *
 * Glossary:
 * - command settings: what a project admin chose for one command (metadata-only, default
 *   timeout, concurrency, read-only by default, requires approval); see domain/commandSettings.ts.
 * - approval request: an execution of a command that requires approval waits in
 *   `awaiting_approval` until a member other than the requester approves (→ queued) or denies
 *   (→ rejected); unanswered, it is rejected when the request expires.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable } from './wireSchemas.js';
import { APPROVER_ROLES, MAX_APPROVAL_EXPIRY_SECONDS, MAX_CONCURRENCY, MAX_DEFAULT_TIMEOUT_SECONDS, MAX_PATTERN_CHARS, type CommandSettings } from '../domain/commandSettings.js';
import type { ApprovalRequest } from '../domain/approval.js';
import type { Execution } from '../domain/model.js';

const iso = (ms: number) => new Date(ms).toISOString();

export const CommandSettingsView = Type.Object({
  project: Type.String(),
  command: Type.String(),
  metadata_only: Type.Boolean({ description: 'Output is not kept (the runner also turns it on for DJANGOCOMMAND_METADATAONLY_COMMANDS).' }),
  default_timeout_seconds: Type.Union([Type.Integer(), Type.Null()], { description: "A run's timeout when it names none; null: the server's default." }),
  max_concurrency: Type.Union([Type.Integer(), Type.Null()], { description: "Active runs allowed at once; null: the server's default." }),
  read_only_default: Type.Boolean({ description: 'Every run is in read-only database mode.' }),
  requires_approval: Type.Boolean({ description: 'Runs wait in awaiting_approval until another member approves.' }),
  approval_pattern: Type.Union([Type.String(), Type.Null()], { description: 'Only runs whose arguments (joined as shell words) match this regular expression need approval; null: every run.' }),
  approver_role: Type.Union(APPROVER_ROLES.map((r) => Type.Literal(r))),
  approval_expiry_seconds: Type.Integer(),
  updated_at: Type.Union([Type.String(), Type.Null()]),
  updated_by: Type.Union([Type.String(), Type.Null()]),
});
export type CommandSettingsView = Static<typeof CommandSettingsView>;

export function commandSettingsView(s: CommandSettings, projectName: string): CommandSettingsView {
  return {
    project: projectName,
    command: s.command,
    metadata_only: s.metadataOnly,
    default_timeout_seconds: s.defaultTimeoutSeconds,
    max_concurrency: s.maxConcurrency,
    read_only_default: s.readOnlyDefault,
    requires_approval: s.requiresApproval,
    approval_pattern: s.approvalPattern,
    approver_role: s.approverRole,
    approval_expiry_seconds: s.approvalExpirySeconds,
    updated_at: s.updatedAt === null ? null : iso(s.updatedAt),
    updated_by: s.updatedBy,
  };
}

/** PUT: the fields to change (the others stay). */
export const UpdateCommandSettingsRequest = Type.Object(
  {
    metadata_only: Type.Optional(Type.Boolean()),
    default_timeout_seconds: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: MAX_DEFAULT_TIMEOUT_SECONDS }), Type.Null()])),
    max_concurrency: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY }), Type.Null()])),
    read_only_default: Type.Optional(Type.Boolean()),
    requires_approval: Type.Optional(Type.Boolean()),
    approval_pattern: Type.Optional(Nullable(Type.String({ maxLength: MAX_PATTERN_CHARS }))),
    approver_role: Type.Optional(Type.Union(APPROVER_ROLES.map((r) => Type.Literal(r)))),
    approval_expiry_seconds: Type.Optional(Type.Integer({ minimum: 60, maximum: MAX_APPROVAL_EXPIRY_SECONDS })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateCommandSettingsRequest = Static<typeof UpdateCommandSettingsRequest>;

export const DecideApprovalRequest = Type.Object(
  { comment: Type.Optional(Type.String({ maxLength: 2000, description: 'Why; shown in the audit log and on the execution.' })) },
  { additionalProperties: false },
);
export type DecideApprovalRequest = Static<typeof DecideApprovalRequest>;

export const ApprovalView = Type.Object({
  execution_id: Type.String(),
  project: Type.String(),
  command: Type.String(),
  args: Type.String(),
  status: Type.String({ description: 'pending, approved, denied, expired or closed (its execution ended otherwise).' }),
  execution_status: Type.String(),
  requested_by: Type.String(),
  requested_at: Type.String(),
  expires_at: Type.String(),
  approver_role: Type.String(),
  decided_by: Type.Union([Type.String(), Type.Null()]),
  decided_at: Type.Union([Type.String(), Type.Null()]),
  comment: Type.Union([Type.String(), Type.Null()]),
});
export type ApprovalView = Static<typeof ApprovalView>;

export function approvalView(a: ApprovalRequest, e: Execution, projectName: string): ApprovalView {
  return {
    execution_id: a.executionId,
    project: projectName,
    command: e.command,
    args: e.args,
    // A pending request whose execution ended otherwise (cancelled) is closed in effect already.
    status: a.status === 'pending' && e.status !== 'awaiting_approval' ? 'closed' : a.status,
    execution_status: e.status,
    requested_by: a.requestedBy,
    requested_at: iso(a.createdAt),
    expires_at: iso(a.expiresAt),
    approver_role: a.approverRole,
    decided_by: a.decidedBy,
    decided_at: a.decidedAt === null ? null : iso(a.decidedAt),
    comment: a.comment,
  };
}
