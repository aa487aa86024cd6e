/**
 * AuditChainStore over Kysely, for SQLite and PostgreSQL alike, and the chained append.
 *
 * Appends are serialised on one chain-head row: the transaction's first statement updates it
 * (a no-op write that returns the head). On PostgreSQL that takes the row lock, so another
 * server process's append waits, then reads the head it committed (READ COMMITTED re-reads the
 * locked row); on SQLite a write as first statement takes the database's write lock at once
 * (reading first and writing later could fail with SQLITE_BUSY between two processes).
 * One transaction per batch of events: lock the head, insert the events, move the head.
 */
import type { Generated, Kysely, Selectable, Transaction } from 'kysely';
import type { Capabilities } from './dialects.js';
import type { CompiledQueries } from './compiledQueries.js';
import { GroupCommit } from './groupCommit.js';
import type { Database } from './schema.js';
import type { AuditChainStore, StoredCheckpoint, StoredVerification } from './auditChainStore.js';
import { chainNext, GENESIS, type ChainAnchor, type ChainContent, type ChainedRow } from '../domain/auditChain.js';
import type { AuditEvent, NewAuditEvent } from '../domain/model.js';

declare module './schema.js' {
  interface AuditEventsTable {
    /** Chain position (1, 2, ...); null only on a row written around the chain. */
    seq: number | null;
    hash: string | null;
    prev_hash: string | null;
  }
  interface Database {
    audit_chain_head: AuditChainHeadTable;
    audit_checkpoints: AuditCheckpointsTable;
    audit_verifications: AuditVerificationsTable;
    audit_prune_guard: AuditPruneGuardTable;
  }
}

export interface AuditChainHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: number;
  hash: string;
  first_seq: number;
  events: number;
  at: number;
  archive_sha256: string;
  signature: string;
}

export interface AuditVerificationsTable {
  id: Generated<number>;
  at: number;
  ok: number;
  events: number;
  head_seq: number;
  head_hash: string;
  problem: string | null;
  signature: string;
}

/** A row exists only inside the archive transaction: the triggers let its DELETE through. */
export interface AuditPruneGuardTable {
  id: number;
}

const HEAD_ID = 1;
/** Events of several callers appended in one transaction, at most (one caller's are never split). */
const MAX_EVENTS_A_TRANSACTION = 1000;

/** The columns of an appended event. */
const APPENDED = ['at', 'actor_type', 'actor_id', 'actor_label', 'address', 'action', 'project_id', 'execution_id', 'outcome', 'details_json', 'seq', 'prev_hash', 'hash'] as const;

export class AuditSql implements AuditChainStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: Capabilities,
    private readonly compiled: CompiledQueries,
  ) {}

  /** The columns as they will be stored (what is hashed must be what a later read returns). */
  private stored(e: NewAuditEvent): ChainContent {
    const s = (v: string): string => (this.caps.textHoldsNul ? v : v.replaceAll('\0', '\uFFFD'));
    const n = (v: string | null): string | null => (v === null ? null : s(v));
    return {
      at: e.at,
      actor_type: s(e.actorType),
      actor_id: n(e.actorId),
      actor_label: s(e.actorLabel),
      address: n(e.address),
      action: s(e.action),
      project_id: n(e.projectId),
      execution_id: n(e.executionId),
      outcome: s(e.outcome),
      details_json: s(JSON.stringify(e.details)),
    };
  }

  /** Appends of several callers, one transaction at a time (groupCommit.ts). */
  private readonly queued = new GroupCommit<{ event: NewAuditEvent; content: ChainContent }, AuditEvent>(
    (items) => this.appendStored(items.map((i) => i.event), items.map((i) => i.content)),
    MAX_EVENTS_A_TRANSACTION,
  );

  /** Appends one event, in a transaction shared with the other appends waiting (see appendQueued). */
  async append(event: NewAuditEvent): Promise<AuditEvent> {
    return (await this.appendQueued([event]))[0];
  }

  /**
   * Appends the events together (all or none), in order, in a transaction shared with other
   * callers' events. One append transaction at a time per store: what arrives meanwhile waits
   * and goes in the next, whole. The chain head is one row, so appends are serialised anyway
   * (on PostgreSQL its lock is held until the commit, across replicas); a transaction per
   * caller only queued them on that lock, each holding a connection, while batches stayed
   * small (three statements an event were 15 % of the SQL time in bench/executionThroughput).
   * Each caller's promise settles with its batch; events that cannot be stored (details that
   * are not JSON) fail their caller alone, before they are queued.
   */
  appendQueued(events: readonly NewAuditEvent[]): Promise<AuditEvent[]> {
    let items: Array<{ event: NewAuditEvent; content: ChainContent }>;
    try {
      items = events.map((event) => ({ event, content: this.stored(event) }));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.queued.submit(items);
  }

  /**
   * Appends the events in order, in one transaction (one head lock, one INSERT): `inside`, the
   * caller's, when the events must commit with what they record, else one of their own.
   */
  async appendMany(events: readonly NewAuditEvent[], inside?: Transaction<Database>): Promise<AuditEvent[]> {
    return this.appendStored(events, events.map((e) => this.stored(e)), inside);
  }

  /** appendMany, with each event's columns as stored (`contents[i]` of `events[i]`). */
  private async appendStored(events: readonly NewAuditEvent[], contents: readonly ChainContent[], inside?: Transaction<Database>): Promise<AuditEvent[]> {
    if (events.length === 0) return [];
    const body = async (trx: Transaction<Database>) => {
      let head = await this.lockHead(trx);
      const values = contents.map((content) => {
        const next = chainNext(content, head);
        head = { seq: next.seq, hash: next.hash };
        return { ...content, seq: next.seq, prev_hash: next.prevHash, hash: next.hash };
      });
      const build = (rows: typeof values) => this.db.insertInto('audit_events').values(rows).returning(['id', 'seq']);
      const rows = await this.compiled.insertRows('auditInsert', APPENDED, values, build, trx);
      await this.compiled.run('auditMoveHead', [head.seq, head.hash], (seq, hash) => this.db.updateTable('audit_chain_head').set({ seq, hash }).where('id', '=', HEAD_ID), trx);
      const idBySeq = new Map(rows.map((r) => [Number(r.seq), Number(r.id)]));
      return events.map((e, i) => ({ ...e, id: idBySeq.get(values[i].seq)! }));
    };
    return inside ? body(inside) : this.db.transaction().execute(body);
  }

  /** The transaction's first statement: a no-op write that takes the chain head's lock and returns it. */
  private async lockHead(trx: Transaction<Database>): Promise<ChainAnchor> {
    const build = (id: never) => this.db.updateTable('audit_chain_head').set((eb) => ({ seq: eb.ref('seq') })).where('id', '=', id).returning(['seq', 'hash']);
    const [r] = (await this.compiled.run('auditLockHead', [HEAD_ID], build, trx)).rows;
    if (!r) throw new Error('the audit chain head row is missing (migration 0012_audit_chain did not run?)');
    return { seq: Number(r.seq), hash: r.hash };
  }

  async head(): Promise<ChainAnchor> {
    const r = await this.db.selectFrom('audit_chain_head').select(['seq', 'hash']).where('id', '=', HEAD_ID).executeTakeFirst();
    return r ? { seq: Number(r.seq), hash: r.hash } : GENESIS;
  }

  async readChain(afterSeq: number, limit: number): Promise<ChainedRow[]> {
    const rows = await this.db.selectFrom('audit_events').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
    return rows.map(toChainedRow);
  }

  async firstUnchained(): Promise<ChainedRow | undefined> {
    const r = await this.db.selectFrom('audit_events').selectAll().where('seq', 'is', null).orderBy('id').limit(1).executeTakeFirst();
    return r && toChainedRow(r);
  }

  async countThrough(seq: number): Promise<number> {
    const r = await this.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).where('seq', '<=', seq).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const r = await this.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r && { seq: Number(r.seq), hash: r.hash, firstSeq: Number(r.first_seq), events: Number(r.events), at: Number(r.at), archiveSha256: r.archive_sha256, signature: r.signature };
  }

  async latestVerification(): Promise<StoredVerification | undefined> {
    const r = await this.db.selectFrom('audit_verifications').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r && toVerification(r);
  }

  async latestGoodVerification(): Promise<StoredVerification | undefined> {
    const r = await this.db.selectFrom('audit_verifications').selectAll().where('ok', '=', 1).orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r && toVerification(r);
  }

  async recordVerification(v: Omit<StoredVerification, 'id'>): Promise<void> {
    await this.db
      .insertInto('audit_verifications')
      .values({ at: v.at, ok: v.ok ? 1 : 0, events: v.events, head_seq: v.headSeq, head_hash: v.headHash, problem: v.problem, signature: v.signature })
      .execute();
  }

  async prefixBefore(before: number, afterSeq: number): Promise<number> {
    // The first event at or after the date ends the prefix; without one, the whole chain is it.
    const firstLate = await this.db.selectFrom('audit_events').select('seq').where('seq', '>', afterSeq).where('at', '>=', before).orderBy('seq').limit(1).executeTakeFirst();
    if (firstLate && firstLate.seq !== null) return Number(firstLate.seq) - 1;
    const last = await this.db.selectFrom('audit_events').select('seq').where('seq', '>', afterSeq).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return last && last.seq !== null ? Number(last.seq) : afterSeq;
  }

  async removePrefix(throughSeq: number, expected: number, lastHash: string, cp: StoredCheckpoint): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.lockHead(trx);
      const last = await trx.selectFrom('audit_events').select('hash').where('seq', '=', throughSeq).executeTakeFirst();
      if (!last || last.hash !== lastHash) throw new Error(`audit event #${throughSeq} changed while it was being archived`);
      await trx.insertInto('audit_prune_guard').values({ id: 1 }).execute();
      const res = await trx.deleteFrom('audit_events').where('seq', '<=', throughSeq).executeTakeFirst();
      await trx.deleteFrom('audit_prune_guard').execute();
      if (Number(res.numDeletedRows) !== expected) {
        throw new Error(`archiving would remove ${Number(res.numDeletedRows)} audit events, not the ${expected} exported; nothing was removed`);
      }
      await trx
        .insertInto('audit_checkpoints')
        .values({ seq: cp.seq, hash: cp.hash, first_seq: cp.firstSeq, events: cp.events, at: cp.at, archive_sha256: cp.archiveSha256, signature: cp.signature })
        .execute();
    });
  }
}

export function toChainedRow(r: Selectable<Database['audit_events']>): ChainedRow {
  return {
    id: Number(r.id),
    seq: r.seq === null ? null : Number(r.seq),
    hash: r.hash,
    prev_hash: r.prev_hash,
    at: Number(r.at),
    actor_type: r.actor_type,
    actor_id: r.actor_id,
    actor_label: r.actor_label,
    address: r.address,
    action: r.action,
    project_id: r.project_id,
    execution_id: r.execution_id,
    outcome: r.outcome,
    details_json: r.details_json,
  };
}

function toVerification(r: Selectable<AuditVerificationsTable>): StoredVerification {
  return {
    id: Number(r.id),
    at: Number(r.at),
    ok: Number(r.ok) === 1,
    events: Number(r.events),
    headSeq: Number(r.head_seq),
    headHash: r.head_hash,
    problem: r.problem,
    signature: r.signature,
  };
}
