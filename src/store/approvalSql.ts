/** ApprovalStore over Kysely, for SQLite and PostgreSQL. */
import type { Kysely, Selectable } from 'kysely';
import type { Database } from './schema.js';
import type { ApprovalDecision, ApprovalRequest, ApprovalStatus, ApprovalStore } from './approvalStore.js';
import type { ApproverRole } from '../domain/commandSettings.js';

declare module './schema.js' {
  interface Database {
    approval_requests: ApprovalRequestsTable;
  }
}

export interface ApprovalRequestsTable {
  execution_id: string;
  project_id: string;
  command: string;
  binding_hash: string;
  requester_ids: string;
  requested_by: string;
  approver_role: string;
  start_timeout_seconds: number;
  status: string;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by_id: string | null;
  decided_by: string | null;
  comment: string | null;
}

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toRequest(r: Selectable<ApprovalRequestsTable>): ApprovalRequest {
  return {
    executionId: r.execution_id,
    projectId: r.project_id,
    command: r.command,
    bindingHash: r.binding_hash,
    requesterIds: JSON.parse(r.requester_ids) as string[],
    requestedBy: r.requested_by,
    approverRole: r.approver_role as ApproverRole,
    startTimeoutSeconds: Number(r.start_timeout_seconds),
    status: r.status as ApprovalStatus,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    decidedAt: numOrNull(r.decided_at),
    decidedById: r.decided_by_id,
    decidedBy: r.decided_by,
    comment: r.comment,
  };
}

export class ApprovalSql implements ApprovalStore {
  /** Nothing here differs between SQLite and PostgreSQL. */
  constructor(private readonly db: Kysely<Database>) {}

  async createMany(requests: readonly ApprovalRequest[]): Promise<void> {
    if (requests.length === 0) return;
    await this.db
      .insertInto('approval_requests')
      .values(
        requests.map((r) => ({
          execution_id: r.executionId,
          project_id: r.projectId,
          command: r.command,
          binding_hash: r.bindingHash,
          requester_ids: JSON.stringify(r.requesterIds),
          requested_by: r.requestedBy,
          approver_role: r.approverRole,
          start_timeout_seconds: r.startTimeoutSeconds,
          status: r.status,
          created_at: r.createdAt,
          expires_at: r.expiresAt,
          decided_at: r.decidedAt,
          decided_by_id: r.decidedById,
          decided_by: r.decidedBy,
          comment: r.comment,
        })),
      )
      .execute();
  }

  async deleteMany(executionIds: readonly string[]): Promise<void> {
    if (executionIds.length === 0) return;
    await this.db.deleteFrom('approval_requests').where('execution_id', 'in', [...executionIds]).execute();
  }

  async get(executionId: string): Promise<ApprovalRequest | undefined> {
    const r = await this.db.selectFrom('approval_requests').selectAll().where('execution_id', '=', executionId).executeTakeFirst();
    return r && toRequest(r);
  }

  async listPending(projectIds: readonly string[] | undefined, limit: number): Promise<ApprovalRequest[]> {
    if (projectIds !== undefined && projectIds.length === 0) return [];
    let q = this.db.selectFrom('approval_requests').selectAll().where('status', '=', 'pending');
    if (projectIds !== undefined) q = q.where('project_id', 'in', [...projectIds]);
    return (await q.orderBy('created_at').orderBy('execution_id').limit(limit).execute()).map(toRequest);
  }

  async listExpired(now: number, limit: number): Promise<ApprovalRequest[]> {
    const rows = await this.db.selectFrom('approval_requests').selectAll().where('status', '=', 'pending').where('expires_at', '<=', now).orderBy('expires_at').limit(limit).execute();
    return rows.map(toRequest);
  }

  async decide(executionId: string, d: ApprovalDecision): Promise<boolean> {
    const res = await this.db
      .updateTable('approval_requests')
      .set({ status: d.status, decided_at: d.decidedAt, decided_by_id: d.decidedById, decided_by: d.decidedBy, comment: d.comment })
      .where('execution_id', '=', executionId)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
