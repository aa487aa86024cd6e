/**
 * Slow and greedy clients against a real server process: a body that never finishes and headers
 * sent a byte at a time are cut off (authenticated or not), one address cannot take every socket,
 * and long-lived live output streams are not affected by any of it.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { connectV2 } from '../support/v2Socket.js';

const RECEIVE_TIMEOUT_S = 2;

/** Opens a socket, writes `first`, then nothing more; resolves with what came back and when it closed. */
function stall(port: number, first: string): Promise<{ closedAfterMs: number; answer: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => socket.write(first));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ closedAfterMs: Date.now() - started, answer }));
    setTimeout(() => socket.destroy(), 60_000).unref();
  });
}

describe('slow and greedy clients', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let token: string;
  let key: string;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db, { DJANGOCOMMAND_RECEIVE_TIMEOUT: String(RECEIVE_TIMEOUT_S), DJANGOCOMMAND_MAX_CONNECTIONS_PER_ADDRESS: '20' });
    ({ token, key } = await setUpProject(server));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it.each([
    ['unauthenticated', ''],
    ['with a token', 'authorization: Bearer TOKEN\r\n'],
    ['with a runner key, on the streamed v1 output endpoint', 'authorization: Bearer KEY\r\nx-request-timestamp: NOW\r\nx-request-nonce: 1b4e28ba-2fa1-41d2-883f-0016d3cca427\r\n'],
  ])('cuts off a body that never finishes (%s) with a DC_ error', async (_label, auth) => {
    const path = auth.includes('KEY') ? '/api/runner/executions/1b4e28ba-2fa1-41d2-883f-0016d3cca427/output/' : '/api/v1/projects/shop/executions';
    const headers = auth.replace('TOKEN', token).replace('KEY', key).replace('NOW', String(Math.floor(Date.now() / 1000)));
    const { closedAfterMs, answer } = await stall(server.port, `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n${headers}\r\n{"comma`);
    expect(closedAfterMs).toBeLessThan((RECEIVE_TIMEOUT_S + 2) * 1000);
    // The server answers what it can: a timeout, or the error it found before it.
    if (answer) expect(answer).toMatch(/"code":"DC_/);
  });

  it('cuts off headers sent a byte at a time', async () => {
    const started = Date.now();
    const closed = await new Promise<number>((resolve) => {
      const socket = net.connect(server.port, '127.0.0.1');
      const text = 'GET /api/v1/health HTTP/1.1\r\nhost: x\r\nx-slow: ' + 'a'.repeat(1000);
      let i = 0;
      const timer = setInterval(() => socket.writable && socket.write(text[i++ % text.length]), 100);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve(Date.now() - started);
      });
    });
    // Node checks every second; the headers' own limit is the receive timeout here (under 10 s).
    expect(closed).toBeLessThan((RECEIVE_TIMEOUT_S + 2) * 1000);
  });

  it('lets one address hold only so many connections, and serves it again when they close', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
      })),
    );
    const refused = await new Promise<boolean>((resolve) => {
      const extra = net.connect(server.port, '127.0.0.1');
      extra.on('error', () => resolve(true));
      extra.on('close', () => resolve(true));
      extra.on('connect', () => extra.write('GET /api/v1/health HTTP/1.1\r\nhost: x\r\n\r\n'));
      extra.on('data', () => resolve(false));
    });
    expect(refused).toBe(true);
    for (const s of sockets) s.destroy();
    await waitFor('the server to take connections again', async () => (await fetch(`${server.url}/api/v1/health`)).ok);
  });

  it('keeps a runner WebSocket and a live output stream open far past the receive timeout', async () => {
    const ws = await connectV2(server.url, key, Date.now());
    ws.send({ type: 'hello', protocol: 2, runner_id: randomUUID(), hostname: 'h', runner_version: '0.1.0', python_version: '3.11', django_version: '3.2', commands_hash: '', max_concurrency: 1, running: [] });
    await ws.next((m): m is any => m.type === 'welcome');
    ws.send({ type: 'commands', commands: [{ name: 'slow', app_label: 'demo', help_text: 'usage', schema: null }] });
    await ws.settle();
    const created = await fetch(`${server.url}/api/v1/projects/shop/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'slow' }),
    });
    const { id } = (await created.json()) as { id: string };
    await ws.next((m): m is any => m.type === 'execute');
    ws.send({ type: 'started', execution_id: id, pid: 1, warm: false, at: Date.now() });
    const res = await fetch(`${server.url}/api/v1/executions/${id}/events`, { headers: { authorization: `Bearer ${token}` } });
    const reader = res.body!.getReader();
    await new Promise((r) => setTimeout(r, (RECEIVE_TIMEOUT_S + 2) * 1000));
    ws.send({ type: 'output', execution_id: id, seq: 1, stream: 'stdout', data: 'still here\n', line_times: [] });
    let text = '';
    while (!text.includes('still here')) text += new TextDecoder().decode((await reader.read()).value);
    expect(ws.isOpen()).toBe(true);
    await reader.cancel();
    await ws.close();
  });
});
