/**
 * Read-only database mode inside the Django process (bootstrap.py), on SQLite and PostgreSQL:
 * every write path of the example project's `write_notes` command fails naming read-only mode
 * and leaves the rows as they were, reads work (in transactions and savepoints too), cold and
 * warm; and the Python API the shell uses (enable/disable_read_only, ReadOnlyError) holds,
 * including the database's own layer below Django. The facts come from
 * test/python/read_only_check.py; the expectations are here.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, freshDatabase, type FreshDatabase } from '../support/databases.js';
import { EXAMPLE_DIR, PYTHON, REPO } from '../support/serverProcess.js';

const CHECK = path.join(REPO, 'test/python/read_only_check.py');

interface Run {
  case: string;
  exit: number;
  stdout: string;
  stderr: string;
  before: number;
  after: number;
  tables_unchanged?: boolean;
}

interface Attempt {
  ok: boolean;
  value?: unknown;
  type?: string;
  read_only_error?: boolean;
  database_error?: boolean;
  message?: string;
}

const WRITES = ['create', 'update', 'delete', 'bulk_create', 'raw_insert', 'executemany', 'cte_insert'];

for (const kind of DB_KINDS) {
  describe(`read-only mode in the Django process (${kind})`, () => {
    let db: FreshDatabase;
    let env: NodeJS.ProcessEnv;
    const python = (args: string[]) => execFileSync(PYTHON, args, { cwd: EXAMPLE_DIR, env, encoding: 'utf8', maxBuffer: 16 << 20, timeout: 120_000 });
    const check = <T>(mode: string): T => JSON.parse(python([CHECK, mode])) as T;

    beforeAll(async () => {
      db = await freshDatabase(kind);
      env = {
        ...process.env,
        EXAMPLE_DB_PATH: path.join(db.dataDir, 'example.sqlite3'),
        EXAMPLE_SECOND_DB_PATH: path.join(db.dataDir, 'second.sqlite3'),
        ...(db.databaseUrl ? { DJANGOCOMMAND_EXAMPLE_DATABASE_URL: db.databaseUrl } : {}),
      };
      python(['manage.py', 'migrate', '-v', '0']);
      python(['manage.py', 'migrate', '-v', '0', '--database', 'second']);
      python(['manage.py', 'write_notes', 'create']);
      python(['manage.py', 'write_notes', 'create']);
    });
    afterAll(async () => {
      await db?.drop();
    });

    const expectRefused = (r: Run) => {
      expect(r.exit, `${r.case}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).toContain('read-only mode: this run may not write to the database');
      expect(r.stderr).toContain('to write, start a writable run');
      expect(r.after, r.case).toBe(r.before);
    };

    const expectModes = (runs: Run[]) => {
      const by = new Map(runs.map((r) => [r.case, r]));
      for (const how of ['count', 'read_in_transaction']) {
        const r = by.get(`read-only ${how}`)!;
        expect(r.exit, `${how}: ${r.stderr}`).toBe(0);
        expect(r.stdout.trim()).toBe(String(r.before));
        expect(r.after).toBe(r.before);
      }
      for (const how of WRITES) expectRefused(by.get(`read-only ${how}`)!);
      const sfu = by.get('read-only select_for_update')!;
      if (kind === 'postgres') {
        expectRefused(sfu);
        expect(sfu.stderr).toContain('SELECT ... FOR UPDATE refused');
      } else {
        // Django sends no FOR UPDATE to SQLite (it has no row locks): a plain read there.
        expect(sfu.exit).toBe(0);
        expect(sfu.after).toBe(sfu.before);
      }
      // A command that catches the error and carries on still exits non-zero.
      const swallow = by.get('read-only swallow')!;
      expect(swallow.exit).toBe(1);
      expect(swallow.stderr).toContain('read-only mode: 1 database write was refused; exit status 1');
      expect(swallow.after).toBe(swallow.before);
      for (const how of ['create', 'raw_insert']) {
        const r = by.get(`writable ${how}`)!;
        expect(r.exit, r.stderr).toBe(0);
        expect(r.after).toBe(r.before + 1);
      }
    };

    it('cold runs (bootstrap.py run-read-only): every write fails and changes nothing; reads and writable runs work', () => {
      const runs = check<Run[]>('cold');
      expectModes(runs);
      const migrate = runs.find((r) => r.case === 'read-only migrate demo zero')!;
      expect(migrate.exit).not.toBe(0);
      expect(migrate.stderr).toContain('read-only mode');
      expect(migrate.tables_unchanged).toBe(true);
    }, 120_000);

    it('warm runs ("read_only": true): the same, and the mode never leaks into the next fork', () => {
      const runs = check<Run[]>('warm');
      expectModes(runs);
      expectRefused(runs.find((r) => r.case === 'read-only create again')!);
    }, 120_000);

    it('the Python API the shell uses, and the database refusing writes below Django', () => {
      const f = check<Record<string, any>>('api');
      expect(f.vendor).toBe(kind === 'postgres' ? 'postgresql' : 'sqlite');
      expect([f.active_before, f.active, f.active_after_disable]).toEqual([false, true, false]);
      const refused = (a: Attempt) => {
        expect(a.ok).toBe(false);
        expect(a.read_only_error).toBe(true);
        expect(a.database_error).toBe(true);
        expect(a.message).toMatch(/^read-only mode: /);
      };
      refused(f.orm_create);
      refused(f.set_read_write);
      refused(f.after_reconnect_orm);
      refused(f.thread.orm);
      refused(f.second_alias);
      expect(f.second_alias_rows[1]).toBe(f.second_alias_rows[0]);
      // The database's own session setting: a write sent with the driver itself, around Django.
      for (const a of [f.driver_insert, f.after_reconnect_driver, f.thread.driver] as Attempt[]) {
        expect(a.ok).toBe(false);
        expect(a.message).toMatch(kind === 'postgres' ? /read-only transaction/ : /readonly database/);
      }
      expect(f.reads_in_transaction).toEqual({ ok: true, value: [f.rows_while_read_only[0], f.rows_while_read_only[0]] });
      expect(f.write_in_savepoint_then_read.ok).toBe(true);
      if (kind === 'postgres') {
        // psycopg2.sql.Composed statements are read as the text they become.
        expect(f.composed_select).toEqual({ ok: true, value: f.rows_while_read_only[0] });
        refused(f.composed_insert);
      }
      expect(f.rows_while_read_only[1]).toBe(f.rows_while_read_only[0]);
      // disable_read_only(): writable again, already-open connections included; enable again with the shell's hint.
      expect(f.orm_create_writable.ok).toBe(true);
      expect(f.driver_insert_writable).toEqual({ ok: true, value: 'inserted' });
      expect(f.rows_after_writable[1]).toBe(f.rows_after_writable[0] + 2);
      refused(f.orm_create_again);
      expect(f.orm_create_again.message).toContain('call writable("reason") to ask for a writable shell');

      const ws = f.write_statement as Record<string, string | null>;
      const reads = Object.entries(ws).filter(([, v]) => v === null).map(([k]) => k);
      expect(reads).toEqual([
        'SELECT 1', 'select * from t where a = %s', 'WITH x AS (SELECT 1) SELECT * FROM x', 'EXPLAIN SELECT 1',
        'SAVEPOINT "s1"', 'RELEASE SAVEPOINT "s1"', 'ROLLBACK TO SAVEPOINT "s1"', 'BEGIN', 'COMMIT',
        'PRAGMA table_info("demo_note")', "SELECT 'insert into x' AS text", 'SELECT "update" FROM t',
        '/* INSERT */ SELECT 1 -- DELETE', 'SET search_path TO public', 'SHOW TIME ZONE',
        "SELECT replace(text, 'a', 'b') FROM demo_note", 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED',
      ]);
      expect(ws['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d']).toBe('DELETE');
      expect(ws['SELECT 1; DELETE FROM t']).toBe('DELETE');
      expect(ws['SELECT * FROM t FOR NO KEY UPDATE']).toBe('SELECT ... FOR UPDATE');
      expect(ws['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE']).toBe('SET (transaction mode)');
      expect(ws["SELECT set_config('default_transaction_read_only', 'off', false)"]).toBe('SET_CONFIG');
      expect(Object.values(ws).filter((v) => v !== null)).toHaveLength(Object.keys(ws).length - reads.length);
    }, 60_000);
  });
}
