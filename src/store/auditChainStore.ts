/**
 * The store's part for the audit chain (rules in domain/auditChain.ts): appending chained
 * events one at a time also with several server processes, reading the chain in order for
 * verification, archiving a prefix behind a signed checkpoint, and the verification records.
 * Implemented once over SQLite and PostgreSQL in auditSql.ts.
 */
import type { ChainAnchor, ChainedRow, Checkpoint, VerificationRecord } from '../domain/auditChain.js';

export interface StoredCheckpoint extends Checkpoint {
  signature: string;
}

export interface StoredVerification extends VerificationRecord {
  id: number;
  signature: string;
}

export interface AuditChainStore {
  /** Up to `limit` events after chain position `afterSeq`, in chain order (seq). */
  readChain(afterSeq: number, limit: number): Promise<ChainedRow[]>;
  /** Rows written around the chain (no seq): the first by id, if any. */
  firstUnchained(): Promise<ChainedRow | undefined>;
  /** Events whose seq is at or before `seq` (after an archive there must be none). */
  countThrough(seq: number): Promise<number>;
  /** The newest checkpoint (highest seq), if the log was ever archived. */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** The newest verification record, if any. */
  latestVerification(): Promise<StoredVerification | undefined>;
  /** The newest verification that found the chain whole, if any. */
  latestGoodVerification(): Promise<StoredVerification | undefined>;
  recordVerification(v: StoredVerification | Omit<StoredVerification, 'id'>): Promise<void>;
  /** The highest seq of the longest prefix of events all written before `before` (0: none). */
  prefixBefore(before: number, afterSeq: number): Promise<number>;
  /**
   * Removes the events from the start through `throughSeq`, which must be exactly `expected`
   * events ending with `lastHash` (else nothing changes and it throws), and records the
   * checkpoint, in one transaction that holds the chain head (appends wait).
   */
  removePrefix(throughSeq: number, expected: number, lastHash: string, checkpoint: StoredCheckpoint): Promise<void>;
  /** The current chain head: where the next event goes. */
  head(): Promise<ChainAnchor>;
}
