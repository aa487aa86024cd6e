/**
 * A bare protocol v2 connection for tests: a real WebSocket to a listening server, authenticated
 * like a runner, that sends whatever the test wants (valid or not) and records every answer.
 * `settle()` tells when the server has handled everything sent so far: messages are handled in
 * order, and a message of an unknown type is answered with an error that names it.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { V2_PATH, V2_PROTOCOL_VERSION, type Hello, type ServerMessage } from '../../src/shared/protocolV2.js';
import { afterEach, beforeEach } from 'vitest';
import { testApp, type TestApp } from './inProcess.js';
import type { DbKind } from './databases.js';

export interface V2Client {
  ws: WebSocket;
  received: ServerMessage[];
  /** Resolves when the socket closes, with the server's close code. */
  closed: Promise<{ code: number; reason: string }>;
  isOpen(): boolean;
  send(msg: unknown): void;
  sendRaw(data: string | Buffer, binary: boolean): void;
  /** Waits until the server handled everything sent before; returns what it answered meanwhile. */
  settle(timeoutMs?: number): Promise<ServerMessage[]>;
  /** Waits for an answer matching `pick` (already received or to come). */
  next<T extends ServerMessage>(pick: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export async function connectV2(baseUrl: string, key: string, nowMs: number, headers: Record<string, string> = {}): Promise<V2Client> {
  const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + V2_PATH, {
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    headers: { authorization: `Bearer ${key}`, 'x-request-timestamp': String(Math.floor(nowMs / 1000)), 'x-request-nonce': randomUUID(), ...headers },
  });
  const received: ServerMessage[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    received.push(JSON.parse(data.toString()) as ServerMessage);
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  closed.then(() => {
    for (const w of [...waiters]) w();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  let marks = 0;
  const client: V2Client = {
    ws,
    received,
    closed,
    isOpen: () => ws.readyState === WebSocket.OPEN,
    send: (msg) => ws.send(JSON.stringify(msg)),
    sendRaw: (data, binary) => ws.send(data, { binary }),
    next: <T extends ServerMessage>(pick: (m: ServerMessage) => m is T, timeoutMs = 10_000) =>
      new Promise<T>((resolve, reject) => {
        const check = () => {
          const found = received.find(pick);
          if (found) return done(() => resolve(found));
          if (ws.readyState !== WebSocket.OPEN) return done(() => reject(new Error(`socket closed while waiting; received ${JSON.stringify(received)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no such answer within ${timeoutMs} ms; received ${JSON.stringify(received)}`))), timeoutMs);
        const done = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      }),
    settle: async (timeoutMs) => {
      const from = received.length;
      const mark = `settle-${++marks}`;
      client.send({ type: mark });
      await client.next((m): m is ServerMessage => m.type === 'error' && m.message.includes(JSON.stringify(mark)), timeoutMs);
      return received.slice(from).filter((m) => !(m.type === 'error' && m.message.includes(JSON.stringify(mark))));
    },
    close: async () => {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      ws.terminate();
    },
  };
  return client;
}

export function hello(overrides: Partial<Hello> = {}): Hello {
  return {
    type: 'hello',
    protocol: V2_PROTOCOL_VERSION,
    runner_id: randomUUID(),
    hostname: 'test-host',
    runner_version: '0.1.0',
    python_version: '3.11.2',
    django_version: '4.2',
    commands_hash: '',
    max_concurrency: 4,
    running: [],
    ...overrides,
  };
}

/** The one command the v2 socket tests' runner offers. */
export const MIGRATE_COMMAND = { name: 'migrate', app_label: 'demo', help_text: 'usage: manage.py migrate', schema: { arguments: [], groups: [], subcommands: null } };

/**
 * Listens with an in-process test app on a free port, connects as the project's runner, says
 * hello and sends `commands` as its catalogue; returns once welcomed (nothing else answered).
 */
export async function welcomedRunner(t: TestApp, commands: unknown[] = [MIGRATE_COMMAND], project = 'shop'): Promise<V2Client> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const runner = await connectV2(`http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, t.projects[project].key, t.clock.now);
  runner.send(hello());
  runner.send({ type: 'commands', commands });
  const answers = await runner.settle();
  if (answers.length !== 1 || answers[0].type !== 'welcome') throw new Error(`not welcomed: ${JSON.stringify(answers)}`);
  return runner;
}

/** For a describe block: a fresh in-process app and its welcomed runner before each test, both closed after it. */
export function appWithRunnerPerTest(kind: DbKind): { readonly t: TestApp; readonly runner: V2Client } {
  const live = {} as { t: TestApp; runner: V2Client };
  beforeEach(async () => {
    live.t = await testApp(kind);
    live.runner = await welcomedRunner(live.t);
  });
  afterEach(async () => {
    await live.runner.close();
    await live.t.close();
  });
  return live;
}
