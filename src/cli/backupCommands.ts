/**
 * `djangocommand admin backup PATH` and `admin restore PATH`, for the SQLite database in the data
 * folder. Backup uses SQLite's online backup API: a consistent copy while the server runs and
 * writes (readers never block its writers in WAL mode), written to a temporary file and renamed
 * into place. Restore refuses while a server runs on the data folder, checks that the file is a
 * whole djangocommand database (integrity check, migrations this version knows), keeps the current
 * database aside and puts the backup in its place.
 * PostgreSQL is backed up with pg_dump (see the README); the secret key file is never in a backup.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { resolveServerConfig } from '../config/serverConfig.js';
import { UserError } from '../shared/errors.js';
import { runningServers } from '../server/pidFile.js';
import { migrations } from '../store/migrations.js';
import { CAPABILITIES } from '../store/dialects.js';

const DB_FILE = 'djangocommand.sqlite3';
const SECRET_KEY_FILE = 'secret.key';
const out = (line: string): void => void process.stdout.write(line + '\n');
const require = createRequire(import.meta.url);

interface Flags {
  dataDir?: string;
  databaseUrl?: string;
  json?: boolean;
}

type SqliteDatabase = import('better-sqlite3').Database;

function openSqlite(file: string, readonly: boolean): SqliteDatabase {
  let BetterSqlite3: typeof import('better-sqlite3');
  try {
    BetterSqlite3 = require('better-sqlite3');
  } catch {
    throw new UserError('DC_CONFIG', 'The SQLite driver (better-sqlite3) is not installed: install it with `npm install better-sqlite3`.', undefined, { exitCode: 2 });
  }
  return new BetterSqlite3(file, { readonly, fileMustExist: true });
}

/** The data folder's SQLite file; PostgreSQL has its own tools. */
function sqliteFile(flags: Flags, verb: string): { dataDir: string; file: string } {
  const config = resolveServerConfig({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl });
  if (config.databaseUrl && !config.databaseUrl.startsWith('sqlite:')) {
    throw new UserError('DC_CONFIG', `admin ${verb} is for the SQLite database; with PostgreSQL use pg_dump / pg_restore (README: "Backups"), and keep ${SECRET_KEY_FILE} of the data folder too.`, undefined, { exitCode: 2 });
  }
  const file = config.databaseUrl ? config.databaseUrl.slice('sqlite:'.length).replace(/^\/\//, '') : path.join(config.dataDir, DB_FILE);
  return { dataDir: config.dataDir, file: path.resolve(file) };
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export async function backup(target: string, flags: Flags): Promise<{ path: string; bytes: number; ms: number }> {
  const { file } = sqliteFile(flags, 'backup');
  if (!fs.existsSync(file)) throw new UserError('DC_CONFIG', `No database at ${file}: is --data-dir (DJANGOCOMMAND_DATA_DIR) right?`, undefined, { exitCode: 2 });
  const dest = path.resolve(target);
  if (dest === file) throw new UserError('DC_VALIDATION', 'The backup must go to another file than the database itself.', undefined, { exitCode: 2 });
  if (!fs.existsSync(path.dirname(dest))) throw new UserError('DC_VALIDATION', `The folder ${path.dirname(dest)} does not exist.`, undefined, { exitCode: 2 });
  const started = Date.now();
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  const db = openSqlite(file, false);
  try {
    db.pragma('busy_timeout = 5000');
    // The first step copies 100 pages; the rest in one step, so a server writing all the time
    // cannot make it start over again and again.
    await db.backup(tmp, { progress: () => 0x7fffffff });
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error('backup failed', { cause: err });
  } finally {
    db.close();
  }
  // A backup holds password hashes and runner key hashes: owner only.
  fs.chmodSync(tmp, 0o600);
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, dest);
  return { path: dest, bytes: fs.statSync(dest).size, ms: Date.now() - started };
}

/** Checks `file` is a whole djangocommand database this version can open; returns its migrations. */
export function checkBackup(file: string, shownAs = file): string[] {
  let db: SqliteDatabase;
  try {
    // Read-write: a database in WAL mode cannot always be opened read-only (it needs its -shm file).
    db = openSqlite(file, false);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError('DC_NOT_A_BACKUP', `${shownAs} cannot be opened as SQLite (${(err as Error).message}).`, undefined, { exitCode: 1 });
  }
  try {
    let result: string;
    try {
      result = String(db.pragma('integrity_check', { simple: true }));
    } catch (err) {
      throw new UserError('DC_NOT_A_BACKUP', `${shownAs} is not an SQLite database (${(err as Error).message}).`, undefined, { exitCode: 1 });
    }
    if (result !== 'ok') throw new UserError('DC_NOT_A_BACKUP', `${shownAs} failed SQLite's integrity check: ${result.slice(0, 300)}`, undefined, { exitCode: 1 });
    const hasMigrations = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dc_migrations'").get();
    if (!hasMigrations) throw new UserError('DC_NOT_A_BACKUP', `${shownAs} is an SQLite database, but not a djangocommand one (no dc_migrations table).`, undefined, { exitCode: 1 });
    const applied = (db.prepare('SELECT name FROM dc_migrations ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
    if (!applied.includes('0001_initial')) throw new UserError('DC_NOT_A_BACKUP', `${shownAs} has no djangocommand schema.`, undefined, { exitCode: 1 });
    const known = new Set(Object.keys(migrations(CAPABILITIES.sqlite)));
    const unknown = applied.filter((m) => !known.has(m));
    if (unknown.length > 0) {
      throw new UserError('DC_NOT_A_BACKUP', `${shownAs} comes from a newer djangocommand (migrations ${unknown.join(', ')} are unknown to this version): upgrade first.`, undefined, { exitCode: 1 });
    }
    return applied;
  } finally {
    db.close();
  }
}

export function restore(source: string, flags: Flags): { path: string; keptAside: string | null; bytes: number } {
  const { dataDir, file } = sqliteFile(flags, 'restore');
  const from = path.resolve(source);
  if (!fs.existsSync(from)) throw new UserError('DC_VALIDATION', `No file ${from}.`, undefined, { exitCode: 2 });
  if (from === file) throw new UserError('DC_VALIDATION', 'That is the database itself.', undefined, { exitCode: 2 });
  const running = runningServers(dataDir);
  if (running.length > 0) {
    throw new UserError(
      'DC_SERVER_RUNNING',
      `A server is running on ${dataDir} (pid ${running.map((r) => r.pid).join(', ')}): stop it, then restore. (A file in ${path.join(dataDir, 'run')} records it.)`, undefined, { exitCode: 1 },
    );
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // The copy is what gets checked: the very bytes that take the database's place (and the
  // backup itself may sit on read-only media).
  const tmp = `${file}.restore-${process.pid}`;
  const removeTmp = () => ['', '-wal', '-shm', '-journal'].forEach((suffix) => fs.rmSync(tmp + suffix, { force: true }));
  fs.copyFileSync(from, tmp);
  fs.chmodSync(tmp, 0o600);
  try {
    checkBackup(tmp, from);
  } catch (err) {
    removeTmp();
    throw err;
  }
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  let keptAside: string | null = null;
  if (fs.existsSync(file)) {
    keptAside = `${file}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(file, keptAside);
    // The old database's write-ahead log belongs to it: applied to the restored file it would corrupt it.
    for (const suffix of ['-wal', '-shm']) if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, keptAside + suffix);
  }
  fs.renameSync(tmp, file);
  return { path: file, keptAside, bytes: fs.statSync(file).size };
}

/** Adds `backup` and `restore` to the `admin` command (registered by serverCommands.ts). */
export function registerBackupCommands(program: Command): void {
  const admin = program.commands.find((c) => c.name() === 'admin');
  if (!admin) throw new Error('the admin command must be registered first');
  const dbOptions = (cmd: Command) =>
    cmd.option('--data-dir <dir>', 'data folder holding the SQLite database (env DJANGOCOMMAND_DATA_DIR)').option('--database-url <url>', 'sqlite:PATH (PostgreSQL: use pg_dump)').option('--json', 'print JSON');

  dbOptions(admin.command('backup <path>'))
    .description('Copy the SQLite database to PATH, consistent while the server runs (SQLite online backup). Keep the secret key file apart from it.')
    .action(async (target: string, flags: Flags) => {
      const r = await backup(target, flags);
      if (flags.json) return out(JSON.stringify({ path: r.path, bytes: r.bytes, duration_ms: r.ms }));
      out(`Backed up to ${r.path}: ${mib(r.bytes)} in ${(r.ms / 1000).toFixed(2)} s.`);
      const { dataDir } = sqliteFile(flags, 'backup');
      if (fs.existsSync(path.join(dataDir, SECRET_KEY_FILE))) {
        out(`Also keep ${path.join(dataDir, SECRET_KEY_FILE)} (somewhere else): notification channel secrets in the backup are encrypted with it.`);
      }
    });

  dbOptions(admin.command('restore <path>'))
    .description('Replace the SQLite database with a backup (the server must be stopped); the current database is kept aside.')
    .action((source: string, flags: Flags) => {
      const r = restore(source, flags);
      if (flags.json) return out(JSON.stringify({ path: r.path, bytes: r.bytes, kept_aside: r.keptAside }));
      out(`Restored ${path.resolve(source)} to ${r.path} (${mib(r.bytes)}).`);
      if (r.keptAside) out(`The database it replaced is kept as ${r.keptAside}.`);
      const { dataDir } = sqliteFile(flags, 'restore');
      if (!fs.existsSync(path.join(dataDir, SECRET_KEY_FILE)) && !process.env.DJANGOCOMMAND_SECRET_KEY) {
        out(`Put the secret key file of the backed-up server at ${path.join(dataDir, SECRET_KEY_FILE)} (or set DJANGOCOMMAND_SECRET_KEY) before starting: channel secrets need it.`);
      }
    });
}
