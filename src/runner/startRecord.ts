/**
 * What `start` remembers about a project folder: the interpreter, the settings module and the
 * state folder it used. `status`, `stop` and `restart` run in the same folder (or with the same
 * --project-dir) read it, so they find the runner without --python or --state-dir and without
 * starting Python (the state folder is derived from BASE_DIR, which only Django can tell).
 *
 * One small file per user and project folder: <tmp>/djangocommand-start-<uid>-<12 hex of
 * sha256(project folder)>.json. It is trusted only when it is a regular file of this user that
 * nobody else may write (the temporary folder is shared).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface StartRecord {
  project_dir: string;
  python: string;
  settings: string | null;
  state_dir: string;
  started_at: string;
}

/** The project folder as the key: its real path, so a symlink or `.` finds the same file. */
export function projectKey(projectDir: string): string {
  try {
    return fs.realpathSync(projectDir);
  } catch {
    return path.resolve(projectDir);
  }
}

export function startRecordFile(projectDir: string): string {
  const hash = createHash('sha256').update(projectKey(projectDir)).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `djangocommand-start-${process.getuid?.() ?? 'user'}-${hash}.json`);
}

/** Written by every start; a failure is only logged by the caller (status then needs --state-dir). */
export function writeStartRecord(rec: Omit<StartRecord, 'started_at' | 'project_dir'> & { project_dir: string }): void {
  const file = startRecordFile(rec.project_dir);
  const full: StartRecord = { ...rec, project_dir: projectKey(rec.project_dir), started_at: new Date().toISOString() };
  const tmp = `${file}.${randomBytes(6).toString('hex')}`;
  fs.writeFileSync(tmp, JSON.stringify(full, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function readStartRecord(projectDir: string): StartRecord | undefined {
  const file = startRecordFile(projectDir);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    const mine = process.getuid === undefined || st.uid === process.getuid();
    if (!st.isFile() || !mine || (st.mode & 0o022) !== 0) return undefined;
    const rec = JSON.parse(fs.readFileSync(fd, 'utf8')) as StartRecord;
    if (rec.project_dir !== projectKey(projectDir) || typeof rec.state_dir !== 'string' || typeof rec.python !== 'string') return undefined;
    return rec;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
