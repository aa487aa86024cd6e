/**
 * Group commit: callers' writes go to the database in one transaction at a time, and what arrives
 * while one runs waits and goes in the next, whole. Where every transaction of a kind takes the
 * same lock until its commit (the audit chain's head; a project's row while executions are
 * created against their command's limit), a transaction per caller only queues callers on that
 * lock, one commit (one WAL flush) each; together they share one.
 *
 * Each caller's items stay together and in order, and its promise settles with the results of
 * its own items; when the transaction fails, every caller in it sees the failure.
 */
export class GroupCommit<I, O> {
  #pending: Array<{ items: readonly I[]; resolve: (results: O[]) => void; reject: (err: unknown) => void }> = [];
  /** True while a transaction runs: what is submitted meanwhile waits for the next. */
  #writing = false;

  /**
   * `write` stores the items in one transaction and returns one result per item, in order.
   * `maxItems`: most items in one transaction (more when one caller's alone are more).
   */
  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly maxItems: number,
  ) {}

  submit(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#pending.push({ items, resolve, reject });
      if (!this.#writing && this.#pending.length === 1) setImmediate(() => void this.#writePending());
    });
  }

  async #writePending(): Promise<void> {
    if (this.#writing || this.#pending.length === 0) return;
    this.#writing = true;
    let take = 0;
    let items = 0;
    while (take < this.#pending.length && (take === 0 || items + this.#pending[take].items.length <= this.maxItems)) items += this.#pending[take++].items.length;
    const batch = this.#pending.splice(0, take);
    try {
      const results = await this.write(batch.flatMap((b) => b.items));
      let at = 0;
      for (const b of batch) b.resolve(results.slice(at, (at += b.items.length)));
    } catch (err) {
      for (const b of batch) b.reject(err);
    } finally {
      this.#writing = false;
      if (this.#pending.length > 0) setImmediate(() => void this.#writePending());
    }
  }
}
