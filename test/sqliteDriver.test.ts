/**
 * The SQLite driver's group commit (src/store/sqliteDriver.ts) and its checkpoints off the event
 * loop (sqliteCheckpointer.ts): what a caller is told is on disk is on disk, seen by another
 * connection and kept through a SIGKILL; a rolled-back transaction undoes only its own writes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { sql, type Kysely } from 'kysely';

// The compiled driver, as the server runs it: its checkpoint worker is a compiled file of its own.
const { openSqlite }: typeof import('../src/store/dialects.js') = await import(path.resolve('dist/src/store/dialects.js'));

const require = createRequire(import.meta.url);
const BetterSqlite3: typeof import('better-sqlite3') = require('better-sqlite3');

const dirs: string[] = [];
const opened: Array<Kysely<any>> = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.destroy().catch(() => undefined);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function fresh(): Promise<{ db: Kysely<any>; file: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-sqlite-'));
  dirs.push(dir);
  const file = path.join(dir, 'db.sqlite3');
  const db = openSqlite(file) as unknown as Kysely<any>;
  opened.push(db);
  await sql`create table t (id integer primary key, v text not null unique)`.execute(db);
  return { db, file };
}

/** What another process would read: a second connection of its own. */
function otherConnection(file: string): import('better-sqlite3').Database {
  const other = new BetterSqlite3(file, { readonly: true });
  return other;
}

describe('SQLite group commit', () => {
  it('a write that resolved is committed: another connection sees it at once', async () => {
    const { db, file } = await fresh();
    const other = otherConnection(file);
    try {
      const writes = Array.from({ length: 50 }, (_, i) => db.insertInto('t').values({ v: `row ${i}` }).execute());
      // Each write, as it resolves, is visible to the other connection (not merely to this one).
      await Promise.all(writes.map((w, i) => w.then(() => expect(other.prepare('select count(*) as n from t where v = ?').get(`row ${i}`)).toEqual({ n: 1 }))));
      expect(other.prepare('select count(*) as n from t').get()).toEqual({ n: 50 });
    } finally {
      other.close();
    }
  });

  it('a read never shows a write that is not committed yet, and never waits for one', async () => {
    const { db, file } = await fresh();
    const other = otherConnection(file);
    try {
      let seen = 0;
      for (let i = 0; i < 200; i++) {
        const write = db.insertInto('t').values({ v: `w${i}` }).execute();
        const rows = await db.selectFrom('t').select('v').where('v', '=', `w${i}`).execute();
        // Whatever the read returned is on disk already: another connection sees it too.
        if (rows.length > 0) {
          seen++;
          expect(other.prepare('select count(*) as n from t where v = ?').get(`w${i}`)).toEqual({ n: 1 });
        }
        await write;
        expect((await db.selectFrom('t').select('v').where('v', '=', `w${i}`).execute()).length).toBe(1);
      }
      // Read before the commit of the turn, the write is not there yet.
      expect(seen).toBeLessThan(200);
    } finally {
      other.close();
    }
  });

  it('a transaction that fails undoes its own writes only, not those of others committed with it', async () => {
    const { db } = await fresh();
    const ok1 = db.transaction().execute((trx) => trx.insertInto('t').values({ v: 'kept 1' }).execute());
    const failed = db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ v: 'undone' }).execute();
      await trx.insertInto('t').values({ v: 'kept 1' }).execute(); // unique: fails
    });
    const ok2 = db.insertInto('t').values({ v: 'kept 2' }).execute();
    await expect(failed).rejects.toThrow(/UNIQUE/);
    await ok1;
    await ok2;
    expect((await db.selectFrom('t').select('v').orderBy('v').execute()).map((r) => r.v)).toEqual(['kept 1', 'kept 2']);
  });

  it('a failed statement outside a transaction leaves the other writes of its batch alone', async () => {
    const { db } = await fresh();
    const a = db.insertInto('t').values({ v: 'a' }).execute();
    const dup = db.insertInto('t').values({ v: 'a' }).execute();
    const b = db.insertInto('t').values({ v: 'b' }).execute();
    await expect(dup).rejects.toThrow(/UNIQUE/);
    await Promise.all([a, b]);
    expect((await db.selectFrom('t').select('v').orderBy('v').execute()).map((r) => r.v)).toEqual(['a', 'b']);
  });

  it('what a process was told is stored survives its SIGKILL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-sqlite-'));
    dirs.push(dir);
    const file = path.join(dir, 'db.sqlite3');
    // A child writes in a loop, printing each id once its write resolved; it is killed mid-stream.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        import { sql } from 'kysely';
        import { openSqlite } from ${JSON.stringify(path.resolve('dist/src/store/dialects.js'))};
        const db = openSqlite(${JSON.stringify(file)});
        await sql\`create table t (id integer primary key, v text not null)\`.execute(db);
        let i = 0;
        const writer = async () => { for (;;) { const n = i++; await db.insertInto('t').values({ v: 'x'.repeat(200) + n }).execute(); process.stdout.write(n + '\\n'); } };
        for (let k = 0; k < 8; k++) void writer();
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const acknowledged: number[] = [];
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      acknowledged.push(...lines.map(Number));
      if (acknowledged.length >= 3000) child.kill('SIGKILL');
    });
    const giveUp = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await new Promise((resolve) => child.once('exit', resolve));
    clearTimeout(giveUp);
    expect(acknowledged.length).toBeGreaterThanOrEqual(3000);
    const after = new BetterSqlite3(file);
    try {
      const stored = new Set((after.prepare('select v from t').all() as Array<{ v: string }>).map((r) => Number(r.v.slice(200))));
      expect(acknowledged.filter((n) => !stored.has(n))).toEqual([]);
    } finally {
      after.close();
    }
  });

  it('copies the log into the database file from its worker, with SQLite’s own checkpoints off', async () => {
    const { db, file } = await fresh();
    expect((await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db)).rows[0].wal_autocheckpoint).toBe(0);
    const before = fs.statSync(file).size;
    for (let i = 0; i < 20; i++) await db.insertInto('t').values(Array.from({ length: 50 }, (_, k) => ({ v: `${i}-${k}-${'y'.repeat(2000)}` }))).execute();
    // 2 MB went to the log; the worker's passive checkpoint (every 200 ms) moves it into the file.
    const deadline = Date.now() + 5000;
    while (fs.statSync(file).size < before + 2_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(fs.statSync(file).size).toBeGreaterThan(before + 2_000_000);
  });
});
