/**
 * Which server processes use a data folder: each running server keeps a file
 * `<data dir>/run/server-<pid>.json` (removed when it stops). `admin restore` refuses while one of
 * them is alive on this host. A file left by a crash names a process that is gone: ignored.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ServerRecord {
  pid: number;
  hostname: string;
  started_at: string;
  url: string;
}

const runDir = (dataDir: string) => path.join(dataDir, 'run');

export function writePidFile(dataDir: string, url: string): () => void {
  fs.mkdirSync(runDir(dataDir), { recursive: true, mode: 0o700 });
  const file = path.join(runDir(dataDir), `server-${process.pid}.json`);
  const record: ServerRecord = { pid: process.pid, hostname: os.hostname(), started_at: new Date().toISOString(), url };
  fs.writeFileSync(file, JSON.stringify(record) + '\n', { mode: 0o600 });
  return () => fs.rmSync(file, { force: true });
}

/** Servers recorded in the data folder whose process is alive on this host. */
export function runningServers(dataDir: string): ServerRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(runDir(dataDir)).filter((n) => /^server-\d+\.json$/.test(n));
  } catch {
    return [];
  }
  const alive: ServerRecord[] = [];
  for (const name of names) {
    let r: ServerRecord;
    try {
      r = JSON.parse(fs.readFileSync(path.join(runDir(dataDir), name), 'utf8')) as ServerRecord;
    } catch {
      continue;
    }
    if (r.hostname !== os.hostname() || !Number.isSafeInteger(r.pid)) continue;
    try {
      process.kill(r.pid, 0);
      alive.push(r);
    } catch (err) {
      // EPERM: it exists, as another user.
      if ((err as NodeJS.ErrnoException).code === 'EPERM') alive.push(r);
    }
  }
  return alive;
}
