/**
 * What a protocol v2 runner sends is checked as strictly as what users send: over a real
 * WebSocket to a listening in-process server, on both databases, malformed messages get a
 * DC_VALIDATION error naming the field, the connection stays up (never closed with 1011), and
 * nothing is stored that would break a reader later.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { connectV2, hello, type V2Client } from './support/v2Socket.js';
import type { Execute, ProtocolError, ServerMessage } from '../src/shared/protocolV2.js';

const isExecute = (m: ServerMessage): m is Execute => m.type === 'execute';
const ARG = { dest: 'name', option_strings: [], kind: 'store', nargs: null, type: 'str', choices: null, required: true };
const command = (name: string, schema: unknown = { arguments: [ARG], groups: [], subcommands: null }, app_label = 'demo') => ({ name, app_label, help_text: `usage: manage.py ${name}`, schema });

describe.each(DB_KINDS)('runner protocol v2 input on %s', (kind) => {
  let t: TestApp;
  let url: string;
  let runner: V2Client;
  beforeEach(async () => {
    t = await testApp(kind, {}, { api: 1024 * 1024, runner: 16 * 1024 * 1024 });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    runner = await connectV2(url, t.projects.shop.key, t.clock.now);
    runner.send(hello());
    runner.send({ type: 'commands', commands: [command('migrate'), command('check')] });
    expect(await runner.settle()).toEqual([expect.objectContaining({ type: 'welcome' })]);
  });
  afterEach(async () => {
    await runner.close();
    await t.close();
  });

  const commandNames = async () => (await t.api('GET', '/api/v1/projects/shop/commands')).json().items.map((c: { name: string }) => c.name).sort();
  /** Sends, and returns the one error the server answered; the connection must still be open. */
  const refused = async (msg: unknown): Promise<ProtocolError> => {
    if (Buffer.isBuffer(msg)) runner.sendRaw(msg, true);
    else runner.send(msg);
    const answers = await runner.settle();
    expect(answers).toEqual([expect.objectContaining({ type: 'error', code: 'DC_VALIDATION' })]);
    expect(runner.isOpen()).toBe(true);
    return answers[0] as ProtocolError;
  };

  it('refuses a malformed argparse schema, naming the command and field, and keeps the catalogue', async () => {
    for (const [schema, field] of [
      [{ arguments: [null], groups: [] }, 'schema.arguments[0]'],
      [{ arguments: [{ ...ARG, nargs: [] }], groups: [] }, 'schema.arguments[0].nargs'],
      [{ arguments: [], groups: [], subcommands: { dest: 'x', required: true, choices: { add: { arguments: 'x', groups: [] } } } }, 'schema.subcommands.choices["add"].arguments'],
      ['not a schema', 'schema'],
    ] as const) {
      const error = await refused({ type: 'commands', commands: [command('migrate'), command('odd', schema)] });
      expect(error.message).toContain('"odd"');
      expect(error.message).toContain(field);
    }
    expect(await commandNames()).toEqual(['check', 'migrate']);
    const res = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'odd' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('DC_UNKNOWN_COMMAND');
  });

  it('refuses a schema nested 100,000 levels deep with a validation error, not a closed connection', async () => {
    const deep = '{"arguments":[],"groups":[],"subcommands":{"dest":"a","required":false,"choices":{"x":'.repeat(100_000) + 'null' + '}}}'.repeat(100_000);
    runner.sendRaw(`{"type":"commands","commands":[{"name":"deep","app_label":"demo","help_text":"","schema":${deep}}]}`, false);
    const answers = await runner.settle(30_000);
    expect(answers).toEqual([expect.objectContaining({ type: 'error', code: 'DC_VALIDATION', message: expect.stringMatching(/"deep".*nested more than/) })]);
    expect(runner.isOpen()).toBe(true);
    expect(await commandNames()).toEqual(['check', 'migrate']);
  });

  it('refuses control characters in names and app labels, and keeps non-Latin names', async () => {
    for (const [c, field] of [
      [command('bad\nname'), 'commands[1].name'],
      [command('nul\u0000'), 'commands[1].name'],
      [command('esc\u001b[31m'), 'commands[1].name'],
      [command('ok', null, 'app\rlabel'), 'commands[1].app_label'],
    ] as const) {
      const error = await refused({ type: 'commands', commands: [command('migrate'), c] });
      expect(error.message).toContain(field);
      expect(error.message).toMatch(/control character/);
    }
    expect(await commandNames()).toEqual(['check', 'migrate']);
    runner.send({ type: 'commands', commands: [command('migrate'), command('名前')] });
    expect(await runner.settle()).toEqual([]);
    expect(await commandNames()).toEqual(['migrate', '名前']);
    expect((await refused(hello({ hostname: 'host\r\nforged: line' }))).message).toContain('hostname');
  });

  it('answers a message whose type is an Object.prototype key, or nested deep, with DC_VALIDATION, not a 1011 close', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    for (const text of ['{"type":"__proto__"}', '{"type":"constructor"}', '{"type":"toString"}', `{"type":${deep}}`]) {
      runner.sendRaw(text, false);
      const answers = await runner.settle().catch((err: unknown) => [{ type: 'error', code: `no answer (${String(err).slice(0, 40)})`, message: text.slice(0, 40) }]);
      expect([text.slice(0, 30), answers]).toEqual([text.slice(0, 30), [expect.objectContaining({ type: 'error', code: 'DC_VALIDATION' })]]);
      expect(runner.isOpen()).toBe(true);
    }
  });

  it('refuses times and counts out of range in started, output and finished, storing none of them', async () => {
    const created = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: ['app'] })).json();
    const id = (await runner.next(isExecute)).execution_id;
    expect(id).toBe(created.id);
    const status = async () => (await t.api('GET', `/api/v1/executions/${id}`)).json().status;
    const chunks = async () => (await t.api('GET', `/api/v1/executions/${id}/output/chunks`)).json().items.length;

    for (const at of [1e308, -1, 253_402_300_800_000]) expect((await refused({ type: 'started', execution_id: id, pid: 1, warm: false, at })).message).toContain('/at');
    expect((await refused({ type: 'started', execution_id: id, pid: 2 ** 40, warm: false, at: t.clock.now })).message).toContain('/pid');
    expect(await status()).toBe('dispatched');
    runner.send({ type: 'started', execution_id: id, pid: 1, warm: false, at: t.clock.now });
    expect(await runner.settle()).toEqual([]);
    expect(await status()).toBe('running');

    const output = { type: 'output', execution_id: id, seq: 1, stream: 'stdout', data: 'line\n', line_times: [[0, t.clock.now]] };
    for (const bad of [{ line_times: [[0, 1e308]] }, { line_times: [[1e300, t.clock.now]] }, { seq: 3_000_000_000 }]) {
      await refused({ ...output, ...bad });
      const { data, ...header } = { ...output, ...bad };
      const head = Buffer.from(JSON.stringify(header));
      const frame = Buffer.concat([Buffer.alloc(4), head, Buffer.from(data)]);
      frame.writeUInt32BE(head.length, 0);
      await refused(frame);
    }
    expect(await chunks()).toBe(0);
    runner.send(output);
    expect(await runner.settle()).toEqual([{ type: 'ack', execution_id: id, seq: 1 }]);
    expect(await chunks()).toBe(1);

    const finished = { type: 'finished', execution_id: id, exit_code: 0, status: 'success', last_seq: 1, at: t.clock.now };
    for (const bad of [{ at: 1e308 }, { exit_code: 2 ** 31 }, { last_seq: 3_000_000_000 }]) await refused({ ...finished, ...bad });
    expect(await status()).toBe('running');
    runner.send(finished);
    expect(await runner.settle()).toContainEqual({ type: 'finished_ack', execution_id: id });
    expect(await status()).toBe('succeeded');
    expect((await t.api('GET', `/api/v1/executions/${id}/output/chunks`)).statusCode).toBe(200);
  });

  it('cannot end an execution that waits for approval: it was never handed to a runner', async () => {
    expect((await t.api('PUT', '/api/v1/projects/shop/commands/migrate/settings', { requires_approval: true })).statusCode).toBe(200);
    const waiting = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: ['app'] })).json();
    expect(waiting.status).toBe('awaiting_approval');
    for (const status of ['rejected', 'failed', 'cancelled']) {
      runner.send({ type: 'finished', execution_id: waiting.id, exit_code: null, status, last_seq: 0, at: t.clock.now });
      expect(await runner.settle()).toEqual([expect.objectContaining({ type: 'error', code: 'DC_INVALID_TRANSITION' })]);
    }
    expect((await t.api('GET', `/api/v1/executions/${waiting.id}`)).json()).toMatchObject({ status: 'awaiting_approval', runner_id: null, finished_at: null });
  });

  it('touches no execution of another project: started, output and finished about one change nothing', async () => {
    const blog = await connectV2(url, t.projects.blog.key, t.clock.now);
    try {
      blog.send(hello());
      blog.send({ type: 'commands', commands: [command('migrate')] });
      expect(await blog.settle()).toEqual([expect.objectContaining({ type: 'welcome' })]);
      const created = (await t.api('POST', '/api/v1/projects/blog/executions', { command: 'migrate', argv: ['app'] })).json();
      expect((await blog.next(isExecute)).execution_id).toBe(created.id);
      const answers = async (msg: unknown) => {
        runner.send(msg);
        return runner.settle();
      };
      // Told to stop what it says it started; its output and ends are dropped (acknowledged, so it stops resending).
      expect(await answers({ type: 'started', execution_id: created.id, pid: 1, warm: false, at: t.clock.now })).toEqual([{ type: 'cancel', execution_id: created.id, force: true, reason: 'user' }]);
      expect(await answers({ type: 'output', execution_id: created.id, seq: 1, stream: 'stdout', data: 'not mine\n', line_times: [[0, t.clock.now]] })).toEqual([{ type: 'ack', execution_id: created.id, seq: 1 }]);
      expect(await answers({ type: 'finished', execution_id: created.id, exit_code: 0, status: 'success', last_seq: 1, at: t.clock.now })).toEqual([{ type: 'finished_ack', execution_id: created.id }]);
      expect(await answers({ type: 'finished', execution_id: created.id, exit_code: null, status: 'cancelled', last_seq: 0, at: t.clock.now })).toEqual([{ type: 'finished_ack', execution_id: created.id }]);
      const after = (await t.api('GET', `/api/v1/executions/${created.id}`)).json();
      expect(after).toMatchObject({ status: 'dispatched', started_at: null, finished_at: null, exit_code: null });
      expect((await t.api('GET', `/api/v1/executions/${created.id}/output/chunks`)).json().items).toEqual([]);
      expect((await t.api('GET', `/api/v1/audit?execution=${created.id}`)).json().items.map((a: { action: string }) => a.action)).toEqual(['execution.create']);
      // Its own runner still runs it, and a repeated end changes nothing more.
      blog.send({ type: 'started', execution_id: created.id, pid: 1, warm: false, at: t.clock.now });
      const ended = { type: 'finished', execution_id: created.id, exit_code: 3, status: 'success', last_seq: 0, at: t.clock.now };
      blog.send(ended);
      expect(await blog.settle()).toContainEqual({ type: 'finished_ack', execution_id: created.id });
      blog.send({ ...ended, exit_code: 0 });
      expect(await blog.settle()).toContainEqual({ type: 'finished_ack', execution_id: created.id });
      expect((await t.api('GET', `/api/v1/executions/${created.id}`)).json()).toMatchObject({ status: 'failed', exit_code: 3 });
      const actions = (await t.api('GET', `/api/v1/audit?execution=${created.id}`)).json().items.map((a: { action: string }) => a.action);
      expect(actions.sort()).toEqual(['execution.complete', 'execution.create', 'execution.start']);
    } finally {
      await blog.close();
    }
  });
});
