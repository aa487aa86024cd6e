/**
 * Named prepared statements on PostgreSQL. node-postgres sends each query as an unnamed
 * statement, which PostgreSQL parses and plans again every time; a busy server sends the same few
 * hundred shapes thousands of times a second. Here a statement used a few times gets a name, and
 * each connection prepares it once and then only binds and executes it (bench/executionThroughput:
 * about 15 % more executions a second, the database's processes being half the machine's work).
 *
 * One-off statements (migrations, rare reports) are never named: only one seen NAME_AFTER times.
 * At most MAX_NAMED shapes get a name, so a connection's prepared statements stay bounded.
 *
 * A prepared `select *` fails with "cached plan must not change result type" once another server
 * process (a newer version, during a rolling upgrade) adds a column to its table. That connection
 * then stops using names; the failed query is sent again unnamed unless it was in a transaction
 * (which the error has aborted: its caller gets the error, as for any other failed write).
 *
 * A pooler that does not keep prepared statements between transactions (PgBouncer in transaction
 * mode before 1.21) cannot carry them: DJANGOCOMMAND_PG_PREPARED_STATEMENTS=false turns this off.
 */
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';

/** Uses of a statement's text before it is named. */
const NAME_AFTER = 3;
/** Distinct statements named, in all; later shapes stay unnamed. */
const MAX_NAMED = 500;
/** Texts counted before the count starts again (shapes with a list of values vary). */
const MAX_COUNTED = 20_000;
/** A prepared statement whose table's columns changed since it was prepared. */
const planOutdated = (err: { code?: unknown; message?: unknown }) => err?.code === '0A000' && /cached plan must not change result type/.test(String(err.message));

const counted = new Map<string, number>();
const names = new Map<string, string>();

/** The name of a statement that has been used often enough, else undefined. */
function nameOf(text: string): string | undefined {
  const known = names.get(text);
  if (known !== undefined || names.size >= MAX_NAMED) return known;
  const uses = (counted.get(text) ?? 0) + 1;
  if (uses < NAME_AFTER) {
    if (counted.size >= MAX_COUNTED) counted.clear();
    counted.set(text, uses);
    return undefined;
  }
  counted.delete(text);
  const name = `dc_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
  names.set(text, name);
  return name;
}

type Query = (text: unknown, values?: unknown, callback?: unknown) => unknown;

/** Makes `client` (a pool's, as it connects) send repeated statements as named ones. */
export function prepareRepeatedStatements(client: PoolClient): void {
  const query = client.query.bind(client) as Query;
  let inTransaction = false;
  let unnamed = false;
  const wrapped: Query = (text, values, callback) => {
    // Only the promise form kysely uses: query(text, values).
    if (typeof text !== 'string' || !Array.isArray(values) || callback !== undefined) return query(text, values, callback);
    const head = text.trimStart().slice(0, 20).toLowerCase();
    if (head.startsWith('begin') || head.startsWith('start transaction')) inTransaction = true;
    else if (head.startsWith('commit') || (head.startsWith('rollback') && !head.startsWith('rollback to'))) inTransaction = false;
    const name = unnamed ? undefined : nameOf(text);
    if (name === undefined) return query(text, values);
    const wasInTransaction = inTransaction;
    return (query({ name, text, values }) as Promise<unknown>).catch((err: { code?: unknown; message?: unknown }) => {
      if (!planOutdated(err)) throw err;
      unnamed = true;
      if (wasInTransaction) throw err;
      return query(text, values);
    });
  };
  (client as unknown as { query: Query }).query = wrapped;
}
