/**
 * Read-only database mode on the server side: the effective mode of a run, the catalogue hash
 * suffix both sides compute, and how the store keeps the per-command defaults (SQLite and
 * PostgreSQL): the server's own setting survives a catalogue sync, the Django side's is replaced.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { effectiveReadOnly, readOnlyHashSuffix } from '../../src/domain/readOnly.js';
import { DB_KINDS, freshStore } from '../support/databases.js';
import type { Command, Execution, Project } from '../../src/domain/model.js';
import type { Store } from '../../src/store/store.js';

describe('effective read-only mode', () => {
  it('is the OR of the request and both defaults, naming each reason', () => {
    expect(effectiveReadOnly(false, { readOnlyDefault: false, djangoReadOnly: false })).toEqual({ readOnly: false, sources: [] });
    expect(effectiveReadOnly(true, { readOnlyDefault: false, djangoReadOnly: false })).toEqual({ readOnly: true, sources: ['requested'] });
    expect(effectiveReadOnly(false, { readOnlyDefault: true, djangoReadOnly: false }).sources).toEqual(['command default']);
    expect(effectiveReadOnly(false, { readOnlyDefault: false, djangoReadOnly: true }).sources).toEqual(['DJANGOCOMMAND_READONLY_COMMANDS']);
    expect(effectiveReadOnly(true, { readOnlyDefault: true, djangoReadOnly: true }).sources).toHaveLength(3);
  });

  it('joins the catalogue hash only when some command is read-only, whatever the order', () => {
    expect(readOnlyHashSuffix([])).toBe('');
    expect(readOnlyHashSuffix(['b', 'a'])).toBe(readOnlyHashSuffix(['a', 'b', 'a']));
    expect(readOnlyHashSuffix(['a'])).not.toBe(readOnlyHashSuffix(['b']));
    expect(readOnlyHashSuffix(['a'])).toMatch(/^;readonly=[0-9a-f]{32}$/);
  });
});

describe.each(DB_KINDS)('read-only fields in the store on %s', (kind) => {
  let store: Store;
  let close: () => Promise<void>;
  let project: Project;

  beforeEach(async () => {
    ({ store, close } = await freshStore(kind));
    project = { id: randomUUID(), name: 'shop', commandsHash: '', createdAt: 1 };
    await store.createProject(project);
  });
  afterEach(async () => close());

  const cmd = (name: string, djangoReadOnly = false): Command => ({
    projectId: project.id, name, appLabel: 'demo', helpText: '', schema: null, refused: null, maxConcurrency: null, syncedAt: 1, readOnlyDefault: false, djangoReadOnly,
  });

  it('keeps the server default across syncs and replaces the Django-side flag', async () => {
    await store.replaceCommands(project.id, [cmd('migrate'), cmd('check', true)], 'h1');
    expect(await store.setCommandReadOnly(project.id, 'migrate', true)).toBe(true);
    expect(await store.setCommandReadOnly(project.id, 'nosuch', true)).toBe(false);
    await store.replaceCommands(project.id, [cmd('migrate'), cmd('check', false)], 'h2');
    expect(await store.getCommand(project.id, 'migrate')).toMatchObject({ readOnlyDefault: true, djangoReadOnly: false });
    expect(await store.getCommand(project.id, 'check')).toMatchObject({ readOnlyDefault: false, djangoReadOnly: false });
    await store.replaceCommands(project.id, [cmd('check', true)], 'h3');
    expect(await store.getCommand(project.id, 'check')).toMatchObject({ djangoReadOnly: true });
  });

  it('records the mode of an execution', async () => {
    const e = (readOnly: boolean): Execution => ({
      id: randomUUID(), projectId: project.id, command: 'migrate', args: '', argv: [], status: 'queued', statusReason: null, exitCode: null, timeoutSeconds: 60,
      startDeadline: null, scheduleId: null, metadataOnly: false, readOnly, createdAt: 1, createdByType: 'token', createdById: null, createdByLabel: 'x', runnerId: null,
      dispatchedAt: null, startedAt: null, finishedAt: null, cancelRequestedAt: null, cancelForce: false, cancelReason: null, outputBytes: 0, outputChunks: 0,
      outputLastSeq: 0, outputExpectedSeq: null, lateStatus: null, lateExitCode: null, runnerLastSeq: 0, runnerChunks: 0,
    });
    const ro = e(true);
    const rw = e(false);
    await store.createExecution(ro, 10);
    await store.createExecution(rw, 10);
    expect((await store.getExecution(ro.id))?.readOnly).toBe(true);
    expect((await store.getExecution(rw.id))?.readOnly).toBe(false);
  });
});
