/**
 * The in-process cache of keys and projects on real SQLite: a hit reads nothing, and no change
 * is missed — not this process's writes, not a write a read raced with, not another
 * connection's commit (an `admin` command next to the server). On PostgreSQL every read reads.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from './support/databases.js';
import { openDatabase, openStore } from '../src/store/openStore.js';
import type { Store } from '../src/store/store.js';
import type { Project, RunnerKey } from '../src/domain/model.js';

describe.each(['sqlite', 'postgres'] as const)('cached keys and projects on %s', (kind) => {
  let db: FreshDatabase;
  let store: Store;
  let queries = 0;
  /** Told of each query once it ran, before its write is committed. */
  let afterQuery: (kind: string) => void = () => undefined;

  async function open(): Promise<{ project: Project; key: RunnerKey }> {
    db = await freshDatabase(kind);
    store = await openStore({ dataDir: db.dataDir, databaseUrl: db.databaseUrl, onQuery: (kind) => {
        queries++;
        afterQuery(kind);
      } });
    const project: Project = { id: randomUUID(), name: `shop-${randomUUID().slice(0, 8)}`, commandsHash: 'h0', createdAt: Date.now() };
    await store.createProject(project);
    const key: RunnerKey = { id: randomUUID(), projectId: project.id, name: 'default', prefix: randomUUID().slice(0, 8), keyHash: randomUUID(), createdAt: Date.now(), revokedAt: null };
    await store.createRunnerKey(key);
    return { project, key };
  }
  /** Queries the call made. */
  async function counted<T>(call: () => Promise<T>): Promise<{ value: T; reads: number }> {
    queries = 0;
    const value = await call();
    return { value, reads: queries };
  }

  afterEach(async () => {
    await store?.close();
    await db?.drop();
  });

  it("reads once, then from memory until this process's own write changes the row", async () => {
    const { project, key } = await open();
    const first = await counted(() => store.findRunnerKeyWithProject(key.keyHash));
    expect(first.value?.project?.commandsHash).toBe('h0');
    expect(first.reads).toBe(1);
    const again = await counted(() => store.findRunnerKeyWithProject(key.keyHash));
    expect(again.value).toEqual(first.value);
    expect(again.reads).toBe(kind === 'sqlite' ? 0 : 1);
    expect((await counted(() => store.revokedRunnerKeys([key.id]))).value).toEqual([]);
    expect((await counted(() => store.revokedRunnerKeys([key.id]))).reads).toBe(kind === 'sqlite' ? 0 : 1);
    await store.getProject(project.id);
    expect((await counted(() => store.getProject(project.id))).reads).toBe(kind === 'sqlite' ? 0 : 1);

    await store.replaceCommands(project.id, [], 'h1');
    expect((await store.getProject(project.id))?.commandsHash).toBe('h1');
    expect((await store.findRunnerKeyWithProject(key.keyHash))?.project?.commandsHash).toBe('h1');
    expect(await store.revokeRunnerKey(key.id, 1234)).toBe(true);
    expect((await store.findRunnerKeyWithProject(key.keyHash))?.key.revokedAt).toBe(1234);
    expect(await store.revokedRunnerKeys([key.id])).toEqual([key.id]);
  });

  it('a read racing a write of the same row does not keep what it read', async () => {
    const { key } = await open();
    expect(await store.revokedRunnerKeys([key.id])).toEqual([]);
    // The revocation is written, then committed a moment later (group commit); a read in between
    // sees the row as last committed, and must not be served once the revocation is.
    let during: Promise<string[]> | undefined;
    afterQuery = (kind) => {
      if (kind === 'update' && !during) during = store.revokedRunnerKeys([key.id]);
    };
    await store.revokeRunnerKey(key.id, 99);
    afterQuery = () => undefined;
    expect(during).toBeDefined();
    const sawThen = await during;
    // On SQLite the read saw the row as committed before the revocation (PostgreSQL committed it already).
    if (kind === 'sqlite') expect(sawThen).toEqual([]);
    expect(await store.revokedRunnerKeys([key.id])).toEqual([key.id]);
    expect((await store.findRunnerKeyWithProject(key.keyHash))?.key.revokedAt).toBe(99);
  });

  // PostgreSQL reads every time (above): only SQLite's cache has something to miss.
  if (kind === 'sqlite') it("sees another connection's commit at once (an admin command next to the server)", async () => {
    const { project, key } = await open();
    expect(await store.revokedRunnerKeys([key.id])).toEqual([]);
    expect((await store.findRunnerKeyWithProject(key.keyHash))?.key.revokedAt).toBeNull();
    expect((await store.getProject(project.id))?.name).toBe(project.name);
    const other = new Database(path.join(db.dataDir, 'djangocommand.sqlite3'));
    try {
      other.prepare('UPDATE runner_keys SET revoked_at = ? WHERE id = ?').run(777, key.id);
      other.prepare('UPDATE projects SET name = ? WHERE id = ?').run('renamed', project.id);
    } finally {
      other.close();
    }
    expect(await store.revokedRunnerKeys([key.id])).toEqual([key.id]);
    expect((await store.findRunnerKeyWithProject(key.keyHash))?.key.revokedAt).toBe(777);
    expect((await store.getProject(project.id))?.name).toBe('renamed');
    expect(await store.findProjectByName(project.name)).toBeUndefined();
  });

  if (kind === 'sqlite') it('every write naming a cached table changes the stamp, with RETURNING too; reads and other tables do not', async () => {
    const { project } = await open();
    const { db: raw, rowChanges } = openDatabase({ dataDir: db.dataDir });
    try {
      const stamp = () => rowChanges!.stamp();
      let before = stamp();
      await raw.selectFrom('projects').selectAll().execute();
      await raw.updateTable('runners').set({ last_seen_at: 1 }).where('id', '=', 'none').execute();
      expect(stamp()).toBe(before);
      await raw.updateTable('projects').set({ commands_hash: 'r' }).where('id', '=', project.id).returning('id').execute();
      expect(stamp()).not.toBe(before);
      before = stamp();
      await raw.deleteFrom('runner_keys').where('id', '=', 'none').execute();
      expect(stamp()).not.toBe(before);
    } finally {
      await raw.destroy();
    }
  });

  it('hands out values no caller can change for the next', async () => {
    const { key } = await open();
    const found = await store.findRunnerKeyWithProject(key.keyHash);
    const second = await store.findRunnerKeyWithProject(key.keyHash);
    if (kind === 'sqlite') {
      expect(() => {
        (second!.key as { revokedAt: number | null }).revokedAt = 1;
      }).toThrow(TypeError);
    }
    expect(found?.key.revokedAt).toBeNull();
  });
});
