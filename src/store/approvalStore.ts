/**
 * The store's part for four-eyes approvals: one request per execution that had to wait for one.
 * Implemented once over SQLite and PostgreSQL in approvalSql.ts. Its states are in
 * domain/approval.ts; the row records who decided, when and why.
 */
import type { ApprovalRequest, ApprovalStatus } from '../domain/approval.js';

export type { ApprovalRequest, ApprovalStatus };

export interface ApprovalDecision {
  status: Exclude<ApprovalStatus, 'pending'>;
  decidedAt: number;
  decidedById: string | null;
  decidedBy: string | null;
  comment: string | null;
}

export interface ApprovalStore {
  createMany(requests: readonly ApprovalRequest[]): Promise<void>;
  /** Removes requests whose execution was not made after all (refused by the concurrency limit). */
  deleteMany(executionIds: readonly string[]): Promise<void>;
  get(executionId: string): Promise<ApprovalRequest | undefined>;
  /** Pending requests, oldest first, of these projects (undefined: all). */
  listPending(projectIds: readonly string[] | undefined, limit: number): Promise<ApprovalRequest[]>;
  /** Pending requests whose time ran out at `now` (at most `limit`). */
  listExpired(now: number, limit: number): Promise<ApprovalRequest[]>;
  /** Records the decision only if the request is still pending; false when someone decided first. */
  decide(executionId: string, decision: ApprovalDecision): Promise<boolean>;
}
