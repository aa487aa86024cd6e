/**
 * Findings of the security and reliability review, in-process on both databases: output chunks of
 * any size from the Python runner, output with holes never looking whole, `lost` final, a server
 * outage never making healthy executions lost, and revoked runner keys refused at once.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import type { Kysely } from 'kysely';
import { sweep } from '../src/core/sweeper.js';
import { PENDING_FINGERPRINT } from '../src/core/runnerV1.js';

describe.each(DB_KINDS)('hardening on %s', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    // The runner body limit is small here, as if DJANGOCOMMAND_MAX_RUNNER_BODY were: output chunks have their own.
    t = await testApp(kind, { runnerOfflineAfterMs: 90_000, lostGraceMs: 60_000 }, { api: 1024 * 1024, runner: 64 * 1024, output: 64 * 1024 * 1024 });
    await syncCommands(t, 'shop', ['migrate', 'spew']);
  });
  afterEach(async () => t.close());

  const started = async (command = 'spew') => {
    const e = (await t.api('POST', '/api/v1/projects/shop/executions', { command })).json();
    expect((await t.runner('shop', 'POST', `/executions/${e.id}/start/`)).statusCode).toBe(200);
    return e.id as string;
  };
  const get = async (id: string) => (await t.api('GET', `/api/v1/executions/${id}`)).json();

  it('takes an output chunk far larger than the runner body limit, a segment per line, byte for byte', async () => {
    const id = await started();
    const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${'é名'.repeat(i % 7)}\n`);
    const body = JSON.stringify({ chunk_number: 1, is_stderr: false, segments: lines.map((content, i) => ({ timestamp: 1732712345 + i / 1000, content })) });
    expect(body.length).toBeGreaterThan(1024 * 1024);
    const nonce = randomUUID();
    const res = await t.runner('shop', 'POST', `/executions/${id}/output/`, body, { 'x-request-nonce': nonce });
    expect(res.statusCode, res.body).toBe(200);
    // A retry with the same nonce and bytes gets the same answer and stores nothing twice.
    expect((await t.runner('shop', 'POST', `/executions/${id}/output/`, body, { 'x-request-nonce': nonce })).body).toBe(res.body);
    const other = await t.runner('shop', 'POST', `/executions/${id}/output/`, body.replace('line 0', 'line X'), { 'x-request-nonce': nonce });
    expect(other.json().code).toBe('DC_REPLAYED_REQUEST');
    expect((await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: 0, status: 'success' })).json().status).toBe('succeeded');
    expect((await t.api('GET', `/api/v1/executions/${id}/output`)).body).toBe(lines.join(''));
    expect(await get(id)).toMatchObject({ status: 'succeeded', output_missing_chunks: 0, output_incomplete: false });
    const chunk = (await t.api('GET', `/api/v1/executions/${id}/output/chunks`)).json().items[0];
    expect(chunk.line_times[1]).toEqual([lines[0].length, 1732712345001]);
  });

  it('handles again a request whose answer was never stored (its server died), and lets output through on the next retry', async () => {
    const id = await started();
    const db = (t.core.store as unknown as { db: Kysely<any> }).db;
    const nonce = randomUUID();
    const first = await t.runner('shop', 'GET', `/executions/${id}/cancel-status/`, undefined, { 'x-request-nonce': nonce });
    expect(first.statusCode).toBe(200);
    // As a server killed between recording the nonce and its answer leaves it.
    await db.updateTable('request_nonces').set({ response_status: null, response_body: null }).where('nonce', '=', nonce).execute();
    const retry = await t.runner('shop', 'GET', `/executions/${id}/cancel-status/`, undefined, { 'x-request-nonce': nonce });
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.body).toBe(first.body);
    // Another request under that nonce is still a replay.
    expect((await t.runner('shop', 'GET', `/pending/`, undefined, { 'x-request-nonce': nonce })).json().code).toBe('DC_REPLAYED_REQUEST');

    // output/ cut off before its body was read: the nonce was left "pending".
    const keyId = (await db.selectFrom('request_nonces').select('key_id').where('nonce', '=', nonce).executeTakeFirstOrThrow()).key_id;
    const outNonce = randomUUID();
    await t.core.store.recordNonce(keyId, outNonce, t.clock.now, PENDING_FINGERPRINT);
    const body = { chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: 'once\n' }] };
    const cut = await t.runner('shop', 'POST', `/executions/${id}/output/`, body, { 'x-request-nonce': outNonce });
    expect(cut.statusCode).toBe(503);
    expect(cut.json().code).toBe('DC_RETRY');
    const next = await t.runner('shop', 'POST', `/executions/${id}/output/`, body, { 'x-request-nonce': outNonce });
    expect(next.statusCode, next.body).toBe(200);
    expect((await t.runner('shop', 'POST', `/executions/${id}/output/`, body, { 'x-request-nonce': outNonce })).body).toBe(next.body);
    expect((await t.api('GET', `/api/v1/executions/${id}/output`)).body).toBe('once\n');
  });

  it('refuses an output chunk over DJANGOCOMMAND_MAX_OUTPUT_CHUNK with DC_BODY_TOO_LARGE, and an unauthenticated one before reading it', async () => {
    const id = await started();
    const body = JSON.stringify({ chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: 'x'.repeat(65 * 1024 * 1024) }] });
    const huge = await t.runner('shop', 'POST', `/executions/${id}/output/`, body);
    expect(huge.statusCode).toBe(413);
    expect(huge.json().code).toBe('DC_BODY_TOO_LARGE');
    const anonymous = await t.runner('shop', 'POST', `/executions/${id}/output/`, body, { authorization: 'Bearer dc_nope' });
    expect(anonymous.statusCode).toBe(401);
    expect((await get(id)).output_bytes).toBe(0);
  });

  it('says the output is incomplete when chunk numbers have a gap at the end, never that it is whole', async () => {
    const id = await started();
    const chunk = (n: number) => t.runner('shop', 'POST', `/executions/${id}/output/`, { chunk_number: n, is_stderr: false, segments: [{ timestamp: 1, content: `chunk ${n}\n` }] });
    expect((await chunk(1)).statusCode).toBe(200);
    expect((await chunk(3)).statusCode).toBe(200); // 2 was dropped by the runner (a 413 of old, a network error)
    await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: 0, status: 'success' });
    expect(await get(id)).toMatchObject({ status: 'succeeded', output_missing_chunks: 1, output_incomplete: true });
    const done = (await t.api('GET', `/api/v1/audit?execution=${id}&action=execution.complete`)).json().items[0];
    expect(done).toMatchObject({ outcome: 'error', details: { output_missing_chunks: 1 } });
  });

  it('keeps lost final: a late end is information, and the runner is told to stop', async () => {
    await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' });
    const id = await started('migrate');
    t.clock.now += 151_000;
    expect((await sweep(t.core)).lost).toBe(1);
    expect((await get(id)).status).toBe('lost');
    expect((await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: 3, status: 'failed' })).json().status).toBe('lost');
    expect((await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: 0, status: 'success' })).json().status).toBe('lost');
    expect(await get(id)).toMatchObject({ status: 'lost', late_status: 'failed', late_exit_code: 3 });
    expect((await t.runner('shop', 'GET', `/executions/${id}/cancel-status/`)).json()).toMatchObject({ cancel_requested: true });
  });

  it('counts a runner\'s silence only while the server could hear it: no lost after a long server outage', async () => {
    await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' });
    const id = await started('migrate');
    // The server was down for 10 minutes and has just started: it heard nobody in that time.
    t.clock.now += 600_000;
    const startedAt = t.clock.now;
    expect((await sweep(t.core, startedAt)).lost).toBe(0);
    t.clock.now += 149_000;
    expect((await sweep(t.core, startedAt)).lost).toBe(0);
    expect((await get(id)).status).toBe('running');
    // The runner is back within offline + grace after the start: all is well.
    await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' });
    t.clock.now += 100_000;
    expect((await sweep(t.core, startedAt)).lost).toBe(0);
    // A runner still silent a full offline + grace after the start is lost.
    t.clock.now += 60_000;
    expect((await sweep(t.core, startedAt)).lost).toBe(1);
  });

  it('answers a malformed URL and a malformed cookie with DC_ errors, and sends the security headers on live output', async () => {
    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/executions/%E0%A4%A' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('DC_BAD_REQUEST');
    const dashboard = await t.app.inject({ method: 'GET', url: '/%E0%A4%A' });
    expect(dashboard.json().code).toMatch(/^DC_/);
    const cookie = await t.app.inject({ method: 'GET', url: '/api/v1/executions', headers: { cookie: 'dc_session=%E0%A4%A' } });
    expect(cookie.statusCode).toBe(401);
    expect(cookie.json().code).toBe('DC_UNAUTHENTICATED');
    const id = await started();
    await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: 0, status: 'success' });
    const sse = await t.api('GET', `/api/v1/executions/${id}/events`);
    expect(sse.headers['content-type']).toMatch(/text\/event-stream/);
    expect(sse.headers['content-security-policy']).toContain("default-src 'self'");
    expect(sse.headers['x-content-type-options']).toBe('nosniff');
  });

  it('names a download after any command name, per RFC 6266 and 5987', async () => {
    await syncCommands(t, 'shop', ['名前']);
    const e = (await t.api('POST', '/api/v1/projects/shop/executions', { command: '名前' })).json();
    const res = await t.api('GET', `/api/v1/executions/${e.id}/output`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="__-${e.id}.log"; filename*=UTF-8''%E5%90%8D%E5%89%8D-${e.id}.log`);
  });

  it('refuses a revoked key at once on every v1 endpoint', async () => {
    const id = await started();
    const keys = (await t.api('GET', '/api/v1/projects/shop/keys')).json().items;
    expect((await t.api('POST', `/api/v1/projects/shop/keys/${keys[0].id}/revoke`)).statusCode).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/heartbeat/', { runner_version: '1', python_version: '3', django_version: '4', commands_hash: '' }],
      ['GET', '/pending/', undefined],
      ['POST', `/executions/${id}/output/`, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: 'after revoke\n' }] }],
      ['POST', `/executions/${id}/complete/`, { exit_code: 0, status: 'success' }],
      ['GET', `/executions/${id}/cancel-status/`, undefined],
    ] as const) {
      const res = await t.runner('shop', method, path, body);
      expect(res.statusCode, path).toBe(401);
      expect(res.json().code).toBe('DC_UNAUTHENTICATED');
    }
    expect(await get(id)).toMatchObject({ status: 'running', output_bytes: 0 });
  });
});

describe.each(DB_KINDS)('start deadlines on %s', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp(kind, { defaultStartTimeoutSeconds: 600 });
    await syncCommands(t, 'shop', ['migrate']);
  });
  afterEach(async () => t.close());

  it('ends an execution no runner started by its deadline as expired, for good, and frees its command', async () => {
    const e = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', start_timeout: 30 })).json();
    expect(e.start_deadline).toBe(new Date(t.clock.now + 30_000).toISOString());
    t.clock.now += 29_000;
    expect((await sweep(t.core)).expired).toBe(0);
    t.clock.now += 2_000;
    expect((await sweep(t.core)).expired).toBe(1);
    const after = (await t.api('GET', `/api/v1/executions/${e.id}`)).json();
    expect(after).toMatchObject({ status: 'expired', status_reason: expect.stringMatching(/no runner started it within 30 s/) });
    // A runner that turns up later is offered nothing, and cannot start it.
    expect((await t.runner('shop', 'GET', '/pending/')).json().executions).toEqual([]);
    expect((await t.runner('shop', 'POST', `/executions/${e.id}/start/`)).statusCode).toBe(409);
    // The next run of the command is not blocked by it.
    expect((await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate' })).statusCode).toBe(201);
    const audit = (await t.api('GET', `/api/v1/audit?execution=${e.id}&action=execution.expired`)).json().items;
    expect(audit).toHaveLength(1);
  });

  it('takes back an offer a v1 runner never claimed, but never what a runner started', async () => {
    const offered = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', start_timeout: 10 })).json();
    expect((await t.runner('shop', 'GET', '/pending/')).json().executions).toHaveLength(1);
    t.clock.now += 11_000;
    expect((await sweep(t.core)).expired).toBe(1);
    await t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 5 });
    const started = (await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', start_timeout: 10 })).json();
    await t.runner('shop', 'POST', `/executions/${started.id}/start/`);
    t.clock.now += 11_000;
    expect((await sweep(t.core)).expired).toBe(0);
    expect((await t.api('GET', `/api/v1/executions/${offered.id}`)).json().status).toBe('expired');
    expect((await t.api('GET', `/api/v1/executions/${started.id}`)).json().status).toBe('running');
  });

  it('refuses a start_timeout out of range with a specific error', async () => {
    const res = await t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', start_timeout: 0 });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'DC_VALIDATION', details: { field: 'body.start_timeout' } });
  });
});
