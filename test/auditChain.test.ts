/**
 * The hash-chained audit log on SQLite and PostgreSQL: appends from two processes at once, the
 * triggers, tampering as someone with database access would do it (triggers dropped first), the
 * upgrade of an existing log, and archiving behind a signed checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { DB_KINDS, freshDatabase, type DbKind, type FreshDatabase } from './support/databases.js';
import { runProgram } from './support/program.js';
import { openDatabase, openStore } from '../src/store/openStore.js';
import { migrations } from '../src/store/migrations.js';
import type { Store } from '../src/store/store.js';
import type { Core, CoreSettings } from '../src/core/context.js';
import { LocalNotifier } from '../src/core/notifier.js';
import { archiveAudit, verifyAuditChain } from '../src/core/auditChain.js';
import { SYSTEM_ACTOR } from '../src/core/audit.js';
import { eventHash } from '../src/domain/auditChain.js';
import type { NewAuditEvent } from '../src/domain/model.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KEY = randomBytes(32);

function event(i: number, over: Partial<NewAuditEvent> = {}): NewAuditEvent {
  return {
    at: 1_000 * i,
    actorType: 'user',
    actorId: 'u1',
    actorLabel: 'ada@example.com',
    address: '10.0.0.1',
    action: 'execution.create',
    projectId: null,
    executionId: null,
    outcome: 'ok',
    details: { command: 'migrate', i, nested: { b: 1, a: [1, 'two'] } },
    ...over,
  };
}

function coreOf(store: Store): Core {
  return { store, notifier: new LocalNotifier(), now: Date.now, settings: {} as CoreSettings };
}

/** What someone with write access to the database does first: the triggers go. */
async function dropTriggers(db: Kysely<any>, kind: DbKind): Promise<void> {
  for (const t of ['audit_events', 'audit_checkpoints', 'audit_verifications']) {
    if (kind === 'postgres') await sql`DROP TRIGGER ${sql.raw(`${t}_append_only`)} ON ${sql.table(t)}`.execute(db);
    else {
      await sql`DROP TRIGGER ${sql.raw(`${t}_no_update`)}`.execute(db);
      await sql`DROP TRIGGER ${sql.raw(`${t}_no_delete`)}`.execute(db);
    }
  }
}

describe.each(DB_KINDS)('audit chain on %s', (kind) => {
  let fresh: FreshDatabase;
  let store: Store;
  let raw: Kysely<any>;

  beforeEach(async () => {
    fresh = await freshDatabase(kind);
    store = await openStore(fresh);
    raw = openDatabase(fresh).db;
  });

  afterEach(async () => {
    await raw.destroy();
    await store.close();
    await fresh.drop();
  });

  async function append(n: number, from = 1): Promise<void> {
    for (let i = from; i < from + n; i++) await store.appendAudit(event(i));
  }

  it('chains every append and verifies whole; the chain survives odd text (NUL, emoji)', async () => {
    await append(5);
    await store.appendAudits([event(6, { actorLabel: 'nul\0 in a name 🎉' }), event(7, { details: { text: 'x\u0000y' } })]);
    const rows = await store.auditChain.readChain(0, 100);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(rows[1].prev_hash).toBe(rows[0].hash);
    const r = await verifyAuditChain(coreOf(store), KEY);
    expect(r).toMatchObject({ ok: true, events: 7, head: { seq: 7, hash: rows[6].hash }, problem: null });
    expect(await store.auditChain.latestVerification()).toMatchObject({ ok: true, events: 7, headSeq: 7 });
  });

  it('appends a batch larger than one INSERT takes, in order, each event with its own id', async () => {
    await append(2);
    const many = Array.from({ length: 150 }, (_, i) => event(3 + i, { details: { i } }));
    const stored = await store.appendAudits(many);
    expect(stored.map((e) => e.details)).toEqual(many.map((e) => e.details));
    expect(new Set(stored.map((e) => e.id)).size).toBe(150);
    const rows = await store.auditChain.readChain(0, 500);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 152 }, (_, i) => i + 1));
    // Each event's id is the row holding it.
    const byId = new Map(rows.map((r) => [r.id, r]));
    stored.forEach((e, i) => expect(JSON.parse(byId.get(e.id)!.details_json)).toEqual({ i }));
    expect(await verifyAuditChain(coreOf(store), KEY)).toMatchObject({ ok: true, events: 152 });
  });

  it('refuses UPDATE, DELETE (and TRUNCATE on PostgreSQL) of audit rows while the triggers are there', async () => {
    await append(3);
    await expect(sql`UPDATE audit_events SET action = 'nothing' WHERE seq = 2`.execute(raw)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM audit_events WHERE seq = 2`.execute(raw)).rejects.toThrow(/append-only/);
    if (kind === 'postgres') await expect(sql`TRUNCATE audit_events`.execute(raw)).rejects.toThrow(/append-only/);
    expect((await verifyAuditChain(coreOf(store), KEY)).ok).toBe(true);
  });

  it('names the first changed event', async () => {
    await append(10);
    await dropTriggers(raw, kind);
    await sql`UPDATE audit_events SET details_json = '{"command":"flush"}' WHERE seq = 4`.execute(raw);
    await sql`UPDATE audit_events SET actor_label = 'mallory' WHERE seq = 7`.execute(raw);
    const r = await verifyAuditChain(coreOf(store), KEY);
    expect(r.ok).toBe(false);
    expect(r.problem).toMatchObject({ kind: 'changed', seq: 4 });
    expect(r.head.seq).toBe(3);
    expect(await store.auditChain.latestVerification()).toMatchObject({ ok: false, problem: expect.stringContaining('#4') });
  });

  it('names an event changed with its hash rewritten (the next one no longer chains)', async () => {
    await append(6);
    await dropTriggers(raw, kind);
    const [row] = await store.auditChain.readChain(2, 1);
    const forged = { ...row, action: 'session.login' };
    await sql`UPDATE audit_events SET action = 'session.login', hash = ${eventHash(forged, 3, row.prev_hash!)} WHERE seq = 3`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'changed', seq: 3 });
  });

  it('names a removed event', async () => {
    await append(8);
    await dropTriggers(raw, kind);
    await sql`DELETE FROM audit_events WHERE seq = 5`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'removed', seq: 5 });
  });

  it('names an inserted event, with the later events renumbered to make room', async () => {
    await append(8);
    await dropTriggers(raw, kind);
    const [before] = await store.auditChain.readChain(3, 1);
    await sql`UPDATE audit_events SET seq = -seq WHERE seq >= 5`.execute(raw);
    await sql`UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`.execute(raw);
    const content = { at: 4_500, actor_type: 'user', actor_id: 'u9', actor_label: 'mallory', address: null, action: 'execution.create', project_id: null, execution_id: null, outcome: 'ok', details_json: '{}' };
    await sql`INSERT INTO audit_events (at, actor_type, actor_id, actor_label, address, action, project_id, execution_id, outcome, details_json, seq, prev_hash, hash)
              VALUES (4500, 'user', 'u9', 'mallory', NULL, 'execution.create', NULL, NULL, 'ok', '{}', 5, ${before.hash}, ${eventHash(content, 5, before.hash!)})`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'inserted', seq: 5 });
  });

  it('names a row inserted around the chain (no seq), and one appended with a made-up hash', async () => {
    await append(4);
    await sql`INSERT INTO audit_events (at, actor_type, actor_id, actor_label, address, action, project_id, execution_id, outcome, details_json)
              VALUES (1, 'user', 'u9', 'mallory', NULL, 'session.login', NULL, NULL, 'ok', '{}')`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'inserted', seq: null });
    await dropTriggers(raw, kind);
    await sql`DELETE FROM audit_events WHERE seq IS NULL`.execute(raw);
    await sql`INSERT INTO audit_events (at, actor_type, actor_id, actor_label, address, action, project_id, execution_id, outcome, details_json, seq, prev_hash, hash)
              VALUES (1, 'user', 'u9', 'mallory', NULL, 'session.login', NULL, NULL, 'ok', '{}', 5, ${'a'.repeat(64)}, ${'b'.repeat(64)})`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'changed', seq: 5 });
  });

  it('finds events removed from the end since the last verification, and a forged verification record', async () => {
    await append(10);
    expect((await verifyAuditChain(coreOf(store), KEY)).ok).toBe(true);
    await dropTriggers(raw, kind);
    await sql`DELETE FROM audit_events WHERE seq >= 9`.execute(raw);
    await sql`UPDATE audit_chain_head SET seq = 8`.execute(raw);
    const r = await verifyAuditChain(coreOf(store), KEY);
    expect(r.problem).toMatchObject({ kind: 'removed', seq: 9 });
    expect(r.problem?.message).toContain('#9–#10');
    // Hiding it with a verification record of one's own needs the server key.
    await sql`INSERT INTO audit_verifications (at, ok, events, head_seq, head_hash, problem, signature) VALUES (${Date.now()}, 1, 8, 8, 'x', NULL, ${'0'.repeat(64)})`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'verification' });
  });

  it('archives a prefix to JSON lines behind a signed checkpoint; the rest verifies; a tampered checkpoint fails', async () => {
    await append(10);
    const file = path.join(fresh.dataDir, 'audit-2026.jsonl');
    const archived = await archiveAudit(coreOf(store), SYSTEM_ACTOR, KEY, { before: 6_500, file });
    expect(archived).toMatchObject({ events: 6, firstSeq: 1, throughSeq: 6 });
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    // The archive holds what is needed to recompute every hash.
    for (const l of lines) expect(eventHash(l, l.seq, l.prev_hash)).toBe(l.hash);
    expect(await store.auditChain.countThrough(6)).toBe(0);
    // The archive itself was audited, after the checkpoint.
    const rest = await store.auditChain.readChain(0, 100);
    expect(rest.map((r) => r.seq)).toEqual([7, 8, 9, 10, 11]);
    expect(rest[4].action).toBe('audit.archive');
    const r = await verifyAuditChain(coreOf(store), KEY);
    expect(r).toMatchObject({ ok: true, events: 5, anchor: { seq: 6, checkpoint: true }, head: { seq: 11 } });
    // An existing file is never overwritten.
    await expect(archiveAudit(coreOf(store), SYSTEM_ACTOR, KEY, { before: 9_500, file })).rejects.toMatchObject({ code: 'DC_ARCHIVE_EXISTS' });
    expect(await store.auditChain.countThrough(9)).toBe(3);

    // Moving the checkpoint to hide an event removed after it: the signature no longer holds.
    await dropTriggers(raw, kind);
    await sql`DELETE FROM audit_events WHERE seq = 7`.execute(raw);
    await sql`UPDATE audit_checkpoints SET seq = 7, hash = ${rest[0].hash}`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'checkpoint', seq: 7 });
    // And without the checkpoint, the archived events are missing from the start.
    await sql`DELETE FROM audit_checkpoints`.execute(raw);
    expect((await verifyAuditChain(coreOf(store), KEY)).problem).toMatchObject({ kind: 'removed', seq: 1 });
  });

  it('refuses to archive a broken chain, removing nothing', async () => {
    await append(5);
    await dropTriggers(raw, kind);
    await sql`UPDATE audit_events SET outcome = 'denied' WHERE seq = 2`.execute(raw);
    const file = path.join(fresh.dataDir, 'a.jsonl');
    await expect(archiveAudit(coreOf(store), SYSTEM_ACTOR, KEY, { before: 4_500, file })).rejects.toMatchObject({ code: 'DC_AUDIT_CHAIN_BROKEN' });
    expect(fs.existsSync(file)).toBe(false);
    expect(await store.auditChain.countThrough(5)).toBe(5);
  });

  it('chains the events of a database upgraded from before migration 0012', async () => {
    const old = await freshDatabase(kind);
    try {
      const { db: kysely, caps } = openDatabase(old);
      const all = migrations(caps);
      const before = Object.fromEntries(Object.entries(all).filter(([name]) => name < '0012'));
      const migrator = new Migrator({ db: kysely, provider: { getMigrations: async (): Promise<Record<string, Migration>> => before }, migrationTableName: 'dc_migrations', migrationLockTableName: 'dc_migrations_lock' });
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      // More than one batch of the migration (1000).
      const OLD = 1500;
      const values = Array.from({ length: OLD }, (_, i) => ({ at: i + 1, actor_type: 'user', actor_id: 'u1', actor_label: 'ada', address: null, action: 'session.login', project_id: null, execution_id: null, outcome: 'ok', details_json: JSON.stringify({ i }) }));
      await kysely.insertInto('audit_events').values(values).execute();
      await kysely.destroy();
      const upgraded = await openStore(old);
      try {
        await upgraded.appendAudit(event(4));
        const rows = await upgraded.auditChain.readChain(OLD - 2, 10);
        expect(rows.map((r) => [r.seq, r.action, r.at])).toEqual([[OLD - 1, 'session.login', OLD - 1], [OLD, 'session.login', OLD], [OLD + 1, 'execution.create', 4000]]);
        expect(await verifyAuditChain(coreOf(upgraded), KEY)).toMatchObject({ ok: true, events: OLD + 1 });
      } finally {
        await upgraded.close();
      }
    } finally {
      await old.drop();
    }
  });

  it('appends what many callers send at once in one transaction, each caller\'s events together and in order', async () => {
    let updates = 0;
    const counted = await openStore({ ...fresh, onQuery: (k) => void (k === 'update' && updates++) });
    try {
      // Each transaction updates the chain head twice (its lock, then its move).
      const groups = Array.from({ length: 40 }, (_, g) => [event(100 + 2 * g, { actorLabel: `group ${g}` }), event(101 + 2 * g, { actorLabel: `group ${g}` })]);
      const calls = [...groups.map((g) => counted.appendAudits(g)), ...Array.from({ length: 40 }, (_, i) => counted.appendAudit(event(200 + i)))];
      const stored = await Promise.all(calls);
      expect(updates).toBe(2);
      const seqOf = new Map((await counted.auditChain.readChain(0, 500)).map((r) => [r.id, r.seq!]));
      expect(seqOf.size).toBe(120);
      for (const [g, group] of groups.entries()) {
        const [a, b] = stored[g] as Array<{ id: number; at: number }>;
        expect([a.at, b.at]).toEqual([group[0].at, group[1].at]);
        expect(seqOf.get(b.id)).toBe(seqOf.get(a.id)! + 1);
      }
      // Appends made while a transaction runs wait for it, then go in together.
      updates = 0;
      const first = counted.appendAudit(event(300));
      await new Promise((resolve) => setImmediate(resolve));
      const waiting = Array.from({ length: 10 }, (_, i) => counted.appendAudits([event(301 + 2 * i), event(302 + 2 * i)]));
      await Promise.all([first, ...waiting]);
      expect(updates).toBe(4);
      expect(await verifyAuditChain(coreOf(counted), KEY)).toMatchObject({ ok: true, events: 141 });
    } finally {
      await counted.close();
    }
  });

  it('fails only the appends of a transaction that fails; the next ones go through', async () => {
    await append(2);
    // Without the chain's head row, an append fails.
    const head = await raw.selectFrom('audit_chain_head').selectAll().execute();
    await raw.deleteFrom('audit_chain_head').execute();
    const failed = await Promise.allSettled([store.appendAudit(event(3)), store.appendAudits([event(4), event(5)])]);
    expect(failed.map((f) => f.status)).toEqual(['rejected', 'rejected']);
    await raw.insertInto('audit_chain_head').values(head).execute();
    await store.appendAudits([event(3), event(4)]);
    await store.appendAudit(event(5));
    expect(await verifyAuditChain(coreOf(store), KEY)).toMatchObject({ ok: true, events: 5 });
    // Events that cannot be stored fail their own caller, not those queued with them.
    const mixed = await Promise.allSettled([store.appendAudit(event(6)), store.appendAudits([event(7, { details: { n: 1n } })]), store.appendAudits([event(7), event(8)])]);
    expect(mixed.map((m) => m.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await verifyAuditChain(coreOf(store), KEY)).toMatchObject({ ok: true, events: 8 });
  });

  it('keeps the chain whole with two server processes appending at once', async () => {
    const script = `
      const { openStore } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/store/openStore.js'))});
      const store = await openStore({ dataDir: process.env.DATA_DIR, databaseUrl: process.env.DATABASE_URL || undefined });
      await Promise.all([0, 1, 2, 3].map(async (w) => {
        for (let i = 0; i < 40; i++) {
          const e = { at: Date.now(), actorType: 'system', actorId: null, actorLabel: process.pid + '/' + w, address: null, action: 'test.append', projectId: null, executionId: null, outcome: 'ok', details: { i } };
          if (i % 10 === 0) await store.appendAudits([e, { ...e, details: { i, second: true } }]);
          else await store.appendAudit(e);
        }
      }));
      await store.close();
    `;
    const env = { ...process.env, DATA_DIR: fresh.dataDir, DATABASE_URL: fresh.databaseUrl ?? '' };
    const runs = await Promise.all([1, 2].map(() => runProgram(process.execPath, ['--input-type=module', '-e', script], { env, cwd: ROOT })));
    for (const run of runs) expect(run.stderr).toBe('');
    const r = await verifyAuditChain(coreOf(store), KEY);
    expect(r).toMatchObject({ ok: true, events: 2 * 4 * 44, head: { seq: 2 * 4 * 44 } });
  });
});
