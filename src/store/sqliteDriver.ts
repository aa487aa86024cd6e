/**
 * SQLite for kysely, with group commit. A commit is the dearest thing a small write costs
 * (writing its pages to the WAL), and a busy server makes several per execution. Here writes go
 * into one open transaction that is committed after the turn of the event loop it was opened in
 * (under load, at most once per COMMIT_EVERY_MS), for everything written meanwhile; each
 * writer's promise settles only when its write is committed, so nothing is acknowledged before
 * it is on disk (as durable as before: WAL, synchronous=NORMAL).
 *
 * Two connections to the file:
 * - the writer: every kysely transaction (a savepoint inside the open transaction: its
 *   rollback undoes its own writes only) and every write outside one, one at a time;
 * - the reader: every read outside a transaction. It sees what is committed and nothing else,
 *   so a read never shows a write that a crash could still take back, and never waits for one.
 *
 * If the commit fails, or SQLite rolls the whole transaction back on an error (a full disk),
 * every writer whose writes were in it gets that error.
 */
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3';
import { SqliteDialect, type DatabaseConnection, type Driver, type CompiledQuery, type QueryResult } from 'kysely';
import type { RowChanges } from './rowCache.js';

/**
 * Under load, commits are at least this far apart: a commit writes every page changed since the
 * last (whole pages), and the same pages (an index's, the audit chain head's) change in most
 * writes. A writer waits this much longer at most; when commits are rare, none waits.
 */
const COMMIT_EVERY_MS = 2;

/** Prepared statements kept per connection, most recently used first: a busy server's queries are a few hundred shapes. */
const STATEMENT_CACHE = 1000;

export class GroupCommitSqliteDialect extends SqliteDialect {
  readonly #writer: SqliteDatabase;
  readonly #reader: SqliteDatabase;
  readonly #beforeClose: () => Promise<void>;
  readonly #changes: RowChanges | undefined;

  /**
   * `reader` is a second connection to the same file; `beforeClose` runs when kysely is destroyed;
   * `changes` hears of every write that may change rows the store caches (rowCache.ts).
   */
  constructor(writer: SqliteDatabase, reader: SqliteDatabase, beforeClose: () => Promise<void> = async () => undefined, changes?: RowChanges) {
    super({ database: writer });
    this.#writer = writer;
    this.#reader = reader;
    this.#beforeClose = beforeClose;
    this.#changes = changes;
  }

  override createDriver(): Driver {
    return new GroupCommitDriver(this.#writer, this.#reader, this.#beforeClose, this.#changes);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

class GroupCommitDriver implements Driver {
  readonly writer: Statements;
  readonly reader: Statements;
  readonly #db: SqliteDatabase;
  readonly #beforeClose: () => Promise<void>;
  readonly #mutex = new Mutex();
  /** Writers whose writes are in the open transaction; empty when none is open. */
  #waiters: Waiter[] = [];
  #open = false;
  #commitScheduled = false;
  #committedAt = -Infinity;
  readonly changes: RowChanges | undefined;
  /** The open transaction wrote to a cached table: its end changes the stamp again. */
  #wroteCached = false;

  constructor(writer: SqliteDatabase, reader: SqliteDatabase, beforeClose: () => Promise<void>, changes: RowChanges | undefined) {
    this.#db = writer;
    this.writer = new Statements(writer, changes);
    this.reader = new Statements(reader, undefined);
    this.#beforeClose = beforeClose;
    this.changes = changes;
  }

  /** A write statement that may change cached rows is about to run. */
  wroteCached(): void {
    this.#wroteCached = true;
    this.changes?.wrote();
  }

  async init(): Promise<void> {}

  /** Nothing is locked yet: a read never needs the writer (see Connection.executeQuery). */
  async acquireConnection(): Promise<DatabaseConnection> {
    return new Connection(this);
  }

  async beginTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as Connection).takeWriter();
    this.#db.exec('savepoint dc_tx');
    (conn as Connection).inTransaction = true;
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    this.#db.exec('release dc_tx');
    (conn as Connection).inTransaction = false;
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    (conn as Connection).inTransaction = false;
    if (!this.#db.inTransaction) return; // SQLite already rolled everything back; releaseConnection reports it
    this.#db.exec('rollback to dc_tx');
    this.#db.exec('release dc_tx');
  }

  /** kysely hands a query's result over only after this: a writer waits here for the commit. */
  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    if (!(conn as Connection).holdsWriter) return;
    const lost = this.checkStillOpen();
    const committed = this.#open ? this.whenCommitted() : undefined;
    this.#mutex.unlock();
    if (lost) throw lost;
    await committed;
  }

  async destroy(): Promise<void> {
    await this.#mutex.lock();
    try {
      if (this.#open) this.commit();
      await this.#beforeClose();
    } finally {
      this.reader.close();
      this.writer.close();
    }
  }

  /** The writer, for this connection alone until it is released; a transaction is open on it. */
  async lockWriter(): Promise<void> {
    await this.#mutex.lock();
    if (this.#open) return;
    try {
      this.#db.exec('begin immediate');
    } catch (err) {
      this.#mutex.unlock();
      throw err;
    }
    this.#open = true;
  }

  /** After an error SQLite may have rolled the whole transaction back: its writers must hear of it. */
  private checkStillOpen(): Error | null {
    if (!this.#open || this.#db.inTransaction) return null;
    this.#open = false;
    const lost = new Error('SQLite rolled back the transaction after an error; the writes of this turn were not stored');
    this.settle(lost);
    return lost;
  }

  private whenCommitted(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#commitScheduled) {
      this.#commitScheduled = true;
      // Right after this turn when commits are rare; under load, at most one per COMMIT_EVERY_MS.
      const wait = COMMIT_EVERY_MS - (performance.now() - this.#committedAt);
      if (wait <= 0) setImmediate(() => void this.commitLater());
      else setTimeout(() => void this.commitLater(), wait);
    }
    return done;
  }

  private async commitLater(): Promise<void> {
    this.#commitScheduled = false;
    await this.#mutex.lock();
    try {
      if (this.#open) this.commit();
    } finally {
      this.#mutex.unlock();
    }
  }

  private commit(): void {
    this.#open = false;
    this.#committedAt = performance.now();
    try {
      this.#db.exec('commit');
    } catch (err) {
      if (this.#db.inTransaction) this.#db.exec('rollback');
      this.settle(err);
      return;
    }
    this.settle(null);
  }

  private settle(err: unknown): void {
    // Committed or rolled back: either way the cached rows may differ from what was read meanwhile.
    if (this.#wroteCached) {
      this.#wroteCached = false;
      this.changes?.wrote();
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) (err === null ? w.resolve() : w.reject(err));
  }
}

/** One query, or one transaction, as kysely sees it. */
class Connection implements DatabaseConnection {
  inTransaction = false;
  holdsWriter = false;

  constructor(private readonly driver: GroupCommitDriver) {}

  async takeWriter(): Promise<void> {
    if (this.holdsWriter) return;
    await this.driver.lockWriter();
    this.holdsWriter = true;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    let stmt: Statement;
    if (this.inTransaction) {
      stmt = this.driver.writer.prepare(query.sql);
    } else {
      // A statement the reader cannot prepare (a table created by a write not yet committed) is the writer's.
      const read = this.driver.reader.tryPrepare(query.sql);
      if (read?.readonly) stmt = read;
      else {
        await this.takeWriter();
        stmt = this.driver.writer.prepare(query.sql);
      }
    }
    const params = query.parameters as unknown[];
    // A write (with RETURNING too: better-sqlite3 calls that a reader) that may change cached rows.
    if (!stmt.readonly && this.driver.writer.touchesCached(stmt)) this.driver.wroteCached();
    if (stmt.reader) return { rows: stmt.all(params) as R[] };
    const { changes, lastInsertRowid } = stmt.run(params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not used with SQLite');
  }
}

/**
 * One connection's prepared statements: kysely asks for a statement on every query, and
 * preparing took about a third of the SQL time of an execution. A statement still being
 * iterated is busy: that query gets its own.
 */
class Statements {
  readonly #cache = new Map<string, Statement>();
  /** Write statements that name a table the store caches rows of. */
  readonly #touching = new WeakMap<Statement, boolean>();

  constructor(
    private readonly db: SqliteDatabase,
    private readonly changes: RowChanges | undefined,
  ) {}

  touchesCached(stmt: Statement): boolean {
    if (!this.changes) return false;
    let touches = this.#touching.get(stmt);
    if (touches === undefined) this.#touching.set(stmt, (touches = this.changes.touchesCached(stmt.source)));
    return touches;
  }

  prepare(sql: string): Statement {
    const hit = this.#cache.get(sql);
    if (hit && !hit.busy) {
      this.#cache.delete(sql);
      this.#cache.set(sql, hit);
      return hit;
    }
    const stmt = this.db.prepare(sql);
    if (!hit) {
      this.#cache.set(sql, stmt);
      if (this.#cache.size > STATEMENT_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
    }
    return stmt;
  }

  tryPrepare(sql: string): Statement | undefined {
    try {
      return this.prepare(sql);
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.#cache.clear();
    this.db.close();
  }
}

/** One holder at a time, served in the order they asked. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #release: (() => void) | null = null;

  async lock(): Promise<void> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    this.#release = release;
  }

  unlock(): void {
    const release = this.#release;
    this.#release = null;
    release?.();
  }
}
