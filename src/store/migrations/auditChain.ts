/**
 * Migration 0012: the audit log becomes a hash chain (rules in domain/auditChain.ts). Events
 * already stored are chained in the order they were written (by id); then the tables refuse
 * UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit rows, except the DELETE of the archive
 * path, made while a row exists in audit_prune_guard inside its own transaction. That is belt
 * and braces: someone with database access can drop a trigger; `admin audit verify` is the check.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Capabilities } from '../dialects.js';
import { chainNext, GENESIS, type ChainAnchor } from '../../domain/auditChain.js';

const GUARDED_TABLES = ['audit_events', 'audit_checkpoints', 'audit_verifications'] as const;

export function auditChainMigrations(caps: Capabilities): Record<string, Migration> {
  return {
    '0012_audit_chain': {
      async up(db: Kysely<any>) {
        const ms = 'bigint';
        await db.schema.alterTable('audit_events').addColumn('seq', 'bigint').execute();
        await db.schema.alterTable('audit_events').addColumn('hash', 'text').execute();
        await db.schema.alterTable('audit_events').addColumn('prev_hash', 'text').execute();
        await db.schema
          .createTable('audit_chain_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', ms, (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('audit_checkpoints')
          .addColumn('seq', ms, (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('first_seq', ms, (c) => c.notNull())
          .addColumn('events', ms, (c) => c.notNull())
          .addColumn('at', ms, (c) => c.notNull())
          .addColumn('archive_sha256', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('audit_verifications')
          .addColumn('id', caps.serialType, (c) => (caps.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('at', ms, (c) => c.notNull())
          .addColumn('ok', 'integer', (c) => c.notNull())
          .addColumn('events', ms, (c) => c.notNull())
          .addColumn('head_seq', ms, (c) => c.notNull())
          .addColumn('head_hash', 'text', (c) => c.notNull())
          .addColumn('problem', 'text')
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createTable('audit_prune_guard').addColumn('id', 'integer', (c) => c.primaryKey()).execute();

        // Chain what is there, oldest first, in batches (an old log can be large).
        let head: ChainAnchor = GENESIS;
        for (let after = 0; ; ) {
          const rows = await db.selectFrom('audit_events').selectAll().where('id', '>', after).orderBy('id').limit(1000).execute();
          if (rows.length === 0) break;
          const chained: Array<{ id: number; seq: number; hash: string; prevHash: string }> = [];
          for (const r of rows) {
            const next = chainNext(
              {
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
              },
              head,
            );
            chained.push({ id: Number(r.id), ...next });
            head = { seq: next.seq, hash: next.hash };
            after = Number(r.id);
          }
          if (caps.name === 'postgres') {
            // One statement per batch: a large log upgrades in seconds, not one round trip per event.
            await sql`UPDATE audit_events AS a SET seq = v.seq, hash = v.hash, prev_hash = v.prev_hash
                      FROM (SELECT unnest(${chained.map((c) => c.id)}::bigint[]) AS id, unnest(${chained.map((c) => c.seq)}::bigint[]) AS seq,
                                   unnest(${chained.map((c) => c.hash)}::text[]) AS hash, unnest(${chained.map((c) => c.prevHash)}::text[]) AS prev_hash) AS v
                      WHERE a.id = v.id`.execute(db);
          } else {
            for (const c of chained) await db.updateTable('audit_events').set({ seq: c.seq, hash: c.hash, prev_hash: c.prevHash }).where('id', '=', c.id).execute();
          }
        }
        await db.insertInto('audit_chain_head').values({ id: 1, seq: head.seq, hash: head.hash }).execute();
        await db.schema.createIndex('audit_events_seq').on('audit_events').column('seq').unique().execute();

        if (caps.name === 'postgres') {
          await sql`
            CREATE FUNCTION dc_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events' AND EXISTS (SELECT 1 FROM audit_prune_guard) THEN
                RETURN OLD;
              END IF;
              RAISE EXCEPTION 'djangocommand: % is append-only: audit records are never changed or deleted (old events are archived with: djangocommand admin audit archive)', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
            END $$`.execute(db);
          for (const t of GUARDED_TABLES) {
            await sql`CREATE TRIGGER ${sql.raw(`${t}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(t)} FOR EACH ROW EXECUTE FUNCTION dc_audit_append_only()`.execute(db);
            await sql`CREATE TRIGGER ${sql.raw(`${t}_no_truncate`)} BEFORE TRUNCATE ON ${sql.table(t)} FOR EACH STATEMENT EXECUTE FUNCTION dc_audit_append_only()`.execute(db);
          }
        } else {
          for (const t of GUARDED_TABLES) {
            const message = `djangocommand: ${t} is append-only: audit records are never changed or deleted`;
            await sql`CREATE TRIGGER ${sql.raw(`${t}_no_update`)} BEFORE UPDATE ON ${sql.table(t)} BEGIN SELECT RAISE(ABORT, ${sql.lit(message)}); END`.execute(db);
            const guard = t === 'audit_events' ? sql`WHEN NOT EXISTS (SELECT 1 FROM audit_prune_guard)` : sql``;
            await sql`CREATE TRIGGER ${sql.raw(`${t}_no_delete`)} BEFORE DELETE ON ${sql.table(t)} ${guard} BEGIN SELECT RAISE(ABORT, ${sql.lit(message)}); END`.execute(db);
          }
        }
      },
    },
  };
}
