/**
 * A Kysely plugin that times every query (compile to result) and reports it by operation kind
 * (select, insert, update, delete, other): the server turns it into a histogram. Costs a clock
 * read and a WeakMap entry per query; nothing of the query's text or values is kept.
 */
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';

export type QueryKind = 'select' | 'insert' | 'update' | 'delete' | 'other';
export type QueryTimer = (kind: QueryKind, seconds: number) => void;

const KINDS: Record<string, QueryKind> = { SelectQueryNode: 'select', InsertQueryNode: 'insert', UpdateQueryNode: 'update', DeleteQueryNode: 'delete' };

export function queryTiming(report: QueryTimer): KyselyPlugin {
  const started = new WeakMap<object, { at: number; kind: QueryKind }>();
  return {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      started.set(args.queryId, { at: performance.now(), kind: KINDS[args.node.kind] ?? 'other' });
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      const s = started.get(args.queryId);
      if (s) {
        started.delete(args.queryId);
        try {
          report(s.kind, (performance.now() - s.at) / 1000);
        } catch {
          // Timing is best effort; a query's result is never lost to it.
        }
      }
      return args.result;
    },
  };
}
