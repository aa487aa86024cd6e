/**
 * What the core tells an onlooker (the server's metrics) as it happens: an execution changed
 * status, output was stored, a notification delivery ended. The core knows nothing of
 * Prometheus; the server sets `core.observer` (serve.ts) and turns these into metrics.
 * An observer's failure never breaks the use case that called it.
 */
import type { Execution } from '../domain/model.js';
import type { Core } from './context.js';

export interface CoreObserver {
  /** `e` is the execution as written by the change (its new status included). */
  executionChanged?(e: Execution): void;
  /** A chunk (or a v1 chunk's part) was stored: its bytes, and whether it is the execution's first. */
  outputStored?(e: Pick<Execution, 'id' | 'projectId' | 'command' | 'startedAt'>, bytes: number, first: boolean, at: number): void;
  /** One delivery attempt ended: the channel kind and how (delivered, retry, failed). */
  deliveryEnded?(channelKind: string, result: 'delivered' | 'retry' | 'failed'): void;
}

declare module './context.js' {
  interface Core {
    /** Set by the server (serve.ts); absent in `admin` commands and unit tests. */
    observer?: CoreObserver;
  }
}

/** Calls the observer, if any; what it throws is dropped (it must not fail the caller). */
export function observe(core: Core, call: (o: CoreObserver) => void): void {
  if (!core.observer) return;
  try {
    call(core.observer);
  } catch {
    // Metrics are best effort: a bug there must not fail an execution.
  }
}

/** Bytes of a chunk's data as stored (a string counts as its UTF-8 length). */
export function dataBytes(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}
