/**
 * The rules of the tamper-evident audit log, in one place and free of storage.
 *
 * Chain: every audit event has a position `seq` (1, 2, 3, ... with no gap), the hash of the
 * event before it (`prevHash`; the first event's is GENESIS_HASH) and its own `hash`:
 *
 *     hash = hex(SHA-256(canonicalJson({ ...content, seq, prev_hash })))
 *
 * where `content` is every stored column of the event exactly as stored (the details as their
 * stored JSON text). Changing an event changes its hash; removing or inserting one breaks the
 * link of the next; renumbering breaks the seqs or the links.
 *
 * Anchors: a hash chain alone cannot tell a whole chain rewritten by someone with write access
 * to the database from the real one. Two records signed with HMAC-SHA-256 under the server's
 * secret key (which an attacker with database access alone does not have) pin it down:
 * - a checkpoint, left when a prefix of old events is archived: the chain then starts after it;
 * - a verification record, left by every `admin audit verify`: the head it saw must still be
 *   there, with the same hash, on the next verification (events removed from the end, or the
 *   chain rewritten before it, are found).
 *
 * ChainWalk checks a chain streamed in seq order, holding only the last two hashes.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

/** The stored columns of one event, as stored (snake_case: they are what is hashed). */
export interface ChainContent {
  at: number;
  actor_type: string;
  actor_id: string | null;
  actor_label: string;
  address: string | null;
  action: string;
  project_id: string | null;
  execution_id: string | null;
  outcome: string;
  details_json: string;
}

/** One stored event with its place in the chain. `seq`/`hash` are null on a row written around the chain. */
export interface ChainedRow extends ChainContent {
  id: number;
  seq: number | null;
  hash: string | null;
  prev_hash: string | null;
}

/** Where a chain (or what is left of it after archiving) starts. */
export interface ChainAnchor {
  /** The seq of the last event before the chain (0: none). */
  seq: number;
  /** That event's hash (GENESIS_HASH when seq is 0). */
  hash: string;
}

export const GENESIS: ChainAnchor = { seq: 0, hash: GENESIS_HASH };

/**
 * JSON with object keys sorted at every level, no spaces; the same bytes for the same value
 * whatever order its keys were built in. Only JSON values: a non-finite number is refused.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`canonicalJson: ${value} is not a JSON number`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new Error(`canonicalJson: a ${typeof value} is not a JSON value`);
}

function contentOf(c: ChainContent): ChainContent {
  return {
    at: c.at,
    actor_type: c.actor_type,
    actor_id: c.actor_id,
    actor_label: c.actor_label,
    address: c.address,
    action: c.action,
    project_id: c.project_id,
    execution_id: c.execution_id,
    outcome: c.outcome,
    details_json: c.details_json,
  };
}

/** The hash of an event at `seq` following an event whose hash is `prevHash`. */
export function eventHash(content: ChainContent, seq: number, prevHash: string): string {
  return createHash('sha256')
    .update(canonicalJson({ ...contentOf(content), seq, prev_hash: prevHash }), 'utf8')
    .digest('hex');
}

/** The event that goes after `head`: its seq, prev_hash and hash. */
export function chainNext(content: ChainContent, head: ChainAnchor): { seq: number; prevHash: string; hash: string } {
  const seq = head.seq + 1;
  return { seq, prevHash: head.hash, hash: eventHash(content, seq, head.hash) };
}

// ---- problems ---------------------------------------------------------------------------------

export type ChainProblemKind = 'changed' | 'removed' | 'inserted' | 'checkpoint' | 'verification';

export interface ChainProblem {
  kind: ChainProblemKind;
  /** The chain position of the first event that is not what was written (null: not an event's). */
  seq: number | null;
  /** The row id of the event named, when it is there. */
  id: number | null;
  message: string;
}

// ---- signed anchors ---------------------------------------------------------------------------

/** A key of its own for audit signatures, derived from the server's secret key. */
export function auditSigningKey(serverKey: Buffer): Buffer {
  return createHmac('sha256', serverKey).update('djangocommand audit anchors v1').digest();
}

/** Left when events up to `seq` were archived and removed. */
export interface Checkpoint {
  /** The last archived event. */
  seq: number;
  hash: string;
  /** The first archived event of this archive (after the previous checkpoint). */
  firstSeq: number;
  events: number;
  at: number;
  /** SHA-256 of the archive file written. */
  archiveSha256: string;
}

/** Left by each verification: what was checked, the head seen and the result. */
export interface VerificationRecord {
  at: number;
  ok: boolean;
  events: number;
  headSeq: number;
  headHash: string;
  problem: string | null;
}

export function signCheckpoint(key: Buffer, c: Checkpoint): string {
  return sign(key, 'checkpoint', { seq: c.seq, hash: c.hash, first_seq: c.firstSeq, events: c.events, at: c.at, archive_sha256: c.archiveSha256 });
}

export function signVerification(key: Buffer, v: VerificationRecord): string {
  return sign(key, 'verification', { at: v.at, ok: v.ok, events: v.events, head_seq: v.headSeq, head_hash: v.headHash, problem: v.problem });
}

export function signatureMatches(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(actual, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

function sign(key: Buffer, kind: string, body: Record<string, unknown>): string {
  return createHmac('sha256', key).update(canonicalJson({ kind, ...body }), 'utf8').digest('hex');
}

// ---- the walk ---------------------------------------------------------------------------------

export interface WalkResult {
  ok: boolean;
  /** Events checked. */
  events: number;
  /** The last event that chained (the anchor when none did). */
  head: ChainAnchor;
  problem: ChainProblem | null;
}

/**
 * Checks events streamed in seq order from `anchor` on, stopping at the first problem.
 * `expectHead`: a head a signed verification saw earlier; it must be met with the same hash.
 */
export class ChainWalk {
  private expected: ChainAnchor;
  /** The hash before the last event that chained: tells an inserted event from a changed one. */
  private beforeLast: string | null = null;
  private count = 0;
  private found: ChainProblem | null = null;

  constructor(
    private readonly anchor: ChainAnchor,
    private readonly expectHead: ChainAnchor | null = null,
  ) {
    this.expected = anchor;
  }

  get problem(): ChainProblem | null {
    return this.found;
  }

  /** Takes the next row; false once a problem is found (the rest need not be read). */
  push(row: ChainedRow): boolean {
    if (this.found) return false;
    this.count++;
    const want = this.expected.seq + 1;
    const label = (seq: number | null, id: number | null) => `event #${seq ?? '?'}${id !== null ? ` (id ${id})` : ''}`;
    if (row.seq === null || row.hash === null || row.prev_hash === null) {
      return this.fail('inserted', row.seq, row.id, `${label(row.seq, row.id)} has no place in the chain: it was written around the audit log, not through it.`);
    }
    if (row.seq < want) {
      return this.fail('inserted', row.seq, row.id, `${label(row.seq, row.id)} comes at or before #${this.expected.seq}, which the chain already passed: it was inserted.`);
    }
    if (row.seq > want) {
      const range = row.seq - want === 1 ? `#${want}` : `#${want}–#${row.seq - 1}`;
      return this.fail('removed', want, null, `event ${range} ${row.seq - want === 1 ? 'was' : 'were'} removed (the chain goes from #${this.expected.seq} to #${row.seq}).`);
    }
    if (eventHash(row, row.seq, row.prev_hash) !== row.hash) {
      // Moved one place on (written as #seq-1): an event was slipped in before it.
      if (row.seq > 1 && eventHash(row, row.seq - 1, row.prev_hash) === row.hash) {
        const at = row.prev_hash === this.beforeLast ? this.expected.seq : row.seq - 1;
        return this.fail('inserted', at, null, `event #${at} was inserted: the events after it were renumbered to make room (${label(row.seq, row.id)} was written as #${row.seq - 1}).`);
      }
      return this.fail('changed', row.seq, row.id, `${label(row.seq, row.id)} was changed: its content does not match its hash.`);
    }
    if (row.prev_hash !== this.expected.hash) {
      if (this.beforeLast !== null && row.prev_hash === this.beforeLast) {
        return this.fail('inserted', this.expected.seq, null, `event #${this.expected.seq} was inserted: #${row.seq} chains to the event before it.`);
      }
      if (this.expected.seq === this.anchor.seq) {
        return this.fail('changed', row.seq, row.id, `${label(row.seq, row.id)} does not chain to ${this.anchor.seq === 0 ? 'the start of the log' : `the checkpoint at #${this.anchor.seq}`}: it, or the events before it, were changed.`);
      }
      return this.fail('changed', this.expected.seq, null, `event #${this.expected.seq} was changed (its hash was rewritten): #${row.seq} chained to another hash.`);
    }
    if (this.expectHead && row.seq === this.expectHead.seq && row.hash !== this.expectHead.hash) {
      return this.fail('changed', row.seq, row.id, `${label(row.seq, row.id)} is not the event an earlier verification saw there: the log was rewritten up to it.`);
    }
    this.beforeLast = this.expected.hash;
    this.expected = { seq: row.seq, hash: row.hash };
    return true;
  }

  /** The result once every row was pushed (or a problem stopped the walk). */
  finish(): WalkResult {
    if (!this.found && this.expectHead && this.expectHead.seq > this.expected.seq) {
      this.fail('removed', this.expected.seq + 1, null, `events #${this.expected.seq + 1}–#${this.expectHead.seq} were removed from the end (an earlier verification saw the log up to #${this.expectHead.seq}).`);
    }
    return { ok: this.found === null, events: this.count, head: this.expected, problem: this.found };
  }

  private fail(kind: ChainProblemKind, seq: number | null, id: number | null, message: string): false {
    this.found = { kind, seq, id, message };
    return false;
  }
}
