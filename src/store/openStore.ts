/** Opens the configured database (SQLite file in the data folder, or PostgreSQL) and migrates it. */
import path from 'node:path';
import type { Kysely } from 'kysely';
import { CAPABILITIES, openPostgres, openSqlite, type Capabilities } from './dialects.js';
import type { Database } from './schema.js';
import { KyselyStore } from './kyselyStore.js';
import type { Store } from './store.js';
import { UserError } from '../shared/errors.js';
import { queryTiming, type QueryTimer } from './queryTiming.js';
import { RowCache, RowChanges } from './rowCache.js';

export interface DatabaseLocation {
  dataDir: string;
  databaseUrl?: string;
  /** Told the duration of every query (the server's metrics). */
  onQuery?: QueryTimer;
  /** PostgreSQL: prepare statements used often (pgPrepared.ts); the default. */
  preparedStatements?: boolean;
}

/**
 * The database's query builder and what its engine can do, not migrated yet. `rowChanges` (SQLite
 * only) lets the store cache rows that rarely change (rowCache.ts).
 */
export function openDatabase(loc: DatabaseLocation): { db: Kysely<Database>; caps: Capabilities; rowChanges?: RowChanges } {
  const url = loc.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) return { db: openPostgres(url, loc.preparedStatements ?? true), caps: CAPABILITIES.postgres };
  if (url && !url.startsWith('sqlite:')) throw new UserError('DC_CONFIG', `DATABASE_URL must start with postgres:// or sqlite: (got a URL with scheme "${url.split(':')[0]}").`);
  const file = url ? url.slice('sqlite:'.length).replace(/^\/\//, '') : path.join(loc.dataDir, 'djangocommand.sqlite3');
  const rowChanges = new RowChanges();
  return { db: openSqlite(file, rowChanges), caps: CAPABILITIES.sqlite, rowChanges };
}

export async function openStore(loc: DatabaseLocation): Promise<Store> {
  const { db, caps, rowChanges } = openDatabase(loc);
  const store = new KyselyStore(loc.onQuery ? db.withPlugin(queryTiming(loc.onQuery)) : db, caps, loc.onQuery, rowChanges && new RowCache(rowChanges));
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw new UserError('DC_CONFIG', `Cannot open the database: ${describeDbError(err)}`);
  }
  return store;
}

function describeDbError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const message = cause instanceof Error ? cause.message : String(cause);
  // Connection strings can carry passwords; never echo them.
  return message.replace(/postgres(ql)?:\/\/[^\s]+/g, 'postgres://…');
}
