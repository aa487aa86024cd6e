/**
 * A fresh, empty database per test: a SQLite file in a new temporary folder, or a new
 * PostgreSQL database on the local server that scripts/setup-system.sh started.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore } from '../../src/store/openStore.js';
import type { Store } from '../../src/store/store.js';

export type DbKind = 'sqlite' | 'postgres';
export const DB_KINDS: DbKind[] = ['sqlite', 'postgres'];

/** Where the tests reach PostgreSQL; override with TEST_PG_URL (a database the role may create others from). */
export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://djangocommand:djangocommand@127.0.0.1:5432/postgres';

export interface FreshDatabase {
  kind: DbKind;
  dataDir: string;
  databaseUrl: string | undefined;
  drop(): Promise<void>;
}

export function tempDir(prefix = 'dc-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function freshDatabase(kind: DbKind): Promise<FreshDatabase> {
  const dataDir = tempDir();
  if (kind === 'sqlite') {
    return { kind, dataDir, databaseUrl: undefined, drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
  }
  const name = `dc_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = '/' + name;
  return {
    kind,
    dataDir,
    databaseUrl: url.toString(),
    drop: async () => {
      await dropDatabase(name);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * An autovacuum worker may still be visiting the database; it runs as a superuser, so
 * WITH (FORCE) may not end it for our role. It leaves within moments: try again for a while.
 */
async function dropDatabase(name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      const busy = code === '55006' || code === '42501';  // object_in_use, insufficient_privilege (autovacuum)
      if (!busy || attempt >= 40) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function freshStore(kind: DbKind): Promise<{ store: Store; db: FreshDatabase; close(): Promise<void> }> {
  const db = await freshDatabase(kind);
  const store = await openStore({ dataDir: db.dataDir, databaseUrl: db.databaseUrl });
  return {
    store,
    db,
    close: async () => {
      await store.close();
      await db.drop();
    },
  };
}
