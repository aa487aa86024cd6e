/** OperationsStore over Kysely, for SQLite and PostgreSQL. */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { OperationsStore } from './operationsStore.js';
import { ACTIVE_STATUSES } from '../domain/execution.js';

export class OperationsSql implements OperationsStore {
  constructor(private readonly db: Kysely<Database>) {}

  async appliedMigrations(): Promise<string[]> {
    const { rows } = await sql<{ name: string }>`SELECT name FROM dc_migrations`.execute(this.db);
    return rows.map((r) => r.name);
  }

  async recentV1Runners(since: number): Promise<Array<{ project: string; count: number }>> {
    const rows = await this.db
      .selectFrom('runners')
      .innerJoin('projects', 'projects.id', 'runners.project_id')
      .select(['projects.name as project', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('runners.protocol', '=', 'v1')
      .where('runners.last_seen_at', '>=', since)
      .where((eb) => eb.or([eb('runners.stopped_at', 'is', null), eb('runners.stopped_at', '<', eb.ref('runners.last_seen_at'))]))
      .groupBy('projects.name')
      .execute();
    return rows.map((r) => ({ project: r.project, count: Number(r.n) }));
  }

  async activeExecutions(): Promise<Array<{ status: string; count: number }>> {
    const rows = await this.db
      .selectFrom('executions')
      .select(['status', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('status', 'in', [...ACTIVE_STATUSES])
      .groupBy('status')
      .execute();
    return rows.map((r) => ({ status: r.status, count: Number(r.n) }));
  }
}
