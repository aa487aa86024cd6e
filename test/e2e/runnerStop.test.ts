/** A runner that says it is stopping shows offline at once (a real server, a protocol v2 socket). */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { connectV2 } from '../support/v2Socket.js';

describe('a runner stopping', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let token: string;
  let key: string;
  const runners = async () => (await (await fetch(`${server.url}/api/v1/projects/shop/runners`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: Array<{ online: boolean }> };

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    ({ token, key } = await setUpProject(server));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  const hello = (id: string) => ({ type: 'hello', protocol: 2, runner_id: id, hostname: 'h', runner_version: '0.1.0', python_version: '3.11', django_version: '3.2', commands_hash: '', max_concurrency: 1, running: [] });

  it('is offline as soon as it said `draining` and closed normally, online again when it is back; a dropped one is not', async () => {
    const id = randomUUID();
    let ws = await connectV2(server.url, key, Date.now());
    ws.send(hello(id));
    await ws.next((m): m is any => m.type === 'welcome');
    expect((await runners()).items.map((r) => r.online)).toEqual([true]);
    ws.send({ type: 'draining' });
    await ws.settle();
    ws.ws.close(1000, 'runner stopping');
    await ws.closed;
    await waitFor('offline at once', async () => (await runners()).items[0].online === false, 2000);
    const events = (await (await fetch(`${server.url}/api/v1/audit?action=runner.disconnect`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: unknown[] };
    expect(events.items).toHaveLength(1);
    ws = await connectV2(server.url, key, Date.now());
    ws.send(hello(id));
    await ws.next((m): m is any => m.type === 'welcome');
    expect((await runners()).items.map((r) => r.online)).toEqual([true]);
    // A connection that just drops (no draining) keeps it online until the offline period says otherwise.
    ws.ws.terminate();
    await new Promise((r) => setTimeout(r, 500));
    expect((await runners()).items.map((r) => r.online)).toEqual([true]);
  });
});
