/**
 * A runner that reconnects says in its hello what it has (`running`). An execution offered to it
 * on the connection before and not listed there never reached it (the replica that sent the
 * `execute` died, or the connection broke first): with the "lists_received" feature the server
 * takes it back and offers it again; one listed is running; an older runner's offers are left
 * as they were. Real WebSocket to an in-process server, on both databases.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { connectV2, hello, type V2Client } from './support/v2Socket.js';
import type { Execute, ServerMessage } from '../src/shared/protocolV2.js';

const isExecute = (m: ServerMessage): m is Execute => m.type === 'execute';
const CHECK = { name: 'check', app_label: 'demo', help_text: 'usage: manage.py check', schema: null };

describe.each(DB_KINDS)('runner protocol v2: what a reconnecting runner did not receive, on %s', (kind) => {
  let t: TestApp;
  let url: string;
  const runnerId = randomUUID();
  const sockets: V2Client[] = [];
  /** A connection of the same runner; the first one reports the catalogue. */
  const connect = async (overrides: Parameters<typeof hello>[0]) => {
    const c = await connectV2(url, t.projects.shop.key, t.clock.now);
    sockets.push(c);
    c.send(hello({ runner_id: runnerId, max_concurrency: 1, ...overrides }));
    if (sockets.length === 1) c.send({ type: 'commands', commands: [CHECK] });
    expect(await c.settle()).toContainEqual(expect.objectContaining({ type: 'welcome' }));
    return c;
  };
  const status = async (id: string) => (await t.api('GET', `/api/v1/executions/${id}`)).json().status as string;
  /** An execution offered on a first connection, which then breaks. */
  const offeredThenCut = async (features: string[] | undefined) => {
    const first = await connect({ features });
    const id = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'check' })).json().id as string;
    expect((await first.next(isExecute)).execution_id).toBe(id);
    expect(await status(id)).toBe('dispatched');
    first.ws.terminate();
    await first.closed;
    return id;
  };

  beforeEach(async () => {
    t = await testApp(kind);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => s.close()));
    await t.close();
  });

  it('offers again an execution the runner does not list (its execute never arrived)', async () => {
    const id = await offeredThenCut(['lists_received']);
    const second = await connect({ features: ['lists_received'], running: [] });
    expect((await second.next(isExecute)).execution_id).toBe(id);
    expect(await status(id)).toBe('dispatched');
  });

  it('marks one the runner lists as running, and does not offer it again', async () => {
    const id = await offeredThenCut(['lists_received']);
    const second = await connect({ features: ['lists_received'], running: [id] });
    expect(await status(id)).toBe('running');
    expect((await second.settle()).filter(isExecute)).toEqual([]);
  });

  it('leaves the offer of an older runner (without lists_received) as it was', async () => {
    const id = await offeredThenCut(undefined);
    const second = await connect({ running: [] });
    expect(await status(id)).toBe('dispatched');
    expect((await second.settle()).filter(isExecute)).toEqual([]);
  });
});
