/**
 * The store's busiest queries, built and compiled by kysely once and then run with new values.
 * kysely builds an operation tree and compiles it to SQL on every call; for the few queries a
 * server runs thousands of times a second (a runner key's lookup, a nonce, an execution by id)
 * that cost more CPU than the database's own work.
 *
 * A query is named by its shape: `build` is called once per shape with one placeholder per value,
 * and must use each placeholder as a plain value (a comparison, a value to insert, a limit),
 * never inside raw SQL. The placeholders are found among the compiled parameters; each run puts
 * its values in their places. What the plugins would do to values is done here instead: the
 * query is timed for the metrics, and on PostgreSQL a NUL in a string becomes U+FFFD (NulFree).
 */
import { createQueryId, type CompiledQuery, type Compilable, type Kysely, type QueryResult, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { QueryKind, QueryTimer } from './queryTiming.js';

/** Where a value goes: found by identity among the compiled parameters. */
class Slot {
  constructor(readonly index: number) {}
}

interface Template {
  compiled: CompiledQuery;
  /** For each compiled parameter, the index of the value it takes, or -1 for a constant. */
  slotOf: number[];
  kind: QueryKind;
}

/** Rows one compiled INSERT takes at most: one statement per number of rows up to this. */
const ROWS_PER_INSERT = 64;

const KINDS: Record<string, QueryKind> = { SelectQueryNode: 'select', InsertQueryNode: 'insert', UpdateQueryNode: 'update', DeleteQueryNode: 'delete' };

export class CompiledQueries {
  readonly #templates = new Map<string, Template>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly textHoldsNul: boolean,
    private readonly onQuery?: QueryTimer,
  ) {}

  /**
   * Runs the query of `shape` (built by `build` on first use) with `values` in the placeholders'
   * places; in the transaction `trx` when given.
   */
  async run<O>(shape: string, values: readonly unknown[], build: (...slots: never[]) => Compilable<O>, trx?: Transaction<Database>): Promise<QueryResult<O>> {
    const t = this.#templates.get(shape) ?? this.compile(shape, values.length, build);
    const parameters = t.slotOf.map((slot, i) => (slot < 0 ? t.compiled.parameters[i] : this.clean(values[slot])));
    const started = performance.now();
    const result = await (trx ?? this.db).executeQuery<O>({ ...t.compiled, parameters, queryId: createQueryId() });
    try {
      this.onQuery?.(t.kind, (performance.now() - started) / 1000);
    } catch {
      // Timing is best effort; a query's result is never lost to it.
    }
    return result;
  }

  /**
   * INSERTs `rows` (each with a value for every one of `columns`), at most ROWS_PER_INSERT a
   * statement; the statement for each number of rows is compiled once. `build` gets the rows with
   * placeholders for values. Returns what the statements return, in order.
   */
  async insertRows<R extends object, O>(
    shape: string,
    columns: ReadonlyArray<keyof R & string>,
    rows: readonly R[],
    build: (rows: R[]) => Compilable<O>,
    trx?: Transaction<Database>,
  ): Promise<O[]> {
    const out: O[] = [];
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const slice = rows.slice(i, i + ROWS_PER_INSERT);
      const values = slice.flatMap((r) => columns.map((c) => r[c]));
      const withSlots = (...slots: never[]) => build(slice.map((_, k) => Object.fromEntries(columns.map((c, j) => [c, slots[k * columns.length + j]])) as R));
      out.push(...(await this.run(`${shape}:${slice.length}`, values, withSlots, trx)).rows);
    }
    return out;
  }

  private compile(shape: string, arity: number, build: (...slots: never[]) => Compilable<unknown>): Template {
    const slots = Array.from({ length: arity }, (_, i) => new Slot(i));
    const compiled = build(...(slots as never[])).compile();
    const slotOf = compiled.parameters.map((p) => (p instanceof Slot ? p.index : -1));
    const missing = slots.filter((s) => !slotOf.includes(s.index));
    if (missing.length > 0) throw new Error(`compiled query "${shape}": placeholder ${missing[0].index} is not a parameter`);
    const t: Template = { compiled, slotOf, kind: KINDS[compiled.query.kind] ?? 'other' };
    this.#templates.set(shape, t);
    return t;
  }

  private clean(v: unknown): unknown {
    return !this.textHoldsNul && typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v;
  }
}
