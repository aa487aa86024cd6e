/**
 * The server's side of shells against a bare protocol v2 socket standing in for a runner (a
 * listening in-process server, on both databases): what a runner sends about shells is checked
 * strictly (DC_VALIDATION, the connection stays up), a runner speaks only for its own sessions,
 * writable is the server's decision (asked by the shell, answered by the server), and people who
 * may not open or attach get a refusal that is audited.
 */
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DB_KINDS } from '../support/databases.js';
import { testApp, type TestApp } from '../support/inProcess.js';
import { connectV2, hello, type V2Client } from '../support/v2Socket.js';
import type { ServerMessage } from '../../src/shared/protocolV2.js';
import type { ShellMode, ShellOpen } from '../../src/shared/shellProtocol.js';
import { encodeShellFrame } from '../../src/shared/shellFrame.js';
import { endStaleShells } from '../../src/core/shells.js';
import { waitFor } from '../support/serverProcess.js';

const isOpen = (m: ServerMessage): m is ShellOpen => m.type === 'shell_open';

describe.each(DB_KINDS)('shells over runner protocol v2 on %s', (kind) => {
  let t: TestApp;
  let url: string;
  let runner: V2Client;

  beforeEach(async () => {
    t = await testApp(kind);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    runner = await connectV2(url, t.projects.shop.key, t.clock.now);
    runner.send(hello());
    await runner.settle();
    expect((await t.api('PUT', '/api/v1/projects/shop/shell-settings', { enabled: true })).statusCode).toBe(200);
  });
  afterEach(async () => {
    await runner.close();
    await t.close();
  });

  /** Opens a shell as the admin; this test's "runner" says it started. */
  const openShell = async (): Promise<{ id: string; attach_path: string }> => {
    const res = t.api('POST', '/api/v1/projects/shop/shells', { cols: 90, rows: 20 });
    const open = await runner.next(isOpen);
    expect(open).toMatchObject({ cols: 90, rows: 20, read_only: true });
    runner.send({ type: 'shell_started', session_id: open.session_id, pid: 42, read_only: true });
    const r = await res;
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  };

  it('checks every shell message strictly and keeps the connection up', async () => {
    const s = await openShell();
    for (const bad of [
      { type: 'shell_started', session_id: s.id, pid: 1, read_only: true, extra: 1 },
      { type: 'shell_echo', session_id: 'not-a-uuid', on: true },
      { type: 'shell_writable_request', session_id: s.id, request_id: randomUUID(), reason: 'bell\u0007' },
      { type: 'shell_exited', session_id: s.id, exit_code: 100_000 },
      { type: 'shell_nonsense', session_id: s.id },
    ]) {
      runner.send(bad);
      expect(await runner.settle()).toEqual([expect.objectContaining({ type: 'error', code: 'DC_VALIDATION' })]);
      expect(runner.isOpen()).toBe(true);
    }
    runner.sendRaw(encodeShellFrame('x'.repeat(36), Buffer.from('hi')), true);
    expect(await runner.settle()).toEqual([expect.objectContaining({ type: 'error', code: 'DC_VALIDATION' })]);
    // A session it does not hold: told to close its shell, nothing recorded.
    const stranger = randomUUID();
    runner.send({ type: 'shell_writable_request', session_id: stranger, request_id: randomUUID(), reason: 'let me' });
    expect(await runner.settle()).toEqual([{ type: 'shell_close', session_id: stranger, reason: 'no such session on the server' }]);
    expect((await t.api('GET', '/api/v1/audit?action=shell.writable')).json().items).toEqual([]);
  });

  it('answers writable("reason") with the server\u2019s decision: granted with a reason, refused without, each audited', async () => {
    const s = await openShell();
    const empty = randomUUID();
    runner.send({ type: 'shell_writable_request', session_id: s.id, request_id: empty, reason: '   ' });
    const [answer] = await runner.settle();
    expect(answer).toMatchObject({ type: 'shell_answer', request_id: empty, granted: false });
    expect((answer as { message: string }).message).toContain('DC_SHELL_REASON');

    const asked = randomUUID();
    runner.send({ type: 'shell_writable_request', session_id: s.id, request_id: asked, reason: 'repair order 7' });
    expect(await runner.settle()).toEqual([{ type: 'shell_mode', session_id: s.id, read_only: false, request_id: asked } satisfies ShellMode]);
    const audit = (await t.api('GET', '/api/v1/audit?action=shell.writable')).json().items as Array<{ outcome: string; details: Record<string, unknown> }>;
    expect(audit.map((a) => [a.outcome, a.details.reason ?? a.details.code])).toEqual([
      ['ok', 'repair order 7'],
      ['denied', 'DC_SHELL_REASON'],
    ]);
    const events = await t.core.store.notifications.listUnroutedEvents(10);
    expect(events).toEqual([expect.objectContaining({ type: 'shell.writable', details: expect.objectContaining({ reason: 'repair order 7', user: expect.stringContaining('admin@example.com'), link: `http://dashboard.test/#/shells/${s.id}` }) })]);
    expect((await t.api('GET', `/api/v1/shells/${s.id}`)).json()).toMatchObject({ became_writable: true, status: 'open' });
  });

  it('opens writable at once when asked with a reason: the server says so after the shell started', async () => {
    const res = t.api('POST', '/api/v1/projects/shop/shells', { write: true, reason: 'backfill prices' });
    const open = await runner.next(isOpen);
    expect(open.read_only).toBe(true);
    runner.send({ type: 'shell_started', session_id: open.session_id, pid: 7, read_only: true });
    expect((await res).statusCode).toBe(201);
    await runner.next((m): m is ShellMode => m.type === 'shell_mode' && m.session_id === open.session_id && m.read_only === false);
    const audit = (await t.api('GET', '/api/v1/audit?action=shell.writable')).json().items;
    expect(audit).toEqual([expect.objectContaining({ outcome: 'ok', details: expect.objectContaining({ reason: 'backfill prices', via: 'open' }) })]);
  });

  it('ends, once and audited, a session whose server stopped without ending it', async () => {
    const s = await openShell();
    // Its server is gone: nobody touches it any more (this process's relay is forgotten here).
    t.clock.now += 10 * 60_000;
    await t.core.store.shells.touchSessions([], t.clock.now);
    expect(await endStaleShells(t.core)).toBe(1);
    expect(await endStaleShells(t.core)).toBe(0);
    expect((await t.api('GET', `/api/v1/shells/${s.id}`)).json()).toMatchObject({ status: 'ended', end_reason: 'the server relaying it stopped' });
    const ends = (await t.api('GET', '/api/v1/audit?action=shell.end')).json().items;
    expect(ends).toEqual([expect.objectContaining({ actor_type: 'system', details: expect.objectContaining({ session_id: s.id }) })]);
  });

  it('ends the attach stream and the shell when the credential that attached is revoked', async () => {
    const made = (await t.api('POST', '/api/v1/tokens', { name: 'laptop' })).json() as { id: string; token: string };
    const res = t.api('POST', '/api/v1/projects/shop/shells', {}, made.token);
    const open = await runner.next(isOpen);
    runner.send({ type: 'shell_started', session_id: open.session_id, pid: 9, read_only: true });
    const s = (await res).json() as { id: string; attach_path: string };
    const ws = new WebSocket(url.replace(/^http/, 'ws') + s.attach_path, { headers: { authorization: `Bearer ${made.token}` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    expect((await t.api('POST', `/api/v1/tokens/${made.id}/revoke`, {})).statusCode).toBe(200);
    expect(await closed).toBe(4401);
    await runner.next((m): m is ServerMessage => m.type === 'shell_close' && m.session_id === s.id);
    const ended = await waitFor('the session to end', async () => {
      const v = (await t.api('GET', `/api/v1/shells/${s.id}`)).json() as { status: string; end_reason: string };
      return v.status === 'ended' && v;
    });
    expect(ended.end_reason).toBe('the credential of its owner was revoked');
  });

  it('refuses a writable shell to an operator (project admins only), and an attach by anyone but the owner', async () => {
    const denied = await t.api('POST', '/api/v1/projects/shop/shells', { write: true, reason: 'fix a row' }, t.userToken);
    expect(denied.json()).toMatchObject({ code: 'DC_FORBIDDEN' });
    expect(denied.statusCode).toBe(403);
    const s = await openShell();
    const refusal = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url.replace(/^http/, 'ws') + s.attach_path, { headers: { authorization: `Bearer ${t.userToken}` } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(refusal).toBe(403);
    const audit = (await t.api('GET', '/api/v1/audit?action=shell.open')).json().items as Array<{ outcome: string; details: Record<string, unknown> }>;
    expect(audit.some((a) => a.outcome === 'denied' && a.details.code === 'DC_FORBIDDEN')).toBe(true);
    // Other people's recordings are not theirs to read either.
    expect((await t.api('GET', `/api/v1/shells/${s.id}/recording`, undefined, t.userToken)).statusCode).toBe(403);
  });
});
