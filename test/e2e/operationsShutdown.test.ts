/**
 * Graceful shutdown and readiness, as real server processes: on SIGTERM /readyz fails at once,
 * runners are told to reconnect elsewhere (1001), live output streams end, a request in flight
 * still gets its answer, and the process exits 0. And /readyz fails while PostgreSQL is
 * unreachable, then recovers.
 */
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { connectV2, hello } from '../support/v2Socket.js';
import { tcpProxy, type TcpProxy } from '../support/tcpProxy.js';

/** An HTTP request sent by hand, so the test decides when its body arrives. */
function rawRequest(port: number, head: string): { socket: net.Socket; response: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(head);
  let data = '';
  const response = new Promise<string>((resolve) => {
    socket.setEncoding('utf8').on('data', (d: string) => {
      data += d;
      // One whole response (headers and a Content-Length body) is enough.
      const end = data.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? NaN);
      if (end !== -1 && data.length >= end + 4 + length) resolve(data);
    });
    socket.on('close', () => resolve(data));
    socket.on('error', () => resolve(data));
  });
  return { socket, response };
}

describe('graceful shutdown (SQLite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle | undefined;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    await db?.drop();
  });

  it('on SIGTERM: /readyz 503 at once, runners get 1001, live streams end, a request in flight is answered, exit 0', async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db, { DJANGOCOMMAND_SHUTDOWN_DELAY: '3', DJANGOCOMMAND_SHUTDOWN_GRACE: '20' });
    const { key, token } = await setUpProject(server);
    const s = server;
    const api = async (path: string, body?: unknown) => {
      const res = await fetch(s.url + path, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, json: (await res.json()) as any };
    };
    // No metrics token nor metrics address: no /metrics at all.
    expect((await fetch(s.url + '/metrics')).status).toBe(404);

    // A v2 runner running an execution, and someone watching its live output.
    const ws = await connectV2(s.url, key, Date.now());
    ws.send(hello());
    await ws.next((m): m is any => m.type === 'welcome');
    ws.send({ type: 'commands', commands: [{ name: 'slow', app_label: 'demo', help_text: 'usage: manage.py slow', schema: null }] });
    await ws.settle();
    const e = (await api('/api/v1/projects/shop/executions', { command: 'slow' })).json;
    await ws.next((m): m is any => m.type === 'execute' && m.execution_id === e.id);
    ws.send({ type: 'started', execution_id: e.id, pid: 4242, warm: true, at: Date.now() });
    ws.send({ type: 'output', execution_id: e.id, seq: 1, stream: 'stdout', data: 'working\n', line_times: [[0, Date.now()]] });
    await ws.next((m): m is any => m.type === 'ack' && m.execution_id === e.id);
    const stream = await fetch(`${s.url}/api/v1/executions/${e.id}/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('working');
    const streamEnded = (async () => {
      for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return Date.now();
    })();

    // A request in flight: its headers and half its body now, the rest after the listener closed.
    const body = JSON.stringify({ name: 'late' });
    const inFlight = rawRequest(s.port, `POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await new Promise((r) => setTimeout(r, 200));

    const exited = new Promise<number | null>((resolve) => s.process.once('exit', (code) => resolve(code)));
    const signalledAt = Date.now();
    s.process.kill('SIGTERM');
    // Still listening (the delay is 3 s), and already not ready.
    await waitFor('/readyz to fail', async () => (await fetch(s.url + '/readyz')).status === 503, 2800, 50);
    const ready = await fetch(s.url + '/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', reason: 'shutting_down' });
    expect(ready.headers.get('connection')).toBe('close');
    // Alive all the same: an orchestrator must not kill it for being slow to stop.
    expect((await fetch(s.url + '/healthz')).status).toBe(200);

    // After the delay (3 s) the listener closes; runners are told to go elsewhere, streams end.
    const { code } = await ws.closed;
    expect(code).toBe(1001);
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(2900);
    expect(await streamEnded).toBeLessThan(signalledAt + 6000);
    await waitFor('the listener to close', async () => fetch(s.url + '/healthz').then(() => false, () => true), 5000, 50);

    inFlight.socket.write(body.slice(5));
    const answer = await inFlight.response;
    expect(answer).toMatch(/^HTTP\/1.1 201/);
    expect(answer).toContain('"name":"late"');
    inFlight.socket.end();

    expect(await exited).toBe(0);
    // Done when the request in flight was: not at the end of the grace (20 s).
    expect(Date.now() - signalledAt).toBeLessThan(15_000);
    expect(s.logs()).toContain('received SIGTERM, stopping');

    // What the in-flight request did is there after a restart.
    server = await startServer(db);
    const projects = await fetch(server.url + '/api/v1/projects', { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<any>);
    expect(projects.items.map((p: { name: string }) => p.name)).toContain('late');
  });
});

describe('readiness (PostgreSQL)', () => {
  let db: FreshDatabase;
  let proxy: TcpProxy;
  let server: ServerHandle | undefined;
  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await db?.drop();
  });

  it('/readyz is 503 while the database is unreachable and 200 again once it is back; /healthz stays 200', async () => {
    db = await freshDatabase('postgres');
    const url = new URL(db.databaseUrl!);
    proxy = await tcpProxy(Number(url.port || 5432));
    url.port = String(proxy.port);
    server = await startServer({ ...db, databaseUrl: url.toString() });
    const s = server;
    expect((await fetch(s.url + '/readyz')).status).toBe(200);

    proxy.cut();
    const down = await waitFor(
      'readiness to fail',
      async () => {
        const res = await fetch(s.url + '/readyz');
        return res.status === 503 ? ((await res.json()) as any) : undefined;
      },
      10_000,
      100,
    ).catch((err) => Promise.reject(new Error(`${err}\n${s.logs()}`)));
    expect(down).toMatchObject({ status: 'not_ready', database: 'postgres' });
    expect(['database_unreachable', 'database_timeout']).toContain(down.reason);
    // No connection string, password or host in what it says.
    expect(JSON.stringify(down)).not.toMatch(/postgres:\/\/|djangocommand:/);
    expect((await fetch(s.url + '/healthz')).status).toBe(200);

    proxy.restore();
    await waitFor('readiness to come back', async () => (await fetch(s.url + '/readyz')).status === 200, 15_000, 200);
  });
});
