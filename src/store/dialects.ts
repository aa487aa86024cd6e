/**
 * Everything that differs between SQLite and PostgreSQL, as capability flags, and the two
 * constructors. Nothing else in the store knows which database it is talking to.
 * better-sqlite3 and pg are loaded lazily so a runner host never needs the native SQLite build.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Kysely, OperationNodeTransformer, PostgresDialect, type KyselyPlugin, type PrimitiveValueListNode, type ValueNode } from 'kysely';
import type { Database } from './schema.js';
import { UserError } from '../shared/errors.js';
import { GroupCommitSqliteDialect } from './sqliteDriver.js';
import { startCheckpointer } from './sqliteCheckpointer.js';
import type { RowChanges } from './rowCache.js';
import { prepareRepeatedStatements } from './pgPrepared.js';

export interface Capabilities {
  name: 'sqlite' | 'postgres';
  /** SELECT ... FOR UPDATE exists and is needed to serialise writers (SQLite serialises anyway). */
  rowLocks: boolean;
  /** LISTEN/NOTIFY can carry wake-ups between server replicas. */
  listenNotify: boolean;
  /** Column type of an auto-incrementing integer primary key. */
  serialType: 'integer' | 'bigserial';
  /** Output text is stored with this column compression (PostgreSQL's default pglz is 5× slower). */
  outputCompression: 'lz4' | null;
  /** Text columns can hold U+0000. PostgreSQL's cannot: a NUL is stored as U+FFFD (see NulFree). */
  textHoldsNul: boolean;
}

export const CAPABILITIES: Record<'sqlite' | 'postgres', Capabilities> = {
  sqlite: { name: 'sqlite', rowLocks: false, listenNotify: false, serialType: 'integer', outputCompression: null, textHoldsNul: true },
  postgres: { name: 'postgres', rowLocks: true, listenNotify: true, serialType: 'bigserial', outputCompression: 'lz4', textHoldsNul: false },
};

/**
 * For a database whose text cannot hold U+0000: every string a query sends has its NULs replaced
 * by U+FFFD, so a NUL from a client (in a name looked up, or in a command's output) is "not found"
 * or a visible replacement character, never a database error.
 */
class NulFree extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    return typeof node.value === 'string' && node.value.includes('\0') ? { ...node, value: node.value.replaceAll('\0', '\uFFFD') } : node;
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    return node.values.some((v) => typeof v === 'string' && v.includes('\0'))
      ? { ...node, values: node.values.map((v) => (typeof v === 'string' ? v.replaceAll('\0', '\uFFFD') : v)) }
      : node;
  }
}

const nulFree: KyselyPlugin = {
  transformQuery: (args) => new NulFree().transformNode(args.node),
  transformResult: async (args) => args.result,
};

const require = createRequire(import.meta.url);

/** `changes`: told of every write that may change rows the store caches, and of other connections' commits (rowCache.ts). */
export function openSqlite(file: string, changes?: RowChanges): Kysely<Database> {
  const missing = (err: unknown) =>
    new UserError(
      'DC_CONFIG',
      'The SQLite driver (better-sqlite3) is not installed or not built for this Node.js. Install it with `npm install better-sqlite3` (or the package without --ignore-scripts), or use PostgreSQL with --database-url.',
      { cause: String((err as Error)?.message ?? err).slice(0, 300) },
    );
  let BetterSqlite3: typeof import('better-sqlite3');
  try {
    BetterSqlite3 = require('better-sqlite3');
  } catch (err) {
    throw missing(err);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let db: import('better-sqlite3').Database;
  try {
    db = new BetterSqlite3(file);
  } catch (err) {
    // Installed without its native part (--ignore-scripts, another Node.js): say so in one line.
    if (/bindings|NODE_MODULE_VERSION|\.node\b|ERR_DLOPEN/.test(String((err as Error)?.message ?? err) + String((err as NodeJS.ErrnoException)?.code ?? ''))) throw missing(err);
    throw err;
  }
  // WAL lets readers go on while one writer writes; busy_timeout makes a second process
  // (an `admin` command next to a running server) wait instead of failing.
  // Every commit writes each page it changed to the log, whole: with 16 KiB pages a commit cost
  // twice what it costs with 4 KiB (0.5 against 0.28 ms, bench/fleet), and small writes are most
  // of what a server does (executions a second: 178 → 191–214). Output ingest is ~5 % slower.
  // Takes effect only on a new database, so it must come before WAL mode is set; a database
  // made with 16 KiB pages keeps them.
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  // Sorts SQLite cannot take from an index (e.g. ORDER BY over "status IN (...)") build a
  // temporary b-tree: in a file by default, opened for every query (82 µs against 13 µs in memory
  // for v1's pending/, polled by every runner). Our sorts are small: paged, or within a project.
  db.pragma('temp_store = MEMORY');
  // The log is truncated back to this size once it has all been copied into the database.
  db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const stopCheckpointer = startCheckpointer(db, file);
  // Reads outside a transaction: they see only what is committed, and never wait for the writer.
  const reader = new BetterSqlite3(file, { readonly: true });
  reader.pragma('busy_timeout = 5000');
  reader.pragma('wal_autocheckpoint = 0');
  reader.pragma('temp_store = MEMORY');
  // Changes when another connection (an `admin` command, another process) commits to the file.
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  changes?.watchOtherConnections(() => dataVersion.get() as number);
  return new Kysely<Database>({ dialect: new GroupCommitSqliteDialect(db, reader, stopCheckpointer, changes) });
}

/** `prepared`: statements used often are prepared once per connection (pgPrepared.ts). */
export function openPostgres(url: string, prepared = true): Kysely<Database> {
  const pg: typeof import('pg') = require('pg');
  const INT8 = 20;
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Timestamps and counters are int8; they fit in a double for the next 285,000 years.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it. Queries report their own errors.
  });
  // A client in use whose connection drops emits 'error' with no listener (the pool listens only
  // while it is idle): that would crash the process. Its queries fail on their own, and the pool
  // drops the dead client when it is released.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    if (prepared) prepareRepeatedStatements(client);
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: CAPABILITIES.postgres.textHoldsNul ? [] : [nulFree] });
}
