/**
 * SQLite for kysely, with group commit. A commit is the dearest thing a small write costs
 * (writing its pages to the WAL), and a busy server makes several per execution. Here writes go
 * into one open transaction that is committed once per turn of the event loop, for everything
 * written during that turn; each caller's promise settles only when its write is committed, so
 * nothing is acknowledged before it is on disk (as durable as before: WAL, synchronous=NORMAL).
 *
 * A kysely transaction is a savepoint inside that transaction: its rollback undoes its own
 * writes only. A read made while the transaction is open may see writes not yet committed, so
 * its result too is handed over after the commit. If the commit fails, or SQLite rolls the whole
 * transaction back on an error (a full disk), every caller whose query ran in it gets that error.
 */
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3';
import { SqliteDialect, type DatabaseConnection, type Driver, type CompiledQuery, type QueryResult } from 'kysely';

/** Prepared statements kept, most recently used first: the queries of a busy server are a few hundred shapes. */
const STATEMENT_CACHE = 1000;

export class GroupCommitSqliteDialect extends SqliteDialect {
  readonly #db: SqliteDatabase;
  readonly #beforeClose: () => Promise<void>;

  /** `beforeClose` runs when kysely is destroyed, before the database is closed. */
  constructor(db: SqliteDatabase, beforeClose: () => Promise<void> = async () => undefined) {
    super({ database: db });
    this.#db = db;
    this.#beforeClose = beforeClose;
  }

  override createDriver(): Driver {
    return new GroupCommitDriver(this.#db, this.#beforeClose);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

class GroupCommitDriver implements Driver {
  readonly #db: SqliteDatabase;
  readonly #beforeClose: () => Promise<void>;
  readonly #mutex = new Mutex();
  readonly #connection = new Connection(this);
  readonly #statements = new Map<string, Statement>();
  /** Callers whose writes are in the open transaction; empty when none is open. */
  #waiters: Waiter[] = [];
  #open = false;
  #commitScheduled = false;

  constructor(db: SqliteDatabase, beforeClose: () => Promise<void>) {
    this.#db = db;
    this.#beforeClose = beforeClose;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock();
    return this.#connection;
  }

  async beginTransaction(): Promise<void> {
    this.openForWrite();
    this.#db.exec('savepoint dc_tx');
  }

  async commitTransaction(): Promise<void> {
    this.#db.exec('release dc_tx');
  }

  async rollbackTransaction(): Promise<void> {
    if (!this.#db.inTransaction) return; // SQLite already rolled everything back; releaseConnection reports it
    this.#db.exec('rollback to dc_tx');
    this.#db.exec('release dc_tx');
  }

  /**
   * kysely hands a query's result over only after this: a caller that wrote, or read while a
   * transaction was open (and may have seen writes not yet committed), waits for the commit.
   * Nothing uncommitted ever leaves the process.
   */
  async releaseConnection(): Promise<void> {
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
      this.#statements.clear();
      this.#db.close();
    }
  }

  prepare(sql: string): Statement {
    // kysely asks for a statement on every query; preparing took about a third of the SQL time
    // of an execution. A statement still being iterated is busy: that query gets its own.
    const hit = this.#statements.get(sql);
    if (hit && !hit.busy) {
      this.#statements.delete(sql);
      this.#statements.set(sql, hit);
      return hit;
    }
    const stmt = this.#db.prepare(sql);
    if (!hit) {
      this.#statements.set(sql, stmt);
      if (this.#statements.size > STATEMENT_CACHE) this.#statements.delete(this.#statements.keys().next().value!);
    }
    return stmt;
  }

  /** Called under the mutex before anything that writes. */
  openForWrite(): void {
    if (this.#open) return;
    this.#db.exec('begin immediate');
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
      setImmediate(() => void this.commitLater());
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
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) (err === null ? w.resolve() : w.reject(err));
  }
}

class Connection implements DatabaseConnection {
  constructor(private readonly driver: GroupCommitDriver) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const stmt = this.driver.prepare(query.sql);
    if (!stmt.readonly) this.driver.openForWrite();
    const params = query.parameters as unknown[];
    if (stmt.reader) return { rows: stmt.all(params) as R[] };
    const { changes, lastInsertRowid } = stmt.run(params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not used with SQLite');
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
