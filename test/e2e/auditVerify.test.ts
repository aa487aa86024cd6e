/**
 * `djangocommand admin audit verify|archive` through the real CLI, next to a real server, on
 * SQLite and PostgreSQL: appends from several processes at once chain whole, tampering as
 * someone with database access would do it is named with exit code 3, archiving leaves a signed
 * checkpoint, and the dashboard's API reports the last verification.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { DB_KINDS, freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';
import { openDatabase } from '../../src/store/openStore.js';
import { launchBrowser, signedIn, signIn as signInWithForm } from '../support/browser.js';

describe.each(DB_KINDS)('admin audit verify on %s', (kind) => {
  let db: FreshDatabase;
  let server: ServerHandle;

  afterEach(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('verifies, names the first tampered event with exit 3, archives behind a signed checkpoint', async () => {
    db = await freshDatabase(kind);
    server = await startServer(db);
    const { token } = await setUpProject(server);
    const chain = async () => (await fetch(`${server.url}/api/v1/audit/chain`, { headers: { authorization: `Bearer ${token}` } })).json();
    expect(await chain()).toEqual({ last_verification: null });

    // Several processes appending at once: the server (a sign-in) and admin commands.
    const signIn = () => fetch(`${server.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@localhost', password: 'wrong password' }) });
    const made = await Promise.all([...[1, 2, 3, 4].map((i) => server.admin(['create-token', '--name', `ci-${i}`, '--json'])), signIn(), signIn()]);
    for (const r of made.slice(0, 4)) expect((r as { code: number }).code).toBe(0);

    const ok = await server.admin(['audit', 'verify']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/The audit chain is whole: \d+ event\(s\) checked, from the start of the log/);
    const json = await server.admin(['audit', 'verify', '--json']);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ ok: true, problem: null, anchor: { seq: 0, checkpoint: false } });
    expect(report.events).toBeGreaterThanOrEqual(7);
    expect(await chain()).toMatchObject({ last_verification: { ok: true, events: report.events, head_seq: report.head.seq, problem: null } });

    // Archive everything so far; what follows still verifies from the checkpoint.
    const file = path.join(db.dataDir, 'audit-archive.jsonl');
    const archived = await server.admin(['audit', 'archive', '--before', new Date(Date.now() + 1).toISOString().replace(/\.\d+Z$/, 'Z'), '--to', file, '--json']);
    expect(archived.stderr).toBe('');
    const a = JSON.parse(archived.stdout);
    expect(a.events).toBeGreaterThan(0);
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(a.events);
    const again = await server.admin(['audit', 'archive', '--before', '2000-01-01', '--to', path.join(db.dataDir, 'none.jsonl')]);
    expect(again.stdout).toContain('nothing archived');
    await server.admin(['create-token', '--name', 'after-archive']);
    const fromCheckpoint = JSON.parse((await server.admin(['audit', 'verify', '--json'])).stdout);
    expect(fromCheckpoint).toMatchObject({ ok: true, anchor: { seq: a.through_seq, checkpoint: true } });

    // Someone with database access drops the triggers and edits an event.
    const raw = openDatabase(db).db;
    try {
      await expect(sql`UPDATE audit_events SET actor_label = 'mallory'`.execute(raw)).rejects.toThrow(/append-only/);
      if (kind === 'postgres') await sql`DROP TRIGGER audit_events_append_only ON audit_events`.execute(raw);
      else await sql`DROP TRIGGER audit_events_no_update`.execute(raw);
      const target = a.through_seq + 2;
      await sql`UPDATE audit_events SET details_json = '{"name":"innocent"}' WHERE seq = ${target}`.execute(raw);
      const broken = await server.admin(['audit', 'verify']);
      expect(broken.code).toBe(3);
      expect(broken.stdout).toContain(`BROKEN at event #${target}`);
      expect(broken.stdout).toContain('was changed');
      expect(await chain()).toMatchObject({ last_verification: { ok: false, problem: expect.stringContaining(`#${target}`) } });
      const brokenJson = JSON.parse((await server.admin(['audit', 'verify', '--json'])).stdout);
      expect(brokenJson).toMatchObject({ ok: false, problem: { kind: 'changed', seq: target } });

      // The dashboard's audit page says so (once is enough: the page does not depend on the database).
      if (kind === 'sqlite') {
        const browser = await launchBrowser();
        try {
          const { page } = browser;
          await signInWithForm(page, server.url + '/', 'admin@localhost', 'correct horse battery staple');
          await signedIn(page);
          await page.goto(server.url + '/#/audit');
          const status = page.getByTestId('audit-chain');
          await status.waitFor();
          expect(await status.getAttribute('data-ok')).toBe('false');
          expect(await status.textContent()).toMatch(new RegExp(`broken .*event #${target} \\(id \\d+\\) was changed`));
        } finally {
          await browser.close();
        }
      }

      // A forged checkpoint (moved to hide events) is not signed with the server key.
      if (kind === 'postgres') await sql`DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints`.execute(raw);
      else await sql`DROP TRIGGER audit_checkpoints_no_update`.execute(raw);
      await sql`UPDATE audit_checkpoints SET events = events + 1`.execute(raw);
      const forged = await server.admin(['audit', 'verify']);
      expect(forged.code).toBe(3);
      expect(forged.stdout).toContain(`checkpoint at #${a.through_seq} is not signed`);
    } finally {
      await raw.destroy();
    }
  });
});
