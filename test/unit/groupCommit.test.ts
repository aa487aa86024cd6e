/** Group commit (src/store/groupCommit.ts): one write at a time, callers' items together, results split back. */
import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/store/groupCommit.js';

/** A write that records each call's items, waits until released, and answers each item doubled. */
function slowWrite() {
  const calls: number[][] = [];
  let running = 0;
  let most = 0;
  const waiting: Array<() => void> = [];
  const write = async (items: number[]) => {
    calls.push(items);
    most = Math.max(most, ++running);
    await new Promise<void>((resolve) => waiting.push(resolve));
    running--;
    if (items.includes(13)) throw new Error('unlucky');
    return items.map((i) => i * 2);
  };
  const releaseAll = async () => {
    for (let i = 0; i < 20; i++) {
      while (waiting.length > 0) waiting.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { write, calls, releaseAll, most: () => most };
}

describe('GroupCommit', () => {
  it('writes one batch at a time; what arrives meanwhile goes in the next, whole and in order', async () => {
    const w = slowWrite();
    const group = new GroupCommit(w.write, 100);
    const first = group.submit([1]);
    await new Promise((r) => setImmediate(r));
    expect(w.calls).toEqual([[1]]);
    const later = [group.submit([2, 3]), group.submit([4]), group.submit([5, 6, 7])];
    await w.releaseAll();
    expect(await first).toEqual([2]);
    expect(await Promise.all(later)).toEqual([[4, 6], [8], [10, 12, 14]]);
    expect(w.calls).toEqual([[1], [2, 3, 4, 5, 6, 7]]);
    expect(w.most()).toBe(1);
  });

  it('puts at most maxItems in a batch, never splitting one caller, and takes a larger caller alone', async () => {
    const w = slowWrite();
    const group = new GroupCommit(w.write, 3);
    const results = [group.submit([1, 2]), group.submit([3, 4]), group.submit([5]), group.submit([6, 7, 8, 9]), group.submit([10])];
    await w.releaseAll();
    expect(await Promise.all(results)).toEqual([[2, 4], [6, 8], [10], [12, 14, 16, 18], [20]]);
    expect(w.calls).toEqual([[1, 2], [3, 4, 5], [6, 7, 8, 9], [10]]);
  });

  it('fails every caller of a failed batch, and goes on with the next', async () => {
    const w = slowWrite();
    const group = new GroupCommit(w.write, 100);
    const blocker = group.submit([0]);
    await new Promise((r) => setImmediate(r));
    const a = group.submit([12]).catch((err: Error) => err.message);
    const b = group.submit([13]).catch((err: Error) => err.message);
    await w.releaseAll();
    expect(await blocker).toEqual([0]);
    expect(await a).toBe('unlucky');
    expect(await b).toBe('unlucky');
    const after = group.submit([21]);
    await w.releaseAll();
    expect(await after).toEqual([42]);
  });

  it('answers an empty submission at once, without a write', async () => {
    const w = slowWrite();
    expect(await new GroupCommit(w.write, 10).submit([])).toEqual([]);
    expect(w.calls).toEqual([]);
  });
});
