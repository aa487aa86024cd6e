/**
 * `admin backup` and `admin restore` on SQLite, with real server processes: a backup taken while
 * the server writes is whole; restore refuses while a server runs on the data folder and refuses
 * a file that is not a djangocommand database; a restored server starts and shows the data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';

describe('backup and restore (SQLite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle | undefined;
  const dirs: string[] = [];
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('backs up while the server writes, refuses to restore under a running server, restores and the server shows the data', async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const s = server;
    const { token } = await setUpProject(s);
    const createProject = async (name: string) =>
      (await fetch(s.url + '/api/v1/projects', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) })).status;
    const names = async (url: string) =>
      ((await (await fetch(url + '/api/v1/projects', { headers: { authorization: `Bearer ${token}` } })).json()) as { items: Array<{ name: string }> }).items.map((p) => p.name);
    for (let i = 0; i < 20; i++) expect(await createProject(`before-${i}`)).toBe(201);

    // The server keeps writing (projects, keys, audit events) while the backup runs.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) if ((await createProject(`during-${written}`)) === 201) written++;
    })();
    const backupDir = tempDir('dc-backup-');
    dirs.push(backupDir);
    const file = path.join(backupDir, 'dc.sqlite3');
    const taken = await runCli(['admin', 'backup', file, '--data-dir', db.dataDir, '--json']);
    writing = false;
    await writer;
    expect(taken.code, taken.stderr).toBe(0);
    const report = JSON.parse(taken.stdout);
    expect(report).toMatchObject({ path: file, bytes: fs.statSync(file).size });
    expect(report.duration_ms).toEqual(expect.any(Number));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(backupDir)).toEqual(['dc.sqlite3']);
    expect(written).toBeGreaterThan(0);

    // Not while a server runs on the data folder.
    const refused = await runCli(['admin', 'restore', file, '--data-dir', db.dataDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('DC_SERVER_RUNNING');
    expect(refused.stderr).toContain(String(s.process.pid));

    // Not a file that is not ours, nor a damaged one.
    const stranger = path.join(backupDir, 'other.sqlite3');
    fs.writeFileSync(stranger, 'not a database at all, just text that is long enough to look like a file');
    const wrong = await runCli(['admin', 'restore', stranger, '--data-dir', tempDir()]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('DC_NOT_A_BACKUP');
    const damaged = path.join(backupDir, 'damaged.sqlite3');
    const bytes = fs.readFileSync(file);
    const pageSize = bytes.readUInt16BE(16); // the SQLite header's page size
    bytes.fill(0x41, pageSize * 2, pageSize * 3);
    fs.writeFileSync(damaged, bytes);
    const target = tempDir();
    dirs.push(target);
    const broken = await runCli(['admin', 'restore', damaged, '--data-dir', target]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('DC_NOT_A_BACKUP');
    expect(broken.stderr).toContain('integrity');
    // Nothing left behind, in the data folder or next to the backups.
    expect(fs.readdirSync(target)).toEqual([]);
    expect(fs.readdirSync(backupDir).sort()).toEqual(['damaged.sqlite3', 'dc.sqlite3', 'other.sqlite3']);

    // Stop, write nothing more; restore over the live data folder: the old database is kept aside.
    await s.stop();
    const before = fs.readdirSync(db.dataDir);
    const restored = await runCli(['admin', 'restore', file, '--data-dir', db.dataDir]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain('kept as');
    const aside = fs.readdirSync(db.dataDir).filter((f) => f.startsWith('djangocommand.sqlite3.before-restore-') && !f.endsWith('-wal') && !f.endsWith('-shm'));
    expect(aside).toHaveLength(1);
    expect(before).toContain('djangocommand.sqlite3');

    server = await startServer(db);
    const shown = await names(server.url);
    for (let i = 0; i < 20; i++) expect(shown).toContain(`before-${i}`);
    // Consistent: a prefix of what was written during the backup, with no hole.
    const during = shown.filter((n) => n.startsWith('during-')).map((n) => Number(n.slice('during-'.length))).sort((a, b) => a - b);
    expect(during).toEqual(during.map((_, i) => i));
    expect(during.length).toBeLessThanOrEqual(written);

    // A fresh data folder takes the same backup.
    const fresh = tempDir();
    dirs.push(fresh);
    const into = await runCli(['admin', 'restore', file, '--data-dir', fresh]);
    expect(into.code, into.stderr).toBe(0);
    expect(into.stdout).toContain('secret key');
  });

  it('says to use pg_dump for PostgreSQL', async () => {
    const res = await runCli(['admin', 'backup', path.join(tempDir(), 'x'), '--database-url', 'postgres://u:p@127.0.0.1:1/db']);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain('pg_dump');
    expect(res.stderr).not.toContain('u:p@');
  });
});
