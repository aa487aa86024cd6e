/** Opens the configured database (SQLite file in the data folder, or PostgreSQL) and migrates it. */
import path from 'node:path';
import { CAPABILITIES, openPostgres, openSqlite } from './dialects.js';
import { KyselyStore } from './kyselyStore.js';
import type { Store } from './store.js';
import { UserError } from '../shared/errors.js';

export interface DatabaseLocation {
  dataDir: string;
  databaseUrl?: string;
}

export async function openStore(loc: DatabaseLocation): Promise<Store> {
  let store: KyselyStore;
  const url = loc.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    store = new KyselyStore(openPostgres(url), CAPABILITIES.postgres);
  } else if (url && url.startsWith('sqlite:')) {
    store = new KyselyStore(openSqlite(url.slice('sqlite:'.length).replace(/^\/\//, '')), CAPABILITIES.sqlite);
  } else if (url) {
    throw new UserError('DC_CONFIG', `DATABASE_URL must start with postgres:// or sqlite: (got a URL with scheme "${url.split(':')[0]}").`);
  } else {
    store = new KyselyStore(openSqlite(path.join(loc.dataDir, 'djangocommand.sqlite3')), CAPABILITIES.sqlite);
  }
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw new UserError('DC_CONFIG', `Cannot open the database: ${describeDbError(err)}`, 500);
  }
  return store;
}

function describeDbError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const message = cause instanceof Error ? cause.message : String(cause);
  // Connection strings can carry passwords; never echo them.
  return message.replace(/postgres(ql)?:\/\/[^\s]+/g, 'postgres://…');
}
