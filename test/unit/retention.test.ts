/**
 * Retention on real SQLite and PostgreSQL: old finished executions and their output go, in
 * batches; active, young and a schedule's newest runs stay; the byte limit purges oldest first;
 * each deleting transaction appends its audit event before it commits.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { DB_KINDS, freshStore } from '../support/databases.js';
import { openDatabase } from '../../src/store/openStore.js';
import type { Database } from '../../src/store/schema.js';
import type { Core } from '../../src/core/context.js';
import { DEFAULT_CORE_SETTINGS } from '../../src/core/context.js';
import { LocalNotifier } from '../../src/core/notifier.js';
import { createProject } from '../../src/core/projects.js';
import { hostActor } from '../../src/core/audit.js';
import { DAY_MS, effectiveLimits, purgeOnce, setProjectRetention, startRetention } from '../../src/core/retention.js';
import { isUserError } from '../../src/shared/errors.js';

const NOW = Date.UTC(2026, 5, 1);
const HOUR = 3600_000;

interface Row {
  status?: string;
  finishedAgoMs?: number | null;
  createdAgoMs?: number;
  scheduleId?: string | null;
  chunks?: number;
  bytesPerChunk?: number;
}

describe.each(DB_KINDS)('retention on %s', (kind) => {
  let store: Awaited<ReturnType<typeof freshStore>>;
  let db: Kysely<Database>;
  let core: Core;

  beforeEach(async () => {
    store = await freshStore(kind);
    db = openDatabase({ dataDir: store.db.dataDir, databaseUrl: store.db.databaseUrl }).db;
    core = { store: store.store, notifier: new LocalNotifier(), now: () => NOW, settings: DEFAULT_CORE_SETTINGS };
  });
  afterEach(async () => {
    await db.destroy();
    await store.close();
  });

  /** Inserts executions (with output chunks) straight into the database, as old as asked. */
  async function insert(projectId: string, n: number, r: Row): Promise<string[]> {
    const ids: string[] = [];
    const rows = [];
    const chunks = [];
    for (let i = 0; i < n; i++) {
      const id = randomUUID();
      ids.push(id);
      const count = r.chunks ?? 1;
      const bytes = r.bytesPerChunk ?? 10;
      const finishedAt = r.finishedAgoMs === null ? null : NOW - (r.finishedAgoMs ?? 40 * DAY_MS) + i;
      rows.push({
        id,
        project_id: projectId,
        command: 'check',
        args: '',
        argv_json: '[]',
        status: r.status ?? 'succeeded',
        timeout_seconds: 60,
        created_at: NOW - (r.createdAgoMs ?? 41 * DAY_MS) + i,
        created_by_type: 'token',
        created_by_label: 'a@b.c',
        finished_at: finishedAt,
        started_at: finishedAt === null ? null : finishedAt - 1000,
        schedule_id: r.scheduleId ?? null,
        output_bytes: count * bytes,
        output_chunks: count,
        output_last_seq: count,
      });
      for (let seq = 1; seq <= count; seq++) chunks.push({ execution_id: id, seq, stream: 'stdout', data: 'x'.repeat(bytes), line_times_json: '[]', received_at: NOW });
    }
    for (let i = 0; i < rows.length; i += 200) await db.insertInto('executions').values(rows.slice(i, i + 200) as never).execute();
    for (let i = 0; i < chunks.length; i += 500) await db.insertInto('output_chunks').values(chunks.slice(i, i + 500)).execute();
    return ids;
  }

  const remaining = async (ids: string[]) => (await db.selectFrom('executions').select('id').where('id', 'in', ids).execute()).length;
  const chunksOf = async (ids: string[]) => Number((await db.selectFrom('output_chunks').select((eb) => eb.fn.countAll<number>().as('n')).where('execution_id', 'in', ids).executeTakeFirstOrThrow()).n);

  it('purges finished executions older than the days limit in batches; active, young and schedules\' newest runs stay', async () => {
    const { project } = await createProject(core, hostActor(), 'shop');
    const { project: other } = await createProject(core, hostActor(), 'other');
    await setProjectRetention(core, hostActor(), project, { days: 30 });
    const old = await insert(project.id, 1100, {});
    const huge = await insert(project.id, 1, { chunks: 4500 });
    const young = await insert(project.id, 3, { finishedAgoMs: 10 * DAY_MS });
    const active = [...(await insert(project.id, 1, { status: 'queued', finishedAgoMs: null })), ...(await insert(project.id, 1, { status: 'running', finishedAgoMs: null }))];
    const scheduled = await insert(project.id, 25, { scheduleId: 's1' });
    const othersOld = await insert(other.id, 5, {});
    const { project: third } = await createProject(core, hostActor(), 'third');
    await setProjectRetention(core, hostActor(), third, { maxOutputBytes: 1 << 30 });
    // Without server-wide limits a pass looks only at projects with limits of their own.
    const own = await store.store.retention.listProjectRetention({ withOwnLimitsOnly: true });
    expect(own.map((r) => r.projectId).sort()).toEqual([project.id, third.id].sort());

    const batches: number[] = [];
    const report = await purgeOnce(core, { days: 0, maxOutputBytes: 0 }, { pause: async () => void batches.push(Date.now()) });

    expect(report.executions).toBe(1100 + 1 + 5);
    // 500 executions per transaction at most, and the huge one's 4,500 chunks trimmed apart first.
    expect(report.batches).toBeGreaterThanOrEqual(4);
    expect(batches.length).toBeGreaterThanOrEqual(report.batches + 2);
    expect(await remaining(old)).toBe(0);
    expect(await remaining(huge)).toBe(0);
    expect(await chunksOf([...old, ...huge])).toBe(0);
    expect(await remaining(young)).toBe(3);
    expect(await remaining(active)).toBe(2);
    // The newest 20 of the schedule stay, the 5 oldest go.
    expect(await remaining(scheduled)).toBe(20);
    expect(await remaining(scheduled.slice(0, 5))).toBe(0);
    expect(await chunksOf(young)).toBe(3);
    // No limit of its own and no server default: untouched.
    expect(await remaining(othersOld)).toBe(5);

    // One audit event per deleting transaction, naming the project, the rule and what went.
    const audit = (await store.store.listAudit({ action: 'retention.purge' }, 50)).items;
    expect(audit).toHaveLength(report.batches);
    expect(audit.every((e) => e.projectId === project.id && e.details.rule === 'days')).toBe(true);
    expect(audit.reduce((n, e) => n + Number(e.details.executions), 0)).toBe(1106);
    expect(audit.reduce((n, e) => n + Number(e.details.output_bytes), 0)).toBe(report.outputBytes);
    expect(audit.every((e) => Number(e.details.finished_to) < NOW - 30 * DAY_MS && Number(e.details.finished_from) <= Number(e.details.finished_to))).toBe(true);
    expect(audit[0].details).toMatchObject({ limits: { days: 30, max_output_bytes: 0 }, own_limits: { days: 30, max_output_bytes: null } });
    expect(report.projects).toEqual([{ projectId: project.id, executions: 1106, outputBytes: report.outputBytes }]);

    // A second pass has nothing to do and records nothing.
    expect((await purgeOnce(core, { days: 0, maxOutputBytes: 0 }, { pause: async () => undefined })).executions).toBe(0);
    expect((await store.store.listAudit({ action: 'retention.purge' }, 50)).items).toHaveLength(report.batches);
  });

  it('a deletion whose audit event cannot be written is rolled back: no purge goes unrecorded', async () => {
    const { project } = await createProject(core, hostActor(), 'shop');
    await setProjectRetention(core, hostActor(), project, { days: 30 });
    const old = await insert(project.id, 3, { chunks: 2 });
    // Without the chain's head row, appending an event fails inside the deleting transaction.
    const head = await db.selectFrom('audit_chain_head').selectAll().execute();
    await db.deleteFrom('audit_chain_head').execute();
    await expect(purgeOnce(core, { days: 0, maxOutputBytes: 0 }, { pause: async () => undefined })).rejects.toThrow(/audit chain head/);
    expect(await remaining(old)).toBe(3);
    expect(await chunksOf(old)).toBe(6);

    await db.insertInto('audit_chain_head').values(head).execute();
    expect((await purgeOnce(core, { days: 0, maxOutputBytes: 0 }, { pause: async () => undefined })).executions).toBe(3);
    expect(await remaining(old)).toBe(0);
    const audit = (await store.store.listAudit({ action: 'retention.purge' }, 10)).items;
    expect(audit.map((e) => e.details.executions)).toEqual([3]);
  });

  it('keeps a project under its output byte limit, oldest first, never touching what finished within the hour', async () => {
    const { project } = await createProject(core, hostActor(), 'shop');
    // 10 × 1,000 bytes finished 2 to 3 hours ago, and 1,000 bytes finished ten minutes ago.
    const older = await insert(project.id, 10, { finishedAgoMs: 3 * HOUR, bytesPerChunk: 1000 });
    const recent = await insert(project.id, 1, { finishedAgoMs: 10 * 60_000, bytesPerChunk: 1000 });
    // The server default applies: 5,500 bytes.
    const report = await purgeOnce(core, { days: 0, maxOutputBytes: 5500 }, { pause: async () => undefined });
    expect(report.executions).toBe(6);
    expect(await remaining(older.slice(0, 6))).toBe(0);
    expect(await remaining(older.slice(6))).toBe(4);
    expect(await remaining(recent)).toBe(1);
    expect(await store.store.retention.projectOutputBytes(project.id)).toBe(5000);
  });

  it("a project's own limit overrides the default; 0 keeps everything; bad limits change nothing", async () => {
    const { project } = await createProject(core, hostActor(), 'shop');
    await insert(project.id, 3, {});
    await setProjectRetention(core, hostActor(), project, { days: 0 });
    expect(effectiveLimits(await store.store.retention.getProjectRetention(project.id), { days: 7, maxOutputBytes: 0 })).toEqual({ days: 0, maxOutputBytes: 0 });
    expect((await purgeOnce(core, { days: 7, maxOutputBytes: 0 }, { pause: async () => undefined })).executions).toBe(0);

    for (const bad of [{ days: -1 }, { days: 1.5 }, { maxOutputBytes: Number.MAX_SAFE_INTEGER + 2 }]) {
      const err = await setProjectRetention(core, hostActor(), project, bad).catch((e: unknown) => e);
      expect(isUserError(err) && err.code).toBe('DC_VALIDATION');
    }
    expect(await store.store.retention.getProjectRetention(project.id)).toMatchObject({ days: 0, maxOutputBytes: null });

    await setProjectRetention(core, hostActor(), project, { days: null });
    expect((await purgeOnce(core, { days: 7, maxOutputBytes: 0 }, { pause: async () => undefined })).executions).toBe(3);
  });

  it('one process holds the purge lease at a time; the background loop purges and stops', async () => {
    expect(await store.store.retention.claimLease('a', NOW, 60_000)).toBe(true);
    expect(await store.store.retention.claimLease('b', NOW + 1000, 60_000)).toBe(false);
    expect(await store.store.retention.claimLease('a', NOW + 1000, 60_000)).toBe(true);
    expect(await store.store.retention.claimLease('b', NOW + 61_001, 60_000)).toBe(true);
    await store.store.retention.releaseLease('b');

    const { project } = await createProject(core, hostActor(), 'shop');
    const old = await insert(project.id, 4, {});
    const reports: number[] = [];
    const loop = startRetention(core, { days: 30, maxOutputBytes: 0 }, { intervalMs: 50, firstAfterMs: 1, onReport: (r) => reports.push(r.executions) });
    const deadline = Date.now() + 10_000;
    while ((await remaining(old)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await loop.stop();
    expect(await remaining(old)).toBe(0);
    expect(reports).toContain(4);
  });
});
