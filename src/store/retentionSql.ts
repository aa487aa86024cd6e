/** RetentionStore over Kysely, for SQLite and PostgreSQL (no dialect differences needed). */
import { sql, type Kysely } from 'kysely';
import type { Capabilities } from './dialects.js';
import type { Database } from './schema.js';
import type { CandidateQuery, ProjectRetention, PurgeCandidate, Purged, RetentionStore } from './retentionStore.js';
import type { AuditSql } from './auditSql.js';
import type { NewAuditEvent } from '../domain/model.js';
import { TERMINAL_STATUSES } from '../domain/execution.js';

declare module './schema.js' {
  interface Database {
    retention_lease: RetentionLeaseTable;
  }
  interface ProjectsTable {
    retention_days: number | null;
    retention_max_output_bytes: number | null;
  }
}

export interface RetentionLeaseTable {
  id: number;
  holder: string;
  until: number;
}

export class RetentionSql implements RetentionStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: Capabilities,
    /** A purge's audit event commits with its deletions. */
    private readonly auditChain: AuditSql,
  ) {}

  async getProjectRetention(projectId: string): Promise<ProjectRetention> {
    const r = await this.db.selectFrom('projects').select(['retention_days', 'retention_max_output_bytes']).where('id', '=', projectId).executeTakeFirst();
    return { projectId, days: r?.retention_days ?? null, maxOutputBytes: r?.retention_max_output_bytes === null || r === undefined ? null : Number(r.retention_max_output_bytes) };
  }

  async setProjectRetention(r: ProjectRetention): Promise<void> {
    await this.db.updateTable('projects').set({ retention_days: r.days, retention_max_output_bytes: r.maxOutputBytes }).where('id', '=', r.projectId).execute();
  }

  async listProjectRetention(opts: { withOwnLimitsOnly?: boolean } = {}): Promise<ProjectRetention[]> {
    let q = this.db.selectFrom('projects').select(['id', 'retention_days', 'retention_max_output_bytes']);
    if (opts.withOwnLimitsOnly) q = q.where((eb) => eb.or([eb('retention_days', '>', 0), eb('retention_max_output_bytes', '>', 0)]));
    const rows = await q.orderBy('id').execute();
    return rows.map((r) => ({ projectId: r.id, days: r.retention_days, maxOutputBytes: r.retention_max_output_bytes === null ? null : Number(r.retention_max_output_bytes) }));
  }

  async listPurgeCandidates(q: CandidateQuery): Promise<PurgeCandidate[]> {
    // A schedule's newest runs stay (its "recent runs" view): an execution of a schedule goes only
    // when `keepPerSchedule` newer ones of that schedule exist (one indexed lookup each).
    const rows = await this.db
      .selectFrom('executions as e')
      .select(['e.id', 'e.output_bytes', 'e.output_last_seq', 'e.output_chunks'])
      .where('e.project_id', '=', q.projectId)
      .where('e.status', 'in', [...TERMINAL_STATUSES])
      .where('e.finished_at', 'is not', null)
      .where('e.finished_at', '<', q.finishedBefore)
      .where((eb) =>
        eb.or([
          eb('e.schedule_id', 'is', null),
          eb(
            'e.created_at',
            '<',
            sql<number>`(SELECT n.created_at FROM executions n WHERE n.schedule_id = e.schedule_id ORDER BY n.created_at DESC LIMIT 1 OFFSET ${q.keepPerSchedule - 1})`,
          ),
        ]),
      )
      .orderBy('e.finished_at')
      .orderBy('e.id')
      .limit(q.limit)
      .execute();
    return rows.map((r) => ({ id: r.id, outputBytes: Number(r.output_bytes), outputLastSeq: r.output_last_seq, outputChunks: r.output_chunks }));
  }

  async projectOutputBytes(projectId: string): Promise<number> {
    const r = await this.db.selectFrom('executions').select((eb) => eb.fn.sum<number | string | null>('output_bytes').as('n')).where('project_id', '=', projectId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async trimOutput(executionId: string, upToSeq: number): Promise<number> {
    const res = await this.db.deleteFrom('output_chunks').where('execution_id', '=', executionId).where('seq', '<=', upToSeq).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async deleteExecutions(ids: readonly string[], record: (purged: Purged) => NewAuditEvent): Promise<Purged> {
    const none: Purged = { executions: 0, outputBytes: 0, finishedFrom: null, finishedTo: null };
    if (ids.length === 0) return none;
    return this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('executions').select(['id', 'output_bytes', 'finished_at']).where('id', 'in', [...ids]).where('status', 'in', [...TERMINAL_STATUSES]);
      if (this.caps.rowLocks) q = q.forUpdate();
      const rows = await q.execute();
      if (rows.length === 0) return none;
      const gone = rows.map((r) => r.id);
      await trx.deleteFrom('output_chunks').where('execution_id', 'in', gone).execute();
      await trx.deleteFrom('v1_chunks').where('execution_id', 'in', gone).execute();
      await trx.deleteFrom('executions').where('id', 'in', gone).execute();
      const finished = rows.map((r) => Number(r.finished_at));
      const purged: Purged = {
        executions: gone.length,
        outputBytes: rows.reduce((n, r) => n + Number(r.output_bytes), 0),
        finishedFrom: Math.min(...finished),
        finishedTo: Math.max(...finished),
      };
      await this.auditChain.appendMany([record(purged)], trx);
      return purged;
    });
  }

  async claimLease(holder: string, now: number, ms: number): Promise<boolean> {
    const res = await this.db
      .updateTable('retention_lease')
      .set({ holder, until: now + ms })
      .where('id', '=', 1)
      .where((eb) => eb.or([eb('until', '<', now), eb('holder', '=', holder)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async releaseLease(holder: string): Promise<void> {
    await this.db.updateTable('retention_lease').set({ until: 0 }).where('id', '=', 1).where('holder', '=', holder).execute();
  }
}
