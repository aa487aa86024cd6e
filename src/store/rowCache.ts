/**
 * An in-process cache of the rows every runner request reads and that rarely change: runner keys
 * (with their project) and projects. On SQLite, every commit empties the reader connection's page
 * cache, so under load each such read paid to read its pages again: 40–70 µs, before every v1
 * poll and every v2 message (bench/fleet). A hit costs about a microsecond.
 *
 * Never stale, not even for a moment:
 * - every write statement of this process that names a cached table changes the stamp when it
 *   runs and again when its transaction ends (a read between the two saw the old rows);
 * - a commit by any other connection to the file (an `admin revoke-key` next to the running
 *   server, a test's own connection) changes SQLite's `PRAGMA data_version`, read before each hit:
 *   any change empties the cache.
 * A revoked key is refused by the next request, as without the cache.
 *
 * SQLite only: PostgreSQL has no such counter, and replicas would have to trust their NOTIFYs.
 */

/** Tables whose rows are cached: a write statement that names one of them changes the stamp. */
const CACHED_TABLES = /\b(projects|runner_keys)\b/;

/** Most entries kept; beyond, the cache starts again empty (10,000 runners' keys and projects fit). */
const MAX_ENTRIES = 50_000;

/** What changes when a cached row may have: told by the SQLite driver, read by the cache. */
export class RowChanges {
  #local = 0;
  #otherVersion: number | undefined;
  #otherConnections: () => number = () => 0;

  /** `version` is the writer's `PRAGMA data_version`: it changes when another connection commits. */
  watchOtherConnections(version: () => number): void {
    this.#otherConnections = version;
  }

  /** True when this write statement may change cached rows. */
  touchesCached(sql: string): boolean {
    return CACHED_TABLES.test(sql);
  }

  /** A write that may change cached rows ran, or the transaction that holds one ended. */
  wrote(): void {
    this.#local++;
  }

  /** Equal stamps: no cached row changed in between. */
  stamp(): number {
    const other = this.#otherConnections();
    if (other !== this.#otherVersion) {
      this.#otherVersion = other;
      this.#local++;
    }
    return this.#local;
  }
}

export class RowCache {
  readonly #entries = new Map<string, unknown>();
  #stamp = -1;

  constructor(private readonly changes: RowChanges) {}

  /**
   * The value `load` reads, from the cache while no cached row changed. Undefined (not found) is
   * not kept. Values are frozen: callers share them.
   */
  async get<V extends object>(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const before = this.changes.stamp();
    if (before !== this.#stamp) {
      this.#entries.clear();
      this.#stamp = before;
    }
    const hit = this.#entries.get(key);
    if (hit !== undefined) return hit as V;
    const value = await load();
    // Kept only if nothing changed while it was read.
    if (value !== undefined && this.changes.stamp() === before && this.#stamp === before) {
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(key, freeze(value));
    }
    return value;
  }
}

function freeze<V extends object>(value: V): V {
  for (const inner of Object.values(value)) if (inner !== null && typeof inner === 'object') Object.freeze(inner);
  return Object.freeze(value);
}
