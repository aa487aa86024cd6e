/**
 * Revocation bites at once: for each kind of credential and each live channel that used it
 * (a protocol v2 socket, a live output stream, a download, v1 polling, a dashboard session),
 * revoke it and the channel ends within a second, and nothing it sends afterwards is stored.
 * Real server processes; across two replicas on PostgreSQL too.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { connectV2, type V2Client } from '../support/v2Socket.js';
import { V1Client } from '../support/v1Client.js';
import { V2_PROTOCOL_VERSION } from '../../src/shared/protocolV2.js';

const WITHIN_MS = 1000;
/** Slack for two processes on a loaded 2-core machine; the server's own promise is a second. */
const MEASURE_SLACK_MS = 500;

interface Live {
  ended: Promise<number>;
  events: string[];
}

/** Opens a live output stream and resolves `ended` with the time it ended. */
async function openStream(url: string, headers: Record<string, string>): Promise<Live> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  expect(res.status).toBe(200);
  const events: string[] = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
      for (const m of decoder.decode(piece, { stream: true }).matchAll(/^event: (\w+)$/gm)) events.push(m[1]);
    }
    return Date.now();
  })();
  return { ended, events };
}

function hello(runnerId = randomUUID()) {
  return {
    type: 'hello',
    protocol: V2_PROTOCOL_VERSION,
    runner_id: runnerId,
    hostname: 'test-host',
    runner_version: '0.1.0',
    python_version: '3.11.2',
    django_version: '3.2.25',
    commands_hash: '',
    max_concurrency: 2,
    running: [],
  };
}

describe.each(['sqlite', 'postgres'] as const)('revocation on %s, one server and two replicas', (kind) => {
  let db: FreshDatabase;
  let a: ServerHandle;
  let b: ServerHandle;
  let token: string;
  let key: string;

  const api = async (server: ServerHandle, path: string, init: { method?: string; body?: unknown; auth?: string } = {}) => {
    const res = await fetch(server.url + path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${init.auth ?? token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    return { status: res.status, json: (await res.json()) as any };
  };

  /** A v2 "runner" on `server` that said hello and reported one command; an execution it runs, with some output. */
  const runnerWithExecution = async (server: ServerHandle, runnerKey: string) => {
    const ws = await connectV2(server.url, runnerKey, Date.now());
    ws.send(hello());
    await ws.next((m): m is any => m.type === 'welcome');
    ws.send({ type: 'commands', commands: [{ name: 'slow', app_label: 'demo', help_text: 'usage: manage.py slow', schema: null }] });
    await ws.settle();
    await api(a, '/api/v1/projects/shop/commands/slow', { method: 'PATCH', body: { max_concurrency: 50 } });
    const e = (await api(a, '/api/v1/projects/shop/executions', { body: { command: 'slow' } })).json;
    await ws.next((m): m is any => m.type === 'execute' && m.execution_id === e.id);
    ws.send({ type: 'started', execution_id: e.id, pid: 4242, warm: true, at: Date.now() });
    ws.send({ type: 'output', execution_id: e.id, seq: 1, stream: 'stdout', data: 'before\n', line_times: [[0, Date.now()]] });
    await ws.next((m): m is any => m.type === 'ack' && m.execution_id === e.id);
    return { ws, id: e.id as string };
  };

  beforeAll(async () => {
    db = await freshDatabase(kind);
    a = await startServer(db);
    // A second replica shares the database: only PostgreSQL carries wake-ups between them, and
    // SQLite's replicas (one host) rely on the once-a-second check.
    b = await startServer(db);
    ({ token, key } = await setUpProject(a));
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it.each([
    ['through the API of the same server', 'api-same'],
    ['through the API of the other replica', 'api-other'],
    ['with the admin CLI on the database (no wake-up at all)', 'admin'],
  ] as const)('closes a v2 socket within a second of its key being revoked %s, and stores nothing it sends after', async (_label, how) => {
    const fresh = (await api(a, '/api/v1/projects/shop/keys', { body: { name: `k-${how}` } })).json;
    const { ws, id } = await runnerWithExecution(b, fresh.key);
    let revokedAt = Date.now();
    if (how === 'admin') {
      expect((await b.admin(['revoke-key', fresh.prefix])).code).toBe(0);
      // The clock starts when the CLI is done: its own start-up (seconds on a loaded machine) is not what this measures.
      revokedAt = Date.now();
    } else expect((await api(how === 'api-same' ? b : a, `/api/v1/projects/shop/keys/${fresh.id}/revoke`, { body: {} })).status).toBe(200);
    // Keep talking as if nothing happened.
    ws.send({ type: 'output', execution_id: id, seq: 2, stream: 'stdout', data: 'after\n', line_times: [] });
    ws.send({ type: 'finished', execution_id: id, exit_code: 0, status: 'success', last_seq: 2, at: Date.now() });
    const { code } = await ws.closed;
    const tookMs = Date.now() - revokedAt;
    expect(code).toBe(4401);
    expect(tookMs).toBeLessThan(WITHIN_MS + (how === 'admin' ? WITHIN_MS : 0) + MEASURE_SLACK_MS);
    const e = (await api(a, `/api/v1/executions/${id}`)).json;
    expect(e.status).toBe('running');
    expect((await fetch(`${a.url}/api/v1/executions/${id}/output`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text()))).toBe('before\n');
    // And it cannot come back.
    await expect(connectV2(b.url, fresh.key, Date.now())).rejects.toThrow(/401/);
    // Nothing is pushed to a revoked runner: new work waits for a runner with a valid key.
    await api(a, `/api/v1/executions/${id}/cancel`, { body: { force: true } });
  });

  it.each([
    ['a personal API token', 'token'],
    ['a dashboard session (signed out elsewhere)', 'session'],
  ] as const)('ends a live output stream and a download on the other replica within a second of %s being revoked', async (_label, kind2) => {
    const runner = await runnerWithExecution(a, key);
    let headers: Record<string, string>;
    let revoke: () => Promise<void>;
    if (kind2 === 'token') {
      const t = (await api(a, '/api/v1/tokens', { body: { name: `stream-${randomUUID().slice(0, 8)}` } })).json;
      headers = { authorization: `Bearer ${t.token}` };
      revoke = async () => void expect((await api(b, `/api/v1/tokens/${t.id}/revoke`, { body: {}, auth: t.token })).status).toBe(200);
    } else {
      const login = await fetch(`${a.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@localhost', password: 'correct horse battery staple' }) });
      expect(login.status).toBe(200);
      const cookie = login.headers.get('set-cookie')!.split(';')[0];
      const csrf = ((await login.json()) as { csrf_token: string }).csrf_token;
      headers = { cookie };
      revoke = async () => void expect((await fetch(`${b.url}/api/v1/session`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } })).status).toBe(200);
    }
    const stream = await openStream(`${b.url}/api/v1/executions/${runner.id}/events`, headers);
    await waitFor('the first output event', () => stream.events.includes('output'));
    const revokedAt = Date.now();
    await revoke();
    const endedAt = await stream.ended;
    expect(endedAt - revokedAt).toBeLessThan(WITHIN_MS + MEASURE_SLACK_MS);
    expect(stream.events).toContain('revoked');
    expect(stream.events).not.toContain('end');
    // The credential is refused from now on, on both replicas.
    for (const server of [a, b]) expect((await fetch(`${server.url}/api/v1/executions/${runner.id}/events`, { headers })).status).toBe(401);
    await runner.ws.close();
    await api(a, `/api/v1/executions/${runner.id}/cancel`, { body: { force: true } });
  });

  it('refuses a v1 runner at its next request once its key is revoked: nothing it sends is stored', async () => {
    const fresh = (await api(a, '/api/v1/projects/shop/keys', { body: { name: 'v1' } })).json;
    const v1 = new V1Client({ serverUrl: b.url, apiKey: fresh.key, maxRetries: 0 });
    const e = (await api(a, '/api/v1/projects/shop/executions', { body: { command: 'slow' } })).json;
    const pending = await waitFor('the offer', async () => (await v1.pending()).find((x) => x.id === e.id));
    await v1.start(pending.id);
    expect((await api(a, `/api/v1/projects/shop/keys/${fresh.id}/revoke`, { body: {} })).status).toBe(200);
    await expect(v1.output(e.id, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: 'after\n' }] })).rejects.toThrow(/401|revoked/);
    await expect(v1.pending()).rejects.toThrow(/401|revoked/);
    expect((await api(a, `/api/v1/executions/${e.id}`)).json.output_bytes).toBe(0);
    await api(a, `/api/v1/executions/${e.id}/cancel`, { body: { force: true } });
  });
});
