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
import { createQueryId, type CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
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

const KINDS: Record<string, QueryKind> = { SelectQueryNode: 'select', InsertQueryNode: 'insert', UpdateQueryNode: 'update', DeleteQueryNode: 'delete' };

export class CompiledQueries {
  readonly #templates = new Map<string, Template>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly textHoldsNul: boolean,
    private readonly onQuery?: QueryTimer,
  ) {}

  /** Runs the query of `shape` (built by `build` on first use) with `values` in the placeholders' places. */
  async run<O>(shape: string, values: readonly unknown[], build: (...slots: never[]) => Compilable<O>): Promise<QueryResult<O>> {
    const t = this.#templates.get(shape) ?? this.compile(shape, values.length, build);
    const parameters = t.slotOf.map((slot, i) => (slot < 0 ? t.compiled.parameters[i] : this.clean(values[slot])));
    const started = performance.now();
    const result = await this.db.executeQuery<O>({ ...t.compiled, parameters, queryId: createQueryId() });
    try {
      this.onQuery?.(t.kind, (performance.now() - started) / 1000);
    } catch {
      // Timing is best effort; a query's result is never lost to it.
    }
    return result;
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
