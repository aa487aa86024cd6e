/** The worker of sqliteCheckpointer.ts: a passive checkpoint whenever the log has grown. */
import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';

const INTERVAL_MS = 200;

const require = createRequire(import.meta.url);
const BetterSqlite3: typeof import('better-sqlite3') = require('better-sqlite3');
const db = new BetterSqlite3((workerData as { file: string }).file);
db.pragma('busy_timeout = 5000');

setInterval(() => db.pragma('wal_checkpoint(PASSIVE)'), INTERVAL_MS);
