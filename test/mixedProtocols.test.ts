/**
 * A project served by a v1 runner (the Python one, polling) and a v2 runner at once, as during a
 * move from one to the other: an execution runs on one of them, never both. Over the in-process
 * server (v1 requests injected, v2 over a real WebSocket), on both databases.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { welcomedRunner, type V2Client } from './support/v2Socket.js';
import type { Execute, ServerMessage } from '../src/shared/protocolV2.js';

describe.each(DB_KINDS)('a project with v1 and v2 runners on %s', (kind) => {
  let t: TestApp;
  let v2: V2Client;
  beforeEach(async () => {
    t = await testApp(kind);
    v2 = await welcomedRunner(t);
    await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 10 });
  });
  afterEach(async () => {
    await v2.close();
    await t.close();
  });

  const create = async (): Promise<string> => (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [] })).json().id;
  const v1Offers = async (): Promise<string[]> => (await t.runner('shop', 'GET', '/pending/')).json().executions.map((e: { id: string }) => e.id);
  const execution = async (id: string) => (await t.api('GET', `/api/v1/executions/${id}`)).json();

  it('does not offer a v1 runner what was handed to a v2 runner, nor let it start it', async () => {
    const id = await create();
    await v2.next((m): m is Execute => m.type === 'execute' && m.execution_id === id);
    expect(await v1Offers()).not.toContain(id);
    const start = await t.runner('shop', 'POST', `/executions/${id}/start/`);
    expect(start.statusCode).toBe(409);
    expect(start.json()).toMatchObject({ code: 'DC_INVALID_TRANSITION' });
    expect(start.body).toContain('handed to another runner');

    v2.send({ type: 'started', execution_id: id, pid: 1, warm: true, at: t.clock.now });
    await v2.settle();
    const e = await execution(id);
    expect(e.status).toBe('running');
    expect(v2.received.some((m) => m.type === 'cancel' && m.execution_id === id)).toBe(false);
    // Said again (as after a reconnect): still its own.
    v2.send({ type: 'started', execution_id: id, pid: 1, warm: true, at: t.clock.now });
    await v2.settle();
    expect(v2.received.some((m) => m.type === 'cancel' && m.execution_id === id)).toBe(false);
  });

  it('tells a v2 runner to stop an execution a v1 runner started', async () => {
    // The v2 runner takes no new work: the next execution goes to the v1 runner.
    v2.send({ type: 'draining' });
    await v2.settle();
    const id = await create();
    expect(await v1Offers()).toContain(id);
    expect((await t.runner('shop', 'POST', `/executions/${id}/start/`)).statusCode).toBe(200);
    const runnerOf = (await execution(id)).runner_id;

    // A confused v2 runner says it started it too: it is told to stop it at once.
    v2.send({ type: 'started', execution_id: id, pid: 2, warm: true, at: t.clock.now });
    const cancel = await v2.next((m): m is ServerMessage & { type: 'cancel' } => m.type === 'cancel' && m.execution_id === id);
    expect(cancel).toMatchObject({ force: true });
    const e = await execution(id);
    expect([e.status, e.runner_id]).toEqual(['running', runnerOf]);
  });
});
