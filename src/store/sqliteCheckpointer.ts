/**
 * Copies SQLite's write-ahead log back into the database file from a worker thread. SQLite does
 * it by itself every 1,000 pages, inside a commit on the event loop: under load that was two
 * thirds of what commits cost (bench/executionThroughput.ts). A passive checkpoint never waits
 * for the server's writes nor makes them wait, so the event loop only appends to the log.
 * If the worker cannot run, SQLite's own checkpoints are turned back on.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Database as SqliteDatabase } from 'better-sqlite3';

/** What SQLite itself does: a checkpoint after this many pages of log. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

export function startCheckpointer(db: SqliteDatabase, file: string): () => Promise<void> {
  const script = new URL('./sqliteCheckpointWorker.js', import.meta.url);
  // Not there when this module is loaded from its TypeScript source (the in-process tests).
  if (!fs.existsSync(fileURLToPath(script))) return async () => undefined;
  let worker: Worker;
  try {
    worker = new Worker(script, { workerData: { file } });
  } catch {
    return async () => undefined;
  }
  let stopping = false;
  const fallBack = () => {
    if (!stopping && db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
  };
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  worker.unref();
  db.pragma('wal_autocheckpoint = 0');
  return async () => {
    stopping = true;
    await worker.terminate();
  };
}
