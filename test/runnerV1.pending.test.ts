/**
 * A v1 runner's idle poll costs no query of executions: the projects with work are read once a
 * second, and a project's wake-up marks it in between. An execution whose wake-up was lost is
 * still offered, after one more read at most. On both databases, through the in-process server.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { randomUUID } from 'node:crypto';
import { IDLE_POLL_ANSWER } from '../src/core/runnerV1.js';

describe.each(DB_KINDS)('v1 pending/ on %s', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp(kind);
    await syncCommands(t, 'shop', ['migrate']);
  });
  afterEach(async () => t.close());

  const poll = async (): Promise<string[]> => {
    const res = await t.runner('shop', 'GET', '/pending/');
    expect(res.statusCode).toBe(200);
    return (res.json() as { executions: Array<{ id: string }> }).executions.map((e) => e.id);
  };
  const create = async (): Promise<string> => {
    const res = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [] });
    expect(res.statusCode).toBe(201);
    return (res.json() as { id: string }).id;
  };

  it('answers idle polls without reading executions, and offers at once what a wake-up announces', async () => {
    const reads = vi.spyOn(t.core.store, 'listDispatchable');
    for (let i = 0; i < 5; i++) expect(await poll()).toEqual([]);
    expect(reads).not.toHaveBeenCalled();

    const id = await create();
    expect(await poll()).toEqual([id]);
    // Offered, not started: offered again until a runner starts it.
    expect(await poll()).toEqual([id]);
    expect((await t.runner('shop', 'POST', `/executions/${id}/start/`)).statusCode).toBe(200);
    expect(await poll()).toEqual([]);
  });

  it('stores an idle poll\'s nonce with its answer in one write: a retry gets it again, a replay is refused', async () => {
    const saves = vi.spyOn(t.core.store, 'saveNonceResponse');
    const nonce = { 'x-request-nonce': randomUUID() };
    const first = await t.runner('shop', 'GET', '/pending/', undefined, nonce);
    expect(first.statusCode).toBe(200);
    expect(first.body).toBe(IDLE_POLL_ANSWER);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(saves).not.toHaveBeenCalled();
    // The Python client's retry of a lost answer: the same answer, nothing done twice.
    const retry = await t.runner('shop', 'GET', '/pending/', undefined, nonce);
    expect([retry.statusCode, retry.body]).toEqual([200, IDLE_POLL_ANSWER]);
    // The nonce on another request is a replay.
    const replay = await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: 'x' }, nonce);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ code: 'DC_REPLAYED_REQUEST' });
    // The runner was seen by the idle poll.
    const runners = (await t.api('GET', '/api/v1/projects/shop/runners')).json() as { items: Array<{ protocol: string }> };
    expect(runners.items.map((r) => r.protocol)).toContain('v1');

    // A poll whose sighting fails is a server error: its retry is handled again, not answered from the record.
    const next = { 'x-request-nonce': randomUUID() };
    const sightings = vi.spyOn(t.core.store, 'sightRunner').mockRejectedValueOnce(new Error('database went away'));
    t.clock.now += 3_600_000;
    expect((await t.runner('shop', 'GET', '/pending/', undefined, next)).statusCode).toBe(500);
    const handled = await t.runner('shop', 'GET', '/pending/', undefined, next);
    expect([handled.statusCode, handled.body]).toEqual([200, IDLE_POLL_ANSWER]);
    expect(sightings).toHaveBeenCalledTimes(2);
    sightings.mockRestore();

    // A poll of a project that may have work takes the usual path: the same bytes when there is none left.
    const id = await create();
    expect(await poll()).toEqual([id]);
    expect((await t.runner('shop', 'POST', `/executions/${id}/start/`)).statusCode).toBe(200);
    const usual = await t.runner('shop', 'GET', '/pending/');
    expect(saves).toHaveBeenCalled();
    expect([usual.statusCode, usual.body, usual.headers['content-type']]).toEqual([200, IDLE_POLL_ANSWER, 'application/json; charset=utf-8']);
  });

  it('offers an execution whose wake-up was lost within a second', async () => {
    expect(await poll()).toEqual([]);
    const publish = t.core.notifier.publish;
    t.core.notifier.publish = () => undefined;
    const id = await create();
    t.core.notifier.publish = publish;
    const since = Date.now();
    let offered: string[] = [];
    while (offered.length === 0 && Date.now() - since < 5_000) {
      offered = await poll();
      if (offered.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(offered).toEqual([id]);
    // One read a second; the margin is for a loaded CI machine.
    expect(Date.now() - since).toBeLessThan(2_500);
  });

  it('offers runners polling together different executions first, and what others were offered after', async () => {
    await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 50 });
    const other = (await t.api('POST', '/api/v1/projects/shop/keys', { name: 'second runner' })).json().key as string;
    const pollAs = async (key?: string): Promise<string[]> => {
      const res = await t.runner('shop', 'GET', '/pending/', undefined, key ? { authorization: `Bearer ${key}` } : {});
      expect(res.statusCode).toBe(200);
      return (res.json() as { executions: Array<{ id: string }> }).executions.map((e) => e.id);
    };
    const ids: string[] = [];
    for (let i = 0; i < 14; i++) {
      t.clock.now += 1; // oldest first needs distinct creation times
      ids.push(await create());
    }
    // Ten a poll (PENDING_BATCH): the first runner is offered the 10 oldest; the second, the 4
    // nobody was offered, then 6 of the first runner's offers; the first still sees its own.
    expect(await pollAs()).toEqual(ids.slice(0, 10));
    expect(await pollAs(other)).toEqual([...ids.slice(10), ...ids.slice(0, 6)]);
    expect(await pollAs()).toEqual(ids.slice(0, 10));
    // Either may still start any of them: an offer is not a claim.
    expect((await t.runner('shop', 'POST', `/executions/${ids[0]}/start/`, undefined, { authorization: `Bearer ${other}` })).statusCode).toBe(200);
    expect(await pollAs()).toEqual([...ids.slice(1, 10), ids[10]]);
  });
});
