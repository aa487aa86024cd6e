/**
 * Output frames of one execution are stored side by side (runnerSessions.ts, receive): over a
 * real WebSocket to a listening in-process server, on both databases, bursts of frames sent
 * without waiting for acks, then `finished` at once: every frame is stored once and
 * acknowledged, and `finished` is handled only after all of them. Messages about another
 * execution do not wait for them, and messages that arrive together share one revocation read.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { welcomedRunner, type V2Client } from './support/v2Socket.js';
import { encodeOutputFrame, type Execute, type ServerMessage } from '../src/shared/protocolV2.js';

const isExecute = (m: ServerMessage): m is Execute => m.type === 'execute';
/** Frames of one runner stored at once (MAX_FRAMES_STORED_AT_ONCE in runnerSessions.ts). */
const MAX_AT_ONCE = 8;
describe.each(DB_KINDS)('runner protocol v2 output frames on %s', (kind) => {
  let t: TestApp;
  let runner: V2Client;
  beforeEach(async () => {
    t = await testApp(kind, {}, { api: 1024 * 1024, runner: 16 * 1024 * 1024 });
    runner = await welcomedRunner(t);
  });
  afterEach(async () => {
    await runner.close();
    await t.close();
  });

  /** Runs one execution: `frames` output frames of `size` characters sent back to back, a resend of the first, and `finished` at once. */
  async function burst(frames: number, size: number): Promise<void> {
    await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [] });
    const id = (await runner.next((m): m is Execute => isExecute(m) && !runner.received.some((f) => f.type === 'finished_ack' && f.execution_id === m.execution_id))).execution_id;
    runner.send({ type: 'started', execution_id: id, pid: 1, warm: false, at: t.clock.now });
    const line = (seq: number) => `frame ${seq}: ${'é'.repeat(size)}\n`;
    const frame = (seq: number) => encodeOutputFrame({ type: 'output', execution_id: id, seq, stream: 'stdout', data: line(seq), line_times: [[0, t.clock.now]] });
    const from = runner.received.length;
    for (let seq = 1; seq <= frames; seq++) runner.sendRaw(frame(seq), true);
    runner.sendRaw(frame(1), true); // a resend, as after a reconnect: stored once
    runner.send({ type: 'finished', execution_id: id, exit_code: 0, status: 'success', last_seq: frames, at: t.clock.now });
    await runner.next((m): m is ServerMessage => m.type === 'finished_ack' && m.execution_id === id);

    const answers = runner.received.slice(from).filter((m) => m.type === 'ack' || m.type === 'finished_ack' || (m.type === 'error' && !m.message.includes('settle-')));
    expect(answers.at(-1)).toEqual({ type: 'finished_ack', execution_id: id });
    const acked = answers.filter((m) => m.type === 'ack').map((m) => (m as { seq: number }).seq);
    expect(acked).toHaveLength(frames + 1);
    expect([...new Set(acked)].sort((a, b) => a - b)).toEqual(Array.from({ length: frames }, (_, i) => i + 1));

    expect((await t.api('GET', `/api/v1/executions/${id}`)).json().status).toBe('succeeded');
    // What `finished` saw when it was handled: every chunk up to last_seq already stored.
    const [complete] = (await t.api('GET', `/api/v1/audit?execution=${id}&action=execution.complete`)).json().items;
    expect(complete).toMatchObject({ outcome: 'ok', details: { status: 'succeeded' } });
    expect(complete.details.output_missing_chunks).toBeUndefined();
    const text = (await t.api('GET', `/api/v1/executions/${id}/output`)).body;
    expect(text).toBe(Array.from({ length: frames }, (_, i) => line(i + 1)).join(''));
  }

  it('handles `finished` only once the frames before it, stored side by side, are stored', async () => {
    await burst(MAX_AT_ONCE, 1_000_000);
  });

  it('stores a burst of more frames than it stores at once, each once, in seq order', async () => {
    await burst(40, 1000);
  });

  it('reads the key\'s revocation once for messages about several executions that arrive together', async () => {
    await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 4 });
    const ids: string[] = [];
    // As many as the runner runs at once (its hello said 4).
    for (let i = 0; i < 4; i++) ids.push((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [] })).json().id);
    for (const id of ids) await runner.next((m): m is Execute => isExecute(m) && m.execution_id === id);
    const checks = vi.spyOn(t.core.store, 'revokedRunnerKeys');
    for (const id of ids) runner.send({ type: 'started', execution_id: id, pid: 1, warm: false, at: t.clock.now });
    await runner.settle();
    for (const id of ids) expect((await t.api('GET', `/api/v1/executions/${id}`)).json().status).toBe('running');
    // Four messages sent back to back, each checked after it arrived: one read, or two, not four.
    expect(checks.mock.calls.length).toBeGreaterThan(0);
    expect(checks.mock.calls.length).toBeLessThanOrEqual(2);
  });

  it('handles another execution\'s end while one execution\'s output is still being stored, and that one\'s end after it', async () => {
    await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 2 });
    const create = async () => (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [] })).json().id as string;
    const [slow, quick] = [await create(), await create()];
    for (const id of [slow, quick]) {
      await runner.next((m): m is Execute => isExecute(m) && m.execution_id === id);
      runner.send({ type: 'started', execution_id: id, pid: 1, warm: false, at: t.clock.now });
    }
    await runner.settle();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const appendOutput = t.core.store.appendOutput.bind(t.core.store);
    vi.spyOn(t.core.store, 'appendOutput').mockImplementation(async (chunk) => {
      if (chunk.executionId === slow) await held;
      return appendOutput(chunk);
    });
    const ended = (id: string) => (m: ServerMessage): m is ServerMessage => m.type === 'finished_ack' && m.execution_id === id;
    runner.sendRaw(encodeOutputFrame({ type: 'output', execution_id: slow, seq: 1, stream: 'stdout', data: 'slow\n', line_times: [[0, t.clock.now]] }), true);
    runner.send({ type: 'finished', execution_id: slow, exit_code: 0, status: 'success', last_seq: 1, at: t.clock.now });
    runner.send({ type: 'finished', execution_id: quick, exit_code: 0, status: 'success', last_seq: 0, at: t.clock.now });
    await runner.next(ended(quick), 3_000);
    expect((await t.api('GET', `/api/v1/executions/${quick}`)).json().status).toBe('succeeded');
    expect(runner.received.some(ended(slow))).toBe(false);
    expect((await t.api('GET', `/api/v1/executions/${slow}`)).json().status).toBe('running');

    release();
    await runner.next(ended(slow), 3_000);
    expect((await t.api('GET', `/api/v1/executions/${slow}/output`)).body).toBe('slow\n');
    const [complete] = (await t.api('GET', `/api/v1/audit?execution=${slow}&action=execution.complete`)).json().items;
    expect(complete.details.output_missing_chunks).toBeUndefined();
  });
});
