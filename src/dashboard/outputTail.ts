/**
 * Showing the end of a huge output without reading it all: ExecutionView's `output_last_seq`
 * says where it ends, and the tail is read backwards from there until a character budget is met.
 */
import type { OutputChunkView } from '../shared/api.js';
import { api } from './api.js';

/** Outputs larger than this are not replayed from the start. */
export const TAIL_THRESHOLD_BYTES = 2 * 1024 * 1024;
/** How much text the tail (and each "load earlier" step) brings. */
export const TAIL_BUDGET_CHARS = 512 * 1024;
const FIRST_PAGE = 1;
const MAX_PAGE = 200;

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
