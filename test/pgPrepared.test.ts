/**
 * Named prepared statements on a real PostgreSQL (src/store/pgPrepared.ts): a statement used a
 * few times is prepared once per connection; a one-off is not. When another process adds a
 * column to a table a prepared `select *` reads, the query is answered all the same outside a
 * transaction, fails alone inside one, and the connection stops preparing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, type FreshDatabase } from './support/databases.js';
import { sql } from 'kysely';
import { prepareRepeatedStatements } from '../src/store/pgPrepared.js';
import { openDatabase } from '../src/store/openStore.js';

describe('prepared statements on PostgreSQL', () => {
  let db: FreshDatabase | undefined;
  const clients: pg.Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end();
    await db?.drop();
    db = undefined;
  });

  async function connect(prepared: boolean): Promise<pg.Client> {
    db ??= await freshDatabase('postgres');
    const c = new pg.Client({ connectionString: db.databaseUrl });
    await c.connect();
    clients.push(c);
    if (prepared) prepareRepeatedStatements(c as unknown as pg.PoolClient);
    return c;
  }
  const preparedOn = async (c: pg.Client) => (await c.query('select statement from pg_prepared_statements order by statement')).rows.map((r) => r.statement as string);

  it('prepares a statement once it is used a few times, and not a one-off', async () => {
    const c = await connect(true);
    await c.query('select $1::int + 0 as once', [1]);
    const repeated = 'select $1::int + 1 as n';
    for (let i = 0; i < 2; i++) expect((await c.query(repeated, [i])).rows).toEqual([{ n: i + 1 }]);
    expect(await preparedOn(c)).toEqual([]);
    for (let i = 2; i < 6; i++) expect((await c.query(repeated, [i])).rows).toEqual([{ n: i + 1 }]);
    expect(await preparedOn(c)).toEqual([repeated]);
  });

  it('answers a prepared select * whose table gained a column, and fails it alone inside a transaction', async () => {
    const c = await connect(true);
    const other = await connect(false);
    await other.query('create table t (a int)');
    await other.query('insert into t values (1)');
    const read = 'select * from t where a = $1';
    for (let i = 0; i < 4; i++) expect((await c.query(read, [1])).rows).toEqual([{ a: 1 }]);
    expect(await preparedOn(c)).toEqual([read]);

    await other.query('alter table t add column b int');
    await c.query('begin', []);
    await expect(c.query(read, [1])).rejects.toThrow(/cached plan must not change result type/);
    await c.query('rollback', []);
    // The connection no longer uses its prepared statements.
    expect((await c.query(read, [1])).rows).toEqual([{ a: 1, b: null }]);

    // Outside a transaction, the first failure is answered unnamed.
    const d = await connect(true);
    for (let i = 0; i < 4; i++) await d.query(read, [1]);
    await other.query('alter table t add column c int');
    expect((await d.query(read, [1])).rows).toEqual([{ a: 1, b: null, c: null }]);
    expect((await d.query(read, [1])).rows).toEqual([{ a: 1, b: null, c: null }]);
  });

  it('prepares through the server\'s pool by default, and not when DJANGOCOMMAND_PG_PREPARED_STATEMENTS is false', async () => {
    db ??= await freshDatabase('postgres');
    for (const preparedStatements of [true, false]) {
      const { db: kysely } = openDatabase({ dataDir: db.dataDir, databaseUrl: db.databaseUrl, preparedStatements });
      try {
        // One query at a time: the pool hands out the same connection.
        for (let i = 0; i < 5; i++) await sql`select ${i}::int + ${preparedStatements ? 1 : 2} as n`.execute(kysely);
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(kysely);
        expect(rows[0].n > 0).toBe(preparedStatements);
      } finally {
        await kysely.destroy();
      }
    }
  });
});
