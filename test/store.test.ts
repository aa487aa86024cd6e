/** One store suite, run against SQLite and PostgreSQL alike. */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { CompiledQueries } from '../src/store/compiledQueries.js';
import { defaultSettings } from '../src/domain/commandSettings.js';
import { DB_KINDS, freshDatabase, freshStore } from './support/databases.js';
import { openDatabase, openStore } from '../src/store/openStore.js';
import { migrations } from '../src/store/migrations.js';
import type { Store } from '../src/store/store.js';
import type { Execution, Project, RunnerKey } from '../src/domain/model.js';

function execution(project: Project, over: Partial<Execution> = {}): Execution {
  return {
    id: randomUUID(),
    projectId: project.id,
    command: 'migrate',
    args: '',
    argv: [],
    status: 'queued',
    statusReason: null,
    exitCode: null,
    timeoutSeconds: 60,
    metadataOnly: false,
    createdAt: Date.now(),
    createdByType: 'token',
    createdById: 'u1',
    createdByLabel: 'a@b.c',
    runnerId: null,
    dispatchedAt: null,
    startedAt: null,
    finishedAt: null,
    cancelRequestedAt: null,
    cancelForce: false,
    cancelReason: null,
    outputBytes: 0,
    outputChunks: 0,
    outputLastSeq: 0,
    outputExpectedSeq: null,
    lateStatus: null,
    lateExitCode: null,
    runnerLastSeq: 0,
    runnerChunks: 0,
    startDeadline: null,
    scheduleId: null,
    ...over,
  };
}

describe.each(DB_KINDS)('store on %s', (kind) => {
  let store: Store;
  let close: () => Promise<void>;
  let project: Project;
  let key: RunnerKey;

  beforeEach(async () => {
    ({ store, close } = await freshStore(kind));
    project = { id: randomUUID(), name: 'shop', commandsHash: '', createdAt: 1 };
    await store.createProject(project);
    key = { id: randomUUID(), projectId: project.id, name: 'k', prefix: 'dc_abcdefgh', keyHash: 'h1', createdAt: 1, revokedAt: null };
    await store.createRunnerKey(key);
  });
  afterEach(async () => close());

  it('migrates twice without harm', async () => {
    await store.migrate();
    expect(await store.listProjects()).toHaveLength(1);
  });

  it('keeps users and finds tokens by hash', async () => {
    await store.createUser({ id: 'u1', email: 'a@b.c', passwordHash: 'x', isAdmin: true, createdAt: 1 });
    await store.createToken({ id: 't1', userId: 'u1', name: 'ci', prefix: 'dct_1', tokenHash: 'th', createdAt: 1, lastUsedAt: null, revokedAt: null });
    const alone = await store.findTokenByHash('th');
    expect(alone?.token.userId).toBe('u1');
    expect(alone?.user?.email).toBe('a@b.c');
    expect(alone?.memberships).toEqual([]);
    expect(await store.findTokenByHash('nope')).toBeUndefined();
    await store.touchToken('t1', 99);
    expect((await store.findTokenByHash('th'))?.token.lastUsedAt).toBe(99);
    expect(await store.countUsers()).toBe(1);
    await expect(store.createUser({ id: 'u2', email: 'a@b.c', passwordHash: 'x', isAdmin: false, createdAt: 1 })).rejects.toThrow();
    // The person's memberships come with the token, one each, and nobody else's.
    const other = { id: randomUUID(), name: 'blog', commandsHash: '', createdAt: 1 };
    await store.createProject(other);
    await store.createUser({ id: 'u3', email: 'z@b.c', passwordHash: 'x', isAdmin: false, createdAt: 1 });
    await store.access.setMember(project.id, 'u1', 'operator', 5);
    await store.access.setMember(other.id, 'u1', 'viewer', 6);
    await store.access.setMember(other.id, 'u3', 'admin', 7);
    const held = await store.findTokenByHash('th');
    expect(held?.token.id).toBe('t1');
    expect(held?.user).toEqual(await store.getUser('u1'));
    expect(held?.memberships.sort((a, b) => a.createdAt - b.createdAt)).toEqual([
      { projectId: project.id, userId: 'u1', role: 'operator', createdAt: 5, updatedAt: 5 },
      { projectId: other.id, userId: 'u1', role: 'viewer', createdAt: 6, updatedAt: 6 },
    ]);
    expect(held?.memberships).toEqual(expect.arrayContaining(await store.access.membershipsOf('u1')));
  });

  it('records notification events raised together, each under its own id, a repeated dedup key once', async () => {
    const event = (i: number, dedupKey: string | null = null) => ({ type: 'execution.ended', projectId: project.id, executionId: null, scheduleId: null, dedupKey, details: { n: i }, at: 1000 + i });
    const first = await store.notifications.recordEvent(event(0, 'slow:a'));
    expect(first).not.toBeNull();
    // Raised in the same turn: they share a transaction, plain ones in one INSERT.
    const ids = await Promise.all([
      store.notifications.recordEvent(event(1)),
      store.notifications.recordEvent(event(2, 'slow:a')),
      store.notifications.recordEvent(event(3)),
      store.notifications.recordEvent(event(4, 'slow:b')),
      store.notifications.recordEvent(event(5)),
      store.notifications.recordEvent(event(6, 'slow:b')),
      store.notifications.recordEvent(event(7)),
    ]);
    expect(ids[1]).toBeNull();
    expect(ids[5]).toBeNull();
    const kept = ids.filter((id): id is number => id !== null);
    expect(new Set([first, ...kept]).size).toBe(6);
    // Ids follow the order they were raised in, keyed or not (the deliverer goes in id order).
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
    const stored = new Map((await store.notifications.getEvents(kept)).map((e) => [e.id, e.details.n]));
    expect(ids.map((id) => (id === null ? null : stored.get(id)))).toEqual([1, null, 3, 4, 5, null, 7]);
    // Details that are not JSON fail their own caller only.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const [bad, good] = await Promise.allSettled([store.notifications.recordEvent({ ...event(8), details: cyclic }), store.notifications.recordEvent(event(9))]);
    expect(bad.status).toBe('rejected');
    expect(good.status === 'fulfilled' && (await store.notifications.getEvents([good.value!]))[0].details).toEqual({ n: 9 });
  });

  it('records nonces per key with what was answered, and forgets old ones', async () => {
    expect(await store.recordNonce(key.id, 'n1', 1000, 'fp')).toEqual({ fresh: true });
    expect(await store.recordNonce(key.id, 'n1', 1001, 'fp')).toEqual({ fresh: false, fingerprint: 'fp', seenAt: 1000, response: null });
    await store.saveNonceResponse(key.id, 'n1', 200, '{"ok":true}');
    expect(await store.recordNonce(key.id, 'n1', 1002, 'other')).toEqual({ fresh: false, fingerprint: 'fp', seenAt: 1000, response: { status: 200, body: '{"ok":true}' } });
    expect(await store.recordNonce('other-key', 'n1', 1001, 'fp')).toEqual({ fresh: true });
    await store.forgetNonce(key.id, 'n1');
    expect((await store.recordNonce(key.id, 'n1', 5000, 'fp')).fresh).toBe(true);
    // Only an unanswered nonce, recorded when the caller saw it, is forgotten.
    expect(await store.forgetUnansweredNonce(key.id, 'n1', 4999)).toBe(false);
    await store.recordNonce(key.id, 'n3', 6000, 'fp');
    await store.saveNonceResponse(key.id, 'n3', 200, '{}');
    expect(await store.forgetUnansweredNonce(key.id, 'n3', 6000)).toBe(false);
    expect(await store.forgetUnansweredNonce(key.id, 'n1', 5000)).toBe(true);
    expect((await store.recordNonce(key.id, 'n1', 7000, 'fp')).fresh).toBe(true);
    expect(await store.pruneNonces(2000)).toBe(1);
  });

  it('revokes a key once', async () => {
    expect(await store.revokeRunnerKey(key.id, 5)).toBe(true);
    expect(await store.revokeRunnerKey(key.id, 6)).toBe(false);
    expect((await store.findRunnerKeyByHash('h1'))?.revokedAt).toBe(5);
  });

  it('finds a key with its project in one read, as the two reads would', async () => {
    expect(await store.findRunnerKeyWithProject('h1')).toEqual({ key: await store.findRunnerKeyByHash('h1'), project: await store.getProject(project.id) });
    expect((await store.findRunnerKeyWithProject('h1'))?.project).toEqual(project);
    expect(await store.findRunnerKeyWithProject('nope')).toBeUndefined();
  });

  it('upserts runners by key, address and protocol', async () => {
    const a = await store.sightRunner({ projectId: project.id, keyId: key.id, address: '10.0.0.1', protocol: 'v1', at: 10, versions: { runnerVersion: '1', pythonVersion: '3.11', djangoVersion: '4.2', commandsHash: 'h' } });
    const b = await store.sightRunner({ projectId: project.id, keyId: key.id, address: '10.0.0.1', protocol: 'v1', at: 20 });
    expect(b.id).toBe(a.id);
    expect(b.firstSeenAt).toBe(10);
    expect(b.lastSeenAt).toBe(20);
    expect(b.djangoVersion).toBe('4.2');
    await store.sightRunner({ projectId: project.id, keyId: key.id, address: '10.0.0.2', protocol: 'v1', at: 30 });
    expect(await store.listRunners(project.id)).toHaveLength(2);
  });

  it('replaces the command catalogue atomically and keeps per-command limits', async () => {
    const cmd = (name: string) => ({ projectId: project.id, name, appLabel: 'demo', helpText: `help ${name} ✓`, schema: null, refused: null, maxConcurrency: null, syncedAt: 1 });
    await store.replaceCommands(project.id, [cmd('migrate'), cmd('check')], 'sha256:1');
    expect(await store.setCommandConcurrency(project.id, 'migrate', 3)).toBe(true);
    await store.replaceCommands(project.id, [cmd('migrate'), cmd('spew')], 'sha256:2');
    const names = (await store.listCommands(project.id)).map((c) => c.name);
    expect(names).toEqual(['migrate', 'spew']);
    expect((await store.getCommand(project.id, 'migrate'))?.maxConcurrency).toBe(3);
    expect((await store.getCommand(project.id, 'spew'))?.helpText).toBe('help spew ✓');
    expect((await store.getProject(project.id))?.commandsHash).toBe('sha256:2');
    // A catalogue larger than one INSERT takes, then a smaller one: each stored whole, the limit kept.
    const big = Array.from({ length: 150 }, (_, i) => cmd(`command_${String(i).padStart(3, '0')}`));
    await store.replaceCommands(project.id, [...big, cmd('migrate')], 'sha256:3');
    expect((await store.listCommands(project.id)).map((c) => c.name)).toEqual([...big.map((c) => c.name), 'migrate']);
    await store.replaceCommands(project.id, [cmd('migrate'), ...big.slice(0, 70)], 'sha256:4');
    expect(await store.listCommands(project.id)).toHaveLength(71);
    expect((await store.getCommand(project.id, 'migrate'))?.maxConcurrency).toBe(3);
  });

  it('reads commands with their settings in one go, as each is read alone', async () => {
    const cmd = (name: string) => ({ projectId: project.id, name, appLabel: 'demo', helpText: `help ${name}`, schema: null, refused: null, maxConcurrency: null, syncedAt: 1 });
    await store.replaceCommands(project.id, [cmd('migrate'), cmd('check'), cmd('spew')], 'sha256:1');
    await store.commandSettings.put({ ...defaultSettings(project.id, 'migrate'), metadataOnly: true, defaultTimeoutSeconds: 60, maxConcurrency: 2, readOnlyDefault: true, requiresApproval: true, approvalPattern: '--fake', approverRole: 'admin', approvalExpirySeconds: 120, updatedAt: 5, updatedBy: 'ann' });
    await store.setCommandConcurrency(project.id, 'check', 4);
    const both = await store.commandSettings.getCommandsWithSettings(project.id, ['migrate', 'check', 'spew', 'absent']);
    expect(both.map((b) => b.command.name).sort()).toEqual(['check', 'migrate', 'spew']);
    const settings = new Map((await store.commandSettings.getMany(project.id, ['migrate', 'check', 'spew'])).map((st) => [st.command, st]));
    for (const { command, settings: st } of both) {
      expect(command).toEqual(await store.getCommand(project.id, command.name));
      expect(st).toEqual(settings.get(command.name) ?? { ...defaultSettings(project.id, command.name), maxConcurrency: command.maxConcurrency, readOnlyDefault: command.readOnlyDefault });
    }
    expect(both.find((b) => b.command.name === 'migrate')?.settings).toMatchObject({ metadataOnly: true, maxConcurrency: 2, readOnlyDefault: true, approverRole: 'admin', updatedBy: 'ann' });
    expect(both.find((b) => b.command.name === 'check')?.settings).toMatchObject({ maxConcurrency: 4, metadataOnly: false, updatedAt: null });
  });

  it('enforces the concurrency limit, also for simultaneous creates', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => store.createExecution(execution(project), 2)));
    expect(results.filter((r) => r.created)).toHaveLength(2);
    const refused = results.find((r) => !r.created);
    expect(refused && !refused.created && refused.active).toHaveLength(2);
    // Other commands are not limited by migrate's executions.
    expect((await store.createExecution(execution(project, { command: 'check' }), 1)).created).toBe(true);
  });

  it('creates a batch in one go, counting the batch itself against each limit, also beside simultaneous batches', async () => {
    const batch = () => [
      ...Array.from({ length: 3 }, () => ({ execution: execution(project), limit: 2 })),
      { execution: execution(project, { command: 'check' }), limit: 1 },
    ];
    const [first, second] = await Promise.all([store.createExecutions(batch()), store.createExecutions(batch())]);
    const all = [...first, ...second];
    // migrate: 2 of 6 made; check: 1 of 2 made.
    expect(all.filter((r) => r.created)).toHaveLength(3);
    const refusedMigrate = [...first.slice(0, 3), ...second.slice(0, 3)].filter((r) => !r.created);
    expect(refusedMigrate).toHaveLength(4);
    for (const r of refusedMigrate) expect(!r.created && r.active.map((e) => e.command)).toEqual(['migrate', 'migrate']);
    expect(await store.countExecutions(project.id, ['queued'])).toBe(3);
    expect(await store.createExecutions([])).toEqual([]);
  });

  it('claims the oldest queued executions for a runner, up to a limit, read-only ones only when asked; claims at once share the queue', async () => {
    const made = Array.from({ length: 8 }, (_, i) => execution(project, { createdAt: 100 - i * 10, readOnly: i === 6 }));
    for (const e of made) await store.createExecution(e, 100);
    const byAge = [...made].sort((a, b) => a.createdAt - b.createdAt);
    const readOnly = made[6];
    const other = execution({ ...project, id: randomUUID() });
    await store.createProject({ id: other.projectId, name: 'blog', commandsHash: '', createdAt: 1 });
    await store.createExecution(other, 100);

    const first = await store.claimQueued(project.id, 2, { runnerId: 'r1', dispatchedAt: 7 }, false);
    // The oldest is read-only: a runner that cannot enforce it skips it.
    expect(first.map((e) => e.id)).toEqual(byAge.filter((e) => e !== readOnly).slice(0, 2).map((e) => e.id));
    expect(first.every((e) => e.status === 'dispatched' && e.runnerId === 'r1' && e.dispatchedAt === 7)).toBe(true);

    // Three claims at once (PostgreSQL: three connections) over the 5 left that r1 could run: each row once.
    const together = await Promise.all(['a', 'b', 'c'].map((r) => store.claimQueued(project.id, 2, { runnerId: r, dispatchedAt: 8 }, false)));
    const ids = together.flat().map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(byAge.filter((e) => e !== readOnly).slice(2).map((e) => e.id).sort());
    for (const got of together) expect(got.length).toBeLessThanOrEqual(2);

    expect(await store.claimQueued(project.id, 5, { runnerId: 'r2', dispatchedAt: 9 }, false)).toEqual([]);
    expect((await store.claimQueued(project.id, 5, { runnerId: 'r2', dispatchedAt: 9 }, true)).map((e) => e.id)).toEqual([readOnly.id]);
    expect(await store.countExecutions(project.id, ['queued'])).toBe(0);
    // Another project's queue is its own.
    expect(await store.countExecutions(other.projectId, ['queued'])).toBe(1);
  });

  it('updates an execution only from the states named', async () => {
    const e = execution(project);
    await store.createExecution(e, 1);
    expect(await store.updateExecution(e.id, ['running'], { status: 'succeeded' })).toBeUndefined();
    const started = await store.updateExecution(e.id, ['queued', 'dispatched'], { status: 'running', startedAt: 5, runnerId: 'r' });
    expect(started?.status).toBe('running');
    expect(started?.startedAt).toBe(5);
    const both = await Promise.all([
      store.updateExecution(e.id, ['running'], { status: 'succeeded', exitCode: 0 }),
      store.updateExecution(e.id, ['running'], { status: 'lost' }),
    ]);
    expect(both.filter(Boolean)).toHaveLength(1);
  });

  it('runs a query compiled once with new values each time, timed, NULs made harmless on PostgreSQL', async () => {
    const db = await freshDatabase(kind);
    const { db: kysely, caps } = openDatabase(db);
    try {
      const timed: string[] = [];
      const q = new CompiledQueries(kysely, caps.textHoldsNul, (k) => void timed.push(k));
      await sql`CREATE TABLE t (id integer primary key, name text not null)`.execute(kysely);
      const insert = (id: number, name: string) =>
        q.run('insert', [id, name], (id, name) => (kysely as unknown as Kysely<{ t: { id: number; name: string } }>).insertInto('t').values({ id, name }));
      const byName = (name: string, limit: number) =>
        q.run('byName', [name, limit], (name, limit) => (kysely as unknown as Kysely<{ t: { id: number; name: string } }>).selectFrom('t').select('id').where('name', '=', name).where('id', '>', 0).limit(limit));
      expect((await insert(1, 'a')).numAffectedRows).toBe(1n);
      await insert(2, 'b');
      await insert(3, 'b');
      expect((await byName('b', 10)).rows).toEqual([{ id: 2 }, { id: 3 }]);
      expect((await byName('b', 1)).rows).toEqual([{ id: 2 }]);
      expect((await byName('a', 10)).rows).toEqual([{ id: 1 }]);
      // A NUL looked up: not found, never a database error (PostgreSQL's text cannot hold it).
      expect((await byName('a\0', 10)).rows).toEqual([]);
      await insert(4, 'x\0y');
      expect((await byName(kind === 'postgres' ? 'x\uFFFDy' : 'x\0y', 10)).rows).toEqual([{ id: 4 }]);
      expect(timed).toEqual(['insert', 'insert', 'insert', 'select', 'select', 'select', 'select', 'insert', 'select']);
      // A placeholder left out of the parameters is a mistake found on first use.
      await expect(q.run('unused', [1], () => kysely.selectFrom('projects').select('id'))).rejects.toThrow(/placeholder 0 is not a parameter/);
    } finally {
      await kysely.destroy();
      await db.drop();
    }
  });

  it('reads many executions at once, past the 500 ids of one statement', async () => {
    const made = await store.createExecutions(Array.from({ length: 600 }, () => ({ execution: execution(project), limit: 1000 })));
    expect(made.every((r) => r.created)).toBe(true);
    const ids = (await store.listExecutions({ projectId: project.id }, 1000)).items.map((e) => e.id);
    const read = await store.getExecutions([...ids, 'no-such-execution']);
    expect(read.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(await store.getExecutions([])).toEqual([]);
  });

  it('stores each output chunk once and reads it back in order', async () => {
    const e = execution(project, { status: 'running', startedAt: 1 });
    await store.createExecution(e, 1);
    const chunk = (seq: number, data: string | Uint8Array) => ({ executionId: e.id, seq, stream: 'stdout' as const, data, lineTimes: [[0, 1] as [number, number]], receivedAt: 1 });
    expect(await store.appendOutput(chunk(2, 'two\n'))).toBe(true);
    expect(await store.appendOutput(chunk(1, 'héllo 🎉\n'))).toBe(true);
    expect(await store.appendOutput(chunk(1, 'duplicate\n'))).toBe(false);
    // Bytes as they came in a binary frame: a view into a larger buffer, stored as text.
    const frame = Buffer.from('HEADERbýtes ✓\n', 'utf8');
    expect(await store.appendOutput(chunk(3, frame.subarray(6)))).toBe(true);
    // A NUL in the bytes: kept by SQLite; PostgreSQL's text cannot hold it, so it becomes U+FFFD.
    expect(await store.appendOutput(chunk(4, Buffer.from('a\0b ✓\n', 'utf8')))).toBe(true);
    const read = await store.readOutput(e.id, 0, 10);
    expect(read.map((c) => c.data)).toEqual(['héllo 🎉\n', 'two\n', 'býtes ✓\n', kind === 'postgres' ? 'a\uFFFDb ✓\n' : 'a\0b ✓\n']);
    expect(await store.readOutput(e.id, 1, 10)).toHaveLength(3);
    const after = await store.getExecution(e.id);
    expect(after?.outputChunks).toBe(4);
    expect(after?.outputLastSeq).toBe(4);
    expect(after?.outputBytes).toBe(Buffer.byteLength('héllo 🎉\ntwo\nbýtes ✓\na\0b ✓\n'));
  });

  it('finds where the output ends for executions stored before migration 0002', async () => {
    const db = await freshDatabase(kind);
    try {
      const { db: kysely, caps } = openDatabase(db);
      const first = { '0001_initial': migrations(caps)['0001_initial'] };
      const migrator = new Migrator({ db: kysely, provider: { getMigrations: async (): Promise<Record<string, Migration>> => first }, migrationTableName: 'dc_migrations', migrationLockTableName: 'dc_migrations_lock' });
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      const e = execution(project, { status: 'succeeded', startedAt: 1 });
      await sql`INSERT INTO projects (id, name, commands_hash, created_at) VALUES (${project.id}, 'shop', '', 1)`.execute(kysely);
      for (const [id, seqs] of [[e.id, [1, 2, 7]], [randomUUID(), []]] as const) {
        await sql`INSERT INTO executions (id, project_id, command, args, argv_json, status, timeout_seconds, metadata_only, created_at, created_by_type, created_by_label, cancel_force)
                  VALUES (${id}, ${project.id}, 'check', '', '[]', 'succeeded', 60, 0, 1, 'token', 'a@b.c', 0)`.execute(kysely);
        for (const seq of seqs) {
          await sql`INSERT INTO output_chunks (execution_id, seq, stream, data, line_times_json, received_at) VALUES (${id}, ${seq}, 'stdout', 'x', '[]', 1)`.execute(kysely);
        }
      }
      await kysely.destroy();
      const upgraded = await openStore(db);
      try {
        expect((await upgraded.getExecution(e.id))?.outputLastSeq).toBe(7);
        const none = (await upgraded.listExecutions({}, 10)).items.find((x) => x.id !== e.id);
        expect(none?.outputLastSeq).toBe(0);
      } finally {
        await upgraded.close();
      }
    } finally {
      await db.drop();
    }
  });

  it('counts sign-in attempts per key atomically, in a window that opens with the first', async () => {
    expect(await store.recordLoginAttempt('k1', 1000, 100)).toEqual({ attempts: 1, windowEndsAt: 1100 });
    expect(await store.recordLoginAttempt('k1', 1050, 100)).toEqual({ attempts: 2, windowEndsAt: 1100 });
    expect((await store.recordLoginAttempt('k2', 1050, 100)).attempts).toBe(1);
    // Simultaneous attempts are each counted once.
    const burst = await Promise.all(Array.from({ length: 10 }, () => store.recordLoginAttempt('k1', 1060, 100)));
    expect(burst.map((b) => b.attempts).sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // A new window opens once the old one has closed.
    expect(await store.recordLoginAttempt('k1', 1100, 100)).toEqual({ attempts: 1, windowEndsAt: 1200 });
    await store.clearLoginAttempts('k1');
    expect((await store.recordLoginAttempt('k1', 1101, 100)).attempts).toBe(1);
    expect(await store.pruneLoginAttempts(1150)).toBe(1); // k2's window closed at 1150
    expect((await store.recordLoginAttempt('k2', 1151, 100)).attempts).toBe(1);
  });

  it('lists executions with filters and stable cursor pages', async () => {
    for (let i = 0; i < 7; i++) {
      await store.createExecution(execution(project, { command: i % 2 ? 'check' : 'migrate', createdAt: 1000 + (i < 4 ? 0 : i), status: i === 6 ? 'failed' : 'succeeded' }), 100);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listExecutions({ projectId: project.id }, 3, cursor);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(new Set(seen).size).toBe(7);
    expect((await store.listExecutions({ command: 'check' }, 50)).items).toHaveLength(3);
    expect((await store.listExecutions({ statuses: ['failed'] }, 50)).items).toHaveLength(1);
    expect((await store.listExecutions({ createdAfter: 1005 }, 50)).items).toHaveLength(2);
  });

  it('finds executions of silent runners and overdue ones', async () => {
    const r = await store.sightRunner({ projectId: project.id, keyId: key.id, address: 'a', protocol: 'v1', at: 1000 });
    const running = execution(project, { status: 'running', runnerId: r.id, startedAt: 1000, timeoutSeconds: 10 });
    await store.createExecution(running, 5);
    expect(await store.listHeldByRunnersSeenBefore(500)).toHaveLength(0);
    expect((await store.listHeldByRunnersSeenBefore(2000)).map((e) => e.id)).toEqual([running.id]);
    expect(await store.listOverdue(10_500, 0)).toHaveLength(0);
    expect(await store.listOverdue(11_500, 0)).toHaveLength(1);
    expect(await store.listOverdue(11_500, 5000)).toHaveLength(0);
  });

  it('appends audit events and pages through them newest first', async () => {
    for (let i = 0; i < 5; i++) {
      await store.appendAudit({ at: i, actorType: 'token', actorId: 't', actorLabel: 'x', address: '1.2.3.4', action: i % 2 ? 'execution.create' : 'project.create', projectId: project.id, executionId: null, outcome: 'ok', details: { i } });
    }
    const first = await store.listAudit({}, 2);
    expect(first.items.map((a) => a.details.i)).toEqual([4, 3]);
    const second = await store.listAudit({}, 2, first.nextCursor!);
    expect(second.items.map((a) => a.details.i)).toEqual([2, 1]);
    expect((await store.listAudit({ action: 'execution.create' }, 10)).items).toHaveLength(2);
    expect((await store.listAudit({ after: 3 }, 10)).items).toHaveLength(2);
  });
});
