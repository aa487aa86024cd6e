/**
 * The store's part for operating the server: cheap reads for readiness probes and metrics
 * scrapes. Implemented over SQLite and PostgreSQL in operationsSql.ts.
 */
export interface OperationsStore {
  /** Names of the migrations this database has applied (also proves it answers). */
  appliedMigrations(): Promise<string[]>;
  /** Protocol v1 runners heard from since `since`, per project name (v1 runners hold no connection). */
  recentV1Runners(since: number): Promise<Array<{ project: string; count: number }>>;
  /** Executions not finished yet, per status (one grouped read on an indexed column). */
  activeExecutions(): Promise<Array<{ status: string; count: number }>>;
}
