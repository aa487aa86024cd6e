/**
 * A runner holding an execution hears of a stop through the `stop` topic, published by the state
 * machine (a cancel, a timeout, a final status), not on every change of the execution: its own
 * `started` and output frames wake nothing. Over a real WebSocket to a listening in-process
 * server, on both databases.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { welcomedRunner, type V2Client } from './support/v2Socket.js';
import { encodeOutputFrame, type Cancel, type Execute, type ServerMessage } from '../src/shared/protocolV2.js';
import { topics } from '../src/core/notifier.js';
import { sweep } from '../src/core/sweeper.js';

const isExecute = (m: ServerMessage): m is Execute => m.type === 'execute';

describe.each(DB_KINDS)('stopping a v2 execution on %s', (kind) => {
  let t: TestApp;
  let runner: V2Client;
  beforeEach(async () => {
    t = await testApp(kind);
    runner = await welcomedRunner(t);
  });
  afterEach(async () => {
    await runner.close();
    await t.close();
  });

  /** A running execution held by the runner, with its output sent; counts the stop wake-ups of it. */
  async function running(timeout?: number): Promise<{ id: string; stops: () => number }> {
    const created = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [], ...(timeout ? { timeout } : {}) })).json();
    const id = (await runner.next((m): m is Execute => isExecute(m) && m.execution_id === created.id)).execution_id;
    let stops = 0;
    t.core.notifier.subscribe(topics.stop(id), () => stops++);
    runner.send({ type: 'started', execution_id: id, pid: 1, warm: false, at: t.clock.now });
    for (let seq = 1; seq <= 3; seq++) runner.sendRaw(encodeOutputFrame({ type: 'output', execution_id: id, seq, stream: 'stdout', data: `line ${seq}\n`, line_times: [[0, t.clock.now]] }), true);
    await runner.settle();
    expect((await t.api('GET', `/api/v1/executions/${id}`)).json()).toMatchObject({ status: 'running', output_bytes: 21 });
    return { id, stops: () => stops };
  }

  it('tells the runner of a cancel, woken by the stop topic only', async () => {
    const { id, stops } = await running();
    expect(stops()).toBe(0);
    expect((await t.api('POST', `/api/v1/executions/${id}/cancel`, { force: true })).statusCode).toBe(200);
    expect(stops()).toBe(1);
    const cancel = await runner.next((m): m is Cancel => m.type === 'cancel' && m.execution_id === id);
    expect(cancel).toEqual({ type: 'cancel', execution_id: id, force: true, reason: 'user' });
  });

  it('tells the runner of a timeout found by the sweeper', async () => {
    const { id, stops } = await running(60);
    t.clock.now += 61_000;
    expect((await sweep(t.core)).timeoutRequested).toBe(1);
    expect(stops()).toBe(1);
    const cancel = await runner.next((m): m is Cancel => m.type === 'cancel' && m.execution_id === id);
    expect(cancel).toMatchObject({ execution_id: id, reason: 'timeout' });
  });

  it('wakes the stop topic once a final status is reached, and sends no cancel for an end the runner reported', async () => {
    const { id, stops } = await running();
    runner.send({ type: 'finished', execution_id: id, exit_code: 0, status: 'success', last_seq: 3, at: t.clock.now });
    await runner.next((m): m is ServerMessage => m.type === 'finished_ack' && m.execution_id === id);
    expect(stops()).toBe(1);
    await runner.settle();
    expect(runner.received.filter((m) => m.type === 'cancel')).toEqual([]);
  });

  it('pushes a cancel whose wake-up was lost at the next safety sweep, reading every held execution at once', async () => {
    expect((await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 2 })).statusCode).toBe(200);
    const a = await running();
    const b = await running();
    // Written behind the notifier's back, as by a replica whose NOTIFY was lost.
    for (const { id } of [a, b]) await t.core.store.updateExecution(id, ['running'], { cancelRequestedAt: t.clock.now, cancelForce: false, cancelReason: 'user' });
    const one = vi.spyOn(t.core.store, 'getExecution');
    const many = vi.spyOn(t.core.store, 'getExecutions');
    for (const { id } of [a, b]) {
      const cancel = await runner.next((m): m is Cancel => m.type === 'cancel' && m.execution_id === id);
      expect(cancel).toEqual({ type: 'cancel', execution_id: id, force: false, reason: 'user' });
    }
    expect(one).not.toHaveBeenCalled();
    expect(many.mock.calls[0]?.[0]).toEqual(expect.arrayContaining([a.id, b.id]));
    // Pushed once: later sweeps find it already sent.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(runner.received.filter((m) => m.type === 'cancel')).toHaveLength(2);
  });
});
