/**
 * Finding the end of a huge output without reading it all. ExecutionView has no chunk count,
 * so the last chunk number is found with `output/chunks?after=X&limit=1` probes: galloping
 * up, then halving (about 2·log2(n) small requests), and the tail is read backwards from it
 * until a byte budget is met.
 */
import type { OutputChunkView } from '../shared/api.js';
import { api } from './api.js';

/** Outputs larger than this are not replayed from the start. */
export const TAIL_THRESHOLD_BYTES = 2 * 1024 * 1024;
/** How much text the tail (and each "load earlier" step) brings. */
export const TAIL_BUDGET_CHARS = 512 * 1024;
const FIRST_PAGE = 1;
const MAX_PAGE = 200;

async function anyAfter(id: string, after: number, signal?: AbortSignal): Promise<OutputChunkView | undefined> {
  return (await api.chunks(id, after, 1, signal)).items[0];
}

/** The last chunk number, 0 when there is none. */
export async function lastSeq(id: string, signal?: AbortSignal): Promise<number> {
  const first = await anyAfter(id, 0, signal);
  if (!first) return 0;
  // Invariant: some chunk has seq > lo; none has seq > hi.
  let lo = first.seq - 1;
  let step = 1024;
  let hi = lo + step;
  while (await anyAfter(id, hi, signal)) {
    lo = hi;
    step *= 2;
    hi = lo + step;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await anyAfter(id, mid, signal)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Reads backwards from chunk `upTo` (included) until about `budget` characters are in hand.
 * Returns the chunks in order and `before`: the number after which nothing has been read yet
 * (0 when the start was reached).
 */
export async function readBackwards(id: string, upTo: number, budget = TAIL_BUDGET_CHARS, signal?: AbortSignal): Promise<{ chunks: OutputChunkView[]; before: number }> {
  const chunks: OutputChunkView[] = [];
  let size = 0;
  let end = upTo;
  // A chunk holds from a few bytes to about a MiB: start with one, then ask for as many as the budget left
  // should need at the sizes seen so far.
  let page = FIRST_PAGE;
  while (end > 0 && size < budget) {
    const start = Math.max(0, end - page);
    const got = (await api.chunks(id, start, page, signal)).items.filter((c) => c.seq <= end);
    chunks.unshift(...got);
    size += got.reduce((n, c) => n + c.data.length, 0);
    end = start;
    const average = chunks.length ? size / chunks.length : 1;
    // At most doubling: one tiny stderr chunk must not make the next request read everything.
    page = Math.max(1, Math.min(MAX_PAGE, page * 2, Math.ceil((budget - size) / Math.max(average, 1))));
  }
  return { chunks, before: end };
}
