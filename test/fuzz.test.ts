/**
 * Property-based fuzzing (fast-check) of everything a client or a runner can send, at a real
 * listening server, on SQLite and PostgreSQL: every REST route of the OpenAPI document with
 * generated path parameters, query strings and bodies (admin token); generated headers and
 * cookies; malformed HTTP; runner protocol v1 with valid credentials and generated bodies and
 * headers; protocol v2 messages over a real WebSocket. Whatever is sent:
 *   - never a 5xx, and every error answer is JSON with a `code` starting with DC_;
 *   - a streamed answer is never cut off mid-way (an error after the headers were sent);
 *   - the server keeps serving (a health request after every case);
 *   - a v2 socket is never closed with 1011, and its error messages carry DC_ codes;
 *   - nothing is stored from a refused request (a digest of executions, output chunks,
 *     commands, projects, users, tokens and keys is unchanged after a 4xx or a v2 error).
 *
 * Environment:
 *   FUZZ_RUNS   cases per property, scaled per property (default 200: the file takes about 40 s on
 *               two cores, 90 s at most); FUZZ_RUNS=2000 for a longer hunt.
 *   FUZZ_ALL=1  survey: note the first case of every kind of failure and go on, instead of
 *               stopping (and shrinking) at the first one.
 *   FUZZ_SEED, FUZZ_PATH   replay a failure with the seed and path fast-check printed.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { rawRequest, type RawResponse } from './support/rawHttp.js';
import { connectV2, hello, type V2Client } from './support/v2Socket.js';
import { CommandsSyncRequest, CompleteRequest, HeartbeatRequest, OutputRequest } from '../src/shared/protocolV1.js';
import { CommandsMessage, encodeOutputFrame, Finished, Hello, Output, Started, type ServerMessage } from '../src/shared/protocolV2.js';

const RUNS = Number(process.env.FUZZ_RUNS) || 200;
const PROPERTY_MS = process.env.FUZZ_RUNS ? RUNS * 500 : 15_000;
const TIMEOUT = PROPERTY_MS + 60_000;
const fuzzParams = (runs = RUNS): fc.Parameters<unknown> => ({
  numRuns: runs,
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
  ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
  // Bounds a property, shrinking included (finding the smallest failing case may take long).
  interruptAfterTimeLimit: PROPERTY_MS,
  markInterruptAsFailure: false,
});

// ---- generated values --------------------------------------------------------------------------

const NASTY = [
  '', ' ', '\u0000', '\u0000x', '\r\n', '\t', '%', '%00', '%E0%A4%A', '%ZZ', '..', '../../etc/passwd', '名前', '\ud800', '\udfff',
  '\u202e', '\ufeff', '-1', '0', '1e308', '-1e308', 'NaN', 'Infinity', 'null', 'true', '[]', '{}', '__proto__', 'constructor',
  'prototype', 'toString', "'; DROP TABLE executions; --", '" OR 1=1 --', '<script>alert(1)</script>', '=cmd|calc', '  =1+1',
  '$(reboot)', '`id`', '\\', '/', '//', '?', '#', '&', '=', ';', ',', '*', 'a'.repeat(300), '😀'.repeat(100),
  '99999999999999999999', '9007199254740993', '2147483648', '-2147483649', '0x10', '1_000', ' 1', '1 ', '00000000-0000-0000-0000-000000000000',
];
/** What breaks things most often, often enough to be tried on every field: NUL (PostgreSQL refuses it in text), a lone surrogate, a bad %-escape. */
const KILLERS = ['\u0000', 'a\u0000b', '\ud800', '%E0%A4%A', '\r\nx: y', '\u001b[31m'];
const text = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...KILLERS) },
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);
/** For URLs: the long variants stay under the 16 KiB of headers Node accepts (past it is the malformed-HTTP case). */
const urlText = fc.oneof({ weight: 9, arbitrary: text.filter((v) => v.length <= 1000) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2_000 }).map((n) => 'x'.repeat(n)) });
const NOW_MS = Date.UTC(2026, 10, 22, 12, 0, 0); // testApp's clock
const num = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324, 253_402_300_799, 253_402_300_800, 253_402_300_799_999, NOW_MS, NOW_MS / 1000),
  fc.integer(),
  fc.integer({ min: 0, max: 10 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const uuid = fc.uuid();
/** Text nested n levels deep: what a recursive parser or checker chokes on. */
const deepJson = fc.integer({ min: 1, max: 200_000 }).chain((n) => fc.constantFrom('['.repeat(n) + ']'.repeat(n), '{"a":'.repeat(n) + '1' + '}'.repeat(n), '['.repeat(n)));
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 4 }), text, num);

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema | JsonSchema[];
  prefixItems?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
};

/** null mostly; sometimes a value. */
const rarely = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

/** Values for a JSON schema: mostly of the right shape, with edge values, missing keys and strangers. */
function fromSchema(schema: JsonSchema, hints: Record<string, fc.Arbitrary<unknown>>, depth = 0): fc.Arbitrary<unknown> {
  const wrong = depth > 3 ? fc.constant(null) : anyJson;
  const own = ((): fc.Arbitrary<unknown> => {
    if (schema.const !== undefined) return fc.constant(schema.const);
    if (schema.enum) return fc.constantFrom(...schema.enum);
    if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => fromSchema(s, hints, depth + 1)));
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    switch (type) {
      case 'object': {
        const props = Object.entries(schema.properties ?? {});
        if (props.length === 0) return fc.dictionary(text, anyJson, { maxKeys: 3 });
        const shape = Object.fromEntries(props.map(([k, s]) => [k, Object.hasOwn(hints, k) ? fc.oneof({ weight: 4, arbitrary: hints[k] }, { weight: 1, arbitrary: fromSchema(s, hints, depth + 1) }) : fromSchema(s, hints, depth + 1)]));
        return fc
          .tuple(fc.record(shape, { requiredKeys: schema.required ?? [] }), rarely(fc.tuple(text, anyJson)), rarely(fc.subarray(props.map(([k]) => k))))
          .map(([value, extra, drop]) => {
            const out: Record<string, unknown> = { ...value };
            for (const k of drop ?? []) delete out[k];
            if (extra) out[extra[0]] = extra[1];
            return out;
          });
      }
      case 'array': {
        if (Array.isArray(schema.prefixItems ?? schema.items)) return fc.tuple(...((schema.prefixItems ?? schema.items) as JsonSchema[]).map((s) => fromSchema(s, hints, depth + 1)));
        return fc.array(schema.items ? fromSchema(schema.items as JsonSchema, hints, depth + 1) : anyJson, { maxLength: 4 });
      }
      case 'string': {
        const { minLength = 0, maxLength = Infinity } = schema;
        return fc.oneof({ weight: 3, arbitrary: text.filter((v) => v.length >= minLength && v.length <= maxLength) }, { weight: 1, arbitrary: text });
      }
      case 'integer':
      case 'number': {
        // In range mostly, so the case gets past validation; at and past the edges sometimes.
        const min = Math.max(schema.minimum ?? -1e6, -1e6);
        const max = Math.min(schema.maximum ?? 1e6, 1e6);
        const bounds = [schema.minimum, schema.maximum].filter((v): v is number => v !== undefined).flatMap((v) => [v, v - 1, v + 1]);
        const edges = bounds.length > 0 ? fc.constantFrom(...bounds) : num;
        return fc.oneof({ weight: 3, arbitrary: fc.integer({ min: Math.ceil(min), max: Math.floor(max) }) }, { weight: 1, arbitrary: edges }, { weight: 1, arbitrary: num });
      }
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      default:
        return anyJson;
    }
  })();
  return fc.oneof({ weight: 12, arbitrary: own }, { weight: 1, arbitrary: wrong }, ...(schema.nullable ? [{ weight: 1, arbitrary: fc.constant(null) }] : []));
}

/** A body: the schema's shape mostly, else any JSON, text that is not JSON, or deep nesting. */
function bodyOf(schema: JsonSchema | undefined, hints: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string | undefined> {
  const json = schema ? fromSchema(schema, hints).map((v) => JSON.stringify(v) ?? 'null') : anyJson.map((v) => JSON.stringify(v) ?? 'null');
  return fc.oneof({ weight: 12, arbitrary: json }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: text }, { weight: 1, arbitrary: deepJson });
}

/** Any argparse schema: bootstrap.py's shape, broken in places, or nothing like it. */
const argparseSchema: fc.Arbitrary<unknown> = fc.letrec<{ parser: unknown; arg: unknown }>((tie) => ({
  arg: fc.oneof(
    { weight: 8, arbitrary: fc.record({
      dest: fc.oneof(fc.constantFrom('name', 'count', 'mode', null), text),
      option_strings: fc.oneof(fc.constantFrom([], ['--count'], ['-m', '--mode']), fc.array(text, { maxLength: 2 })),
      kind: fc.oneof(fc.constantFrom('store', 'store_true', 'count', 'append', 'help', 'other', 'extend', 'boolean_optional'), text),
      nargs: fc.oneof(fc.constantFrom(null, '?', '*', '+', '...', 'A...', 0, 2, -1), num, text),
      type: fc.oneof(fc.constantFrom('str', 'int', 'float', 'bool', 'file', 'other:Path'), text),
      choices: fc.oneof(fc.constant(null), fc.array(anyJson, { maxLength: 3 })),
      required: fc.oneof({ weight: 5, arbitrary: fc.boolean() }, { weight: 1, arbitrary: anyJson }),
      default: anyJson,
      metavar: fc.oneof(fc.constant(null), text, fc.array(text, { maxLength: 2 })),
      help: fc.oneof(fc.constant(null), text),
    }, { requiredKeys: ['dest', 'option_strings', 'kind'] }) },
    { weight: 1, arbitrary: anyJson },
  ),
  parser: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: fc.record({
      prog: fc.oneof(fc.constant(null), text),
      arguments: fc.oneof({ weight: 6, arbitrary: fc.array(tie('arg'), { maxLength: 4 }) }, { weight: 1, arbitrary: anyJson }),
      groups: fc.oneof({ weight: 6, arbitrary: fc.array(fc.record({ required: fc.boolean(), dests: fc.array(fc.oneof(text, fc.constant(null)), { maxLength: 3 }) }), { maxLength: 2 }) }, { weight: 1, arbitrary: anyJson }),
      subcommands: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        { weight: 2, arbitrary: fc.record({ dest: fc.oneof(fc.constant('action'), fc.constant(null)), required: fc.boolean(), choices: fc.dictionary(fc.oneof(fc.constantFrom('add', 'remove'), text), fc.oneof(tie('parser'), fc.constant(null)), { maxKeys: 2 }) }) },
        { weight: 1, arbitrary: anyJson },
      ),
    }, { requiredKeys: ['arguments', 'groups'] }) },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: anyJson },
  ),
})).parser;

// ---- the world -----------------------------------------------------------------------------------

interface World {
  t: TestApp;
  port: number;
  url: string;
  db: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  shopExecutions: string[];
  blogExecutions: string[];
  blogKeyId: string;
  userTokenId: string;
  cursors: { executions: string; audit: string };
  routes: Array<{ method: string; path: string; params: string[]; query: string[]; body?: JsonSchema }>;
}

const ARG = { dest: 'name', option_strings: [], kind: 'store', nargs: '?', type: 'str', choices: null, required: false, default: null, help: 'a name', metavar: null };
const RICH_SCHEMA = {
  prog: 'manage.py rich',
  arguments: [ARG, { ...ARG, dest: 'count', option_strings: ['--count'], type: 'int', choices: [1, 2, 3] }, { ...ARG, dest: 'dry', option_strings: ['--dry'], kind: 'store_true', nargs: 0 }],
  groups: [{ required: false, dests: ['count', 'dry'] }],
  subcommands: null,
};

async function buildWorld(kind: (typeof DB_KINDS)[number]): Promise<World> {
  const t = await testApp(kind);
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (t.app.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  // A catalogue with argparse schemas, as a v2 runner reports it.
  const runner = await connectV2(url, t.projects.shop.key, t.clock.now);
  runner.send(hello());
  runner.send({ type: 'commands', commands: ['migrate', 'check', 'spew', 'rich', '名前'].map((name) => ({ name, app_label: 'demo', help_text: `usage: manage.py ${name}`, schema: name === 'rich' ? RICH_SCHEMA : { arguments: [ARG], groups: [], subcommands: null } })) });
  expect((await runner.settle()).map((m) => m.type)).toEqual(['welcome']);
  await runner.close();
  await t.api('POST', '/api/v1/projects/blog/executions', {}); // nothing: blog has no commands
  for (const name of ['check', 'rich', 'migrate', 'spew']) expect((await t.api('PATCH', `/api/v1/projects/shop/commands/${name}`, { max_concurrency: 1000 })).statusCode).toBe(200);
  const shopExecutions: string[] = [];
  for (const [command, argv] of [['check', []], ['rich', ['x', '--count', '2']], ['migrate', ['app']], ['spew', []], ['check', ['again']]] as const) {
    const res = await t.api('POST', '/api/v1/projects/shop/executions', { command, argv });
    expect(res.statusCode, res.body).toBe(201);
    shopExecutions.push(res.json().id);
  }
  // One running with output, one finished (v1), the rest queued.
  const v1 = (method: 'GET' | 'POST', path: string, body?: unknown) => t.runner('shop', method, path, body);
  await v1('POST', `/executions/${shopExecutions[0]}/start/`);
  await v1('POST', `/executions/${shopExecutions[0]}/output/`, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: NOW_MS / 1000, content: 'line one\n' }] });
  await v1('POST', `/executions/${shopExecutions[1]}/start/`);
  await v1('POST', `/executions/${shopExecutions[1]}/output/`, { chunk_number: 1, is_stderr: true, segments: [{ timestamp: NOW_MS / 1000, content: 'err\n' }] });
  await v1('POST', `/executions/${shopExecutions[1]}/complete/`, { exit_code: 1, status: 'failed' });
  await t.runner('blog', 'POST', '/commands/sync/', { commands: [{ name: 'check', app_label: 'demo', help_text: '' }] });
  const blogExecutions = [(await t.api('POST', '/api/v1/projects/blog/executions', { command: 'check' })).json().id as string];
  const blogKeyId = (await t.api('POST', '/api/v1/projects/blog/keys', { name: 'spare' })).json().id as string;
  const userTokenId = (await t.api('GET', '/api/v1/tokens', undefined, t.userToken)).json().items[0].id as string;
  expect([blogKeyId, userTokenId].every((id) => typeof id === 'string')).toBe(true);
  const cursors = {
    executions: (await t.api('GET', '/api/v1/executions?limit=1')).json().next_cursor as string,
    audit: (await t.api('GET', '/api/v1/audit?limit=1')).json().next_cursor as string,
  };
  const doc = (await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; requestBody?: { content: Record<string, { schema: JsonSchema }> } }>> };
  const routes: World['routes'] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      const query = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      routes.push({ method: method.toUpperCase(), path, params, query, body: op.requestBody?.content['application/json']?.schema });
    }
  }
  return { t, port, url, db: (t.core.store as unknown as { db: Kysely<any> }).db, shopExecutions, blogExecutions, blogKeyId, userTokenId, cursors, routes }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** What a refused request must not change. Volatile columns (last use, dispatch to a runner) are left out. */
async function digest(w: World): Promise<string> {
  const rows = async (table: string, order: string[], drop: string[] = [], map: (r: Record<string, unknown>) => void = () => {}) => {
    let q = w.db.selectFrom(table).selectAll();
    for (const o of order) q = q.orderBy(o);
    return (await q.execute()).map((r: Record<string, unknown>) => {
      for (const d of drop) delete r[d];
      map(r);
      return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    });
  };
  const parts = await Promise.all([
    rows('executions', ['id'], ['runner_id', 'dispatched_at'], (r) => {
      if (r.status === 'dispatched') r.status = 'queued';
    }),
    rows('output_chunks', ['execution_id', 'seq']),
    rows('commands', ['project_id', 'name']),
    rows('projects', ['id']),
    rows('users', ['id']),
    rows('api_tokens', ['id'], ['last_used_at']),
    rows('runner_keys', ['id']),
  ]);
  return JSON.stringify(parts);
}

// ---- checks --------------------------------------------------------------------------------------

function describeCase(req: unknown): string {
  return JSON.stringify(req, (_k, v) => (typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}…(${v.length} chars)` : v));
}

/**
 * A broken rule. By default it throws, so fast-check shrinks the case to its smallest form; with
 * FUZZ_ALL=1 the first case of each kind of failure is noted and the run goes on, and the test
 * fails once at the end with the list (a survey of everything wrong, not only the first thing).
 */
const SURVEY = Boolean(process.env.FUZZ_ALL);
const findings = new Map<string, string>();
function broken(kind: string, message: string): void {
  if (!SURVEY) throw new Error(message);
  if (!findings.has(kind)) findings.set(kind, message);
}

async function assertProperty<Ts extends [unknown, ...unknown[]]>(property: fc.IAsyncPropertyWithHooks<Ts>, params: fc.Parameters<unknown>): Promise<void> {
  findings.clear();
  await fc.assert(property, params as fc.Parameters<Ts>);
  if (findings.size > 0) throw new Error(`${findings.size} kind(s) of failure:\n${[...findings].map(([k, m]) => `- ${k}: ${m}`).join('\n')}`);
}

/** The answer is no 5xx; an error is JSON with a DC_ code; a stream was not cut off. */
function checkAnswer(res: RawResponse, req: unknown, label: string): void {
  const where = `${res.status} to ${describeCase(req)}: ${res.body.toString('utf8').slice(0, 500)}`;
  let body: { code?: unknown; error?: unknown } | undefined;
  try {
    body = JSON.parse(res.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  if (res.status >= 500) broken(`${res.status} ${String(body?.code)} on ${label}`, where);
  else if (res.status >= 400 && !(typeof body?.code === 'string' && body.code.startsWith('DC_') && typeof body.error === 'string')) broken(`${res.status} without a DC_ code on ${label}`, `error without a DC_ code: ${where}`);
  else if (res.status < 400 && !res.complete) broken(`${res.status} cut off on ${label}`, `answer cut off mid-way: ${where}`);
}

async function checkHealth(w: World, after: string): Promise<void> {
  const res = await rawRequest(w.port, { method: 'GET', path: '/api/v1/health' });
  if (res.status !== 200) broken('health', `health after ${after}: ${res.status} ${res.body.toString()}`);
}

/** Sends one request and checks the answer, the health after it, and that a refusal stored nothing. */
async function exchange(w: World, state: { digest: string }, req: Parameters<typeof rawRequest>[1], label = `${req.method} ${req.path.split('?')[0]}`): Promise<RawResponse> {
  const res = await rawRequest(w.port, req);
  checkAnswer(res, req, label);
  const after = await digest(w);
  if (res.status >= 400 && after !== state.digest) broken(`${res.status} stored something on ${label}`, `a refused request changed what is stored: ${describeCase(req)} → ${res.status} ${res.body.toString().slice(0, 300)}`);
  state.digest = after;
  await checkHealth(w, describeCase(req));
  return res;
}

/** %-encoding of any string, lone surrogates included (encodeURIComponent throws on those). */
const encode = (v: string) => encodeURIComponent(v.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
const pathValue = (value: fc.Arbitrary<string> = urlText) =>
  fc.oneof({ weight: 8, arbitrary: value.map(encode) }, { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%00', '%2F', '%2e%2e', '..', '.', '%C0%AE', '%FF') });

// ---- the properties ------------------------------------------------------------------------------

describe.each(DB_KINDS)('fuzz on %s', (kind) => {
  let w: World;
  const state = { digest: '' };
  beforeAll(async () => {
    w = await buildWorld(kind);
    state.digest = await digest(w);
  }, 120_000);
  afterAll(async () => w?.t.close());

  const auth = () => ['authorization', `Bearer ${w.t.token}`] as [string, string];

  it('REST: every route of the OpenAPI document, with generated path parameters, query strings and bodies', async () => {
    const ids = fc.oneof(fc.constantFrom(...w.shopExecutions, ...w.blogExecutions, w.userTokenId, w.blogKeyId), uuid, urlText);
    const names = fc.oneof(fc.constantFrom('migrate', 'check', 'rich', '名前', 'nope', 'shop', 'blog'), urlText);
    const params: Record<string, fc.Arbitrary<string>> = { project: fc.oneof(fc.constantFrom('shop', 'blog', 'nope'), urlText), key: fc.oneof(fc.constant(w.blogKeyId), uuid, urlText), name: names, id: ids };
    const queryValues: Record<string, fc.Arbitrary<string>> = {
      project: fc.oneof(fc.constantFrom('shop', 'blog', 'nope'), urlText),
      command: names,
      status: fc.oneof(fc.constantFrom('queued', 'running', 'queued,running', 'succeeded,failed,lost', 'nope', ',,'), urlText),
      cursor: fc.oneof(fc.constantFrom(w.cursors.executions, w.cursors.audit), urlText),
      limit: fc.oneof(fc.constantFrom('1', '50', '500', '501', '0', '-1', '1.5', '1e3'), urlText),
      after: fc.oneof(fc.constantFrom('0', '1', '-1', '2147483648', '1e308'), urlText),
      since: fc.oneof(fc.constantFrom(String(NOW_MS), '2026-01-01T00:00:00Z', '99999999999999999999', '+275760-09-13T00:00:00.000Z', '0'), urlText),
      until: fc.oneof(fc.constantFrom(String(NOW_MS), '2100-01-01', '-1'), urlText),
      format: fc.oneof(fc.constantFrom('csv', 'jsonl', 'text', 'json'), urlText),
      stream: fc.oneof(fc.constantFrom('stdout', 'stderr', 'both'), urlText),
      execution: ids,
      actor_type: fc.oneof(fc.constantFrom('user', 'token', 'runner', 'system'), urlText),
      // A wait that could succeed holds the request that long: keep it to a second.
      wait: fc.constantFrom('0', '1', '-1', '1.5', 'x', '3601'),
    };
    const hints: Record<string, fc.Arbitrary<unknown>> = {
      command: names,
      name: fc.oneof(fc.constantFrom('new-project', 'ci', 'x'), text),
      email: fc.oneof(fc.constantFrom('admin@example.com', 'dev@example.com', 'new@example.com', 'not an email'), text),
      password: fc.oneof(fc.constantFrom('correct horse battery', 'wrong password!', 'long enough password'), text),
      argv: fc.array(text, { maxLength: 4 }),
      max_concurrency: num,
      timeout: num,
    };
    const routeCase = fc.constantFrom(...w.routes).chain((route) =>
      fc.record({
        route: fc.constant(route),
        params: fc.tuple(...route.params.map((p) => pathValue(Object.hasOwn(params, p) ? params[p] : urlText))),
        // Mostly the route's own parameters, each once; sometimes a stranger or a repeated one.
        query: fc.tuple(
          route.query.length === 0 ? fc.constant([] as Array<[string, string]>) : fc.uniqueArray(fc.constantFrom(...route.query).chain((k) => fc.tuple(fc.constant(k), Object.hasOwn(queryValues, k) ? queryValues[k] : urlText)), { maxLength: route.query.length, selector: ([k]) => k }),
          rarely(fc.tuple(fc.oneof(fc.constantFrom(...route.query, 'x'), urlText), urlText)),
        ).map(([own, stranger]) => (stranger ? [...own, stranger] : own)),
        body: route.method === 'GET' ? fc.constant(undefined) : bodyOf(route.body, hints),
      }),
    );
    await assertProperty(
      fc.asyncProperty(routeCase, async (c) => {
        let path = c.route.path;
        c.route.params.forEach((p, i) => (path = path.replace(`{${p}}`, c.params[i])));
        const qs = c.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
        const headers: Array<[string, string]> = [auth()];
        if (c.body !== undefined) headers.push(['content-type', 'application/json']);
        await exchange(w, state, { method: c.route.method, path: qs ? `${path}?${qs}` : path, headers, body: c.body }, `${c.route.method} ${c.route.path}`);
      }),
      fuzzParams(RUNS * 4),
    );
  }, TIMEOUT);

  it('paths no route has: the not-found answer and the dashboard files', async () => {
    const strayPath = fc.oneof(
      fc.constantFrom('/', '/index.html', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/api/v1/', '/api/v1', '/api/v1/executions/', '/api/v2/x', '/assets/%00', '/%E0%A4%A', '//api/v1/projects', '/api/v1/projects?', '/api/runner/', '/api/runner/v2/connect'),
      fc.array(pathValue(), { minLength: 1, maxLength: 4 }).map((parts) => '/' + parts.join('/')),
      fc.array(pathValue(), { minLength: 1, maxLength: 3 }).map((parts) => '/api/v1/' + parts.join('/')),
    );
    await assertProperty(
      fc.asyncProperty(strayPath, fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS'), fc.boolean(), async (path, method, withToken) => {
        await exchange(w, state, { method, path, headers: withToken ? [auth()] : [] }, `${method} ${path.startsWith('/api/') ? '/api/…' : '/…'}`);
      }),
      fuzzParams(RUNS),
    );
  }, TIMEOUT);

  it('REST: generated headers and cookies (well-formed HTTP)', async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 60 });
    const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}$/);
    const values: Record<string, fc.Arbitrary<string>> = {
      authorization: fc.oneof(
        fc.constantFrom('Bearer', 'Bearer ', 'Basic YWRtaW46cGFzcw==', 'bearer dct_', 'Bearer dct_' + 'x'.repeat(5000), 'Bearer dc_nope', 'Bearer  dct_a b'),
        fc.constant(null).map(() => `Bearer ${w.t.token}`),
        fc.constant(null).map(() => `Bearer ${w.t.projects.shop.key}`),
        printable.map((v) => `Bearer ${v}`),
        printable,
      ),
      cookie: fc.oneof(
        fc.constantFrom('dc_session=%E0%A4%A', 'dc_session=', 'dc_session', '=', ';;;', 'dc_session=a; dc_session=b', 'dc_session="x"', 'dc_session=%00', `dc_session=${'a'.repeat(4000)}`),
        printable.map((v) => `dc_session=${v}`),
        printable,
      ),
      'content-type': fc.oneof(fc.constantFrom('application/json', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '*/*', 'application/json;;', ''), printable),
      'x-csrf-token': printable,
      'last-event-id': fc.oneof(fc.constantFrom('-1', '0', '1', '1e308', '99999999999999999999', 'NaN', '1.5', ' 2'), printable),
      accept: fc.oneof(fc.constantFrom('text/event-stream', 'application/json', 'text/csv', '*/*;q=x'), printable),
      'accept-encoding': fc.oneof(fc.constantFrom('gzip', 'br', 'identity;q=0', '*;q=0'), printable),
      'x-forwarded-for': printable,
      range: fc.oneof(fc.constantFrom('bytes=0-1', 'bytes=-1', 'bytes=9-1', 'bytes=x'), printable),
      'if-none-match': printable,
    };
    const header = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...Object.keys(values)).chain((n) => fc.tuple(fc.constant(n), values[n])) },
      { weight: 1, arbitrary: fc.tuple(token, printable) },
    );
    const targets = fc.constantFrom(
      { method: 'GET', path: '/api/v1/projects' },
      { method: 'GET', path: '/api/v1/me' },
      { method: 'POST', path: '/api/v1/projects/shop/executions', body: '{"command":"check"}' },
      { method: 'POST', path: '/api/v1/session', body: '{"email":"admin@example.com","password":"wrong password!"}' },
      { method: 'DELETE', path: '/api/v1/session' },
      { method: 'GET', path: '/api/v1/audit/export?format=csv' },
      { method: 'GET', path: '/api/v1/openapi.json' },
      { method: 'GET', path: '/api/v1/health' },
    );
    const eventsTarget = fc.constantFrom(0, 1, 2).map((i) => ({ method: 'GET', path: `/api/v1/executions/${w.shopExecutions[i]}/events` }));
    await assertProperty(
      fc.asyncProperty(fc.oneof(targets, eventsTarget), fc.boolean(), fc.array(header, { maxLength: 5 }), async (target, withToken, headers) => {
        const all: Array<[string, string]> = [...(withToken ? [auth()] : []), ...headers];
        if ('body' in target && !all.some(([n]) => n === 'content-type')) all.push(['content-type', 'application/json']);
        await exchange(w, state, { ...target, headers: all, body: 'body' in target ? target.body : undefined }, `${target.method} ${target.path.replace(/[0-9a-f-]{36}/, '{id}')}`);
      }),
      fuzzParams(RUNS * 2),
    );
  }, TIMEOUT);

  it('HTTP: malformed requests are answered with a DC_ error or not at all, and the server keeps serving', async () => {
    const ctl = fc.integer({ min: 0, max: 0x1f }).filter((c) => c !== 0x09).map((c) => String.fromCharCode(c));
    const raw = fc.oneof(
      fc.tuple(fc.constantFrom('x-test', 'authorization', 'cookie', 'content-type'), ctl, fc.string({ maxLength: 10 })).map(([n, c, v]) => `GET /api/v1/projects HTTP/1.1\r\nhost: x\r\n${n}: a${c}${v}\r\nconnection: close\r\n\r\n`),
      fc.constantFrom(
        'GET /api/v1/projects HTTP/1.1\r\nhost: x\r\nbad header: 1\r\nconnection: close\r\n\r\n',
        'GET /api/v1/projects HTTP/1.1\r\nhost: x\r\n: empty\r\nconnection: close\r\n\r\n',
        'GET /api/v1/proj\u0000ects HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
        'GET  /api/v1/projects HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
        'BREW /api/v1/projects HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
        'GET /api/v1/projects HTTP/9.9\r\nhost: x\r\nconnection: close\r\n\r\n',
        'GET /api/v1/projects\r\n\r\n',
        'POST /api/v1/session HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        'POST /api/v1/session HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\ncontent-length: 6\r\nconnection: close\r\n\r\n{}{}{}',
        'POST /api/v1/session HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: -1\r\nconnection: close\r\n\r\n{}',
        'GET /api/v1/projects HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\nconnection: close\r\n\r\n',
        `GET /api/v1/projects HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\nconnection: close\r\n\r\n`,
        'GET /api/v1/projects HTTP/1.1\nhost: x\nconnection: close\n\n',
      ),
    );
    await assertProperty(
      fc.asyncProperty(raw, async (request) => {
        let res: RawResponse | undefined;
        try {
          res = await rawRequest(w.port, { method: '', path: '', raw: Buffer.from(request, 'latin1'), timeoutMs: 2_000 });
        } catch (err) {
          // Closed without an answer, or waiting for the rest of the request: no error answer, but the server must still serve.
          if (!/not an HTTP response|ECONNRESET|no complete answer/.test(String(err))) throw err;
        }
        if (res) checkAnswer(res, request, `malformed ${JSON.stringify(request.slice(0, 40))}`);
        await checkHealth(w, JSON.stringify(request.slice(0, 200)));
      }),
      fuzzParams(RUNS),
    );
  }, TIMEOUT);

  it('runner protocol v1: valid credentials with generated bodies, ids and headers', async () => {
    const endpoints: Array<{ method: string; path: (id: string) => string; body?: JsonSchema }> = [
      { method: 'POST', path: () => '/api/runner/heartbeat/', body: HeartbeatRequest as JsonSchema },
      { method: 'POST', path: () => '/api/runner/commands/sync/', body: CommandsSyncRequest as JsonSchema },
      { method: 'GET', path: () => '/api/runner/pending/' },
      { method: 'POST', path: (id) => `/api/runner/executions/${id}/start/` },
      { method: 'POST', path: (id) => `/api/runner/executions/${id}/output/`, body: OutputRequest as JsonSchema },
      { method: 'POST', path: (id) => `/api/runner/executions/${id}/complete/`, body: CompleteRequest as JsonSchema },
      { method: 'GET', path: (id) => `/api/runner/executions/${id}/cancel-status/` },
    ];
    const seconds = () => String(Math.floor(w.t.clock.now / 1000));
    const reused = randomUUID();
    const hints: Record<string, fc.Arbitrary<unknown>> = {
      name: fc.oneof(fc.constantFrom('migrate', 'check', 'rich', '名前'), text),
      timestamp: fc.oneof(fc.constant(NOW_MS / 1000), fc.constant(null), num),
      chunk_number: fc.oneof(fc.integer({ min: 1, max: 5 }), num),
      content: fc.oneof(fc.constantFrom('line\n', 'partial', '\u0000', '\x1b[31mred\x1b[0m\n', '\r'), text),
      exit_code: num,
    };
    const id = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...w.shopExecutions, ...w.blogExecutions) }, { weight: 1, arbitrary: uuid }, { weight: 1, arbitrary: pathValue() });
    const headerCase = fc.record({
      key: fc.oneof({ weight: 8, arbitrary: fc.constant('shop') }, { weight: 1, arbitrary: fc.constantFrom('blog', 'user-token', 'garbage') }),
      timestamp: fc.oneof({ weight: 8, arbitrary: fc.constant('now') }, { weight: 1, arbitrary: fc.constantFrom('', 'abc', '-1', '1e308', '99999999999999999999', '0x10', 'now+301', 'now-301', 'missing') }),
      nonce: fc.oneof({ weight: 8, arbitrary: fc.constant('fresh') }, { weight: 1, arbitrary: fc.constantFrom('reused', 'missing', '', 'x', 'x'.repeat(5000), '\u00e9t\u00e9') }),
      contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-16', 'missing') }),
    });
    const v1Case = fc.constantFrom(...endpoints).chain((e) => fc.record({ endpoint: fc.constant(e), id, body: e.body ? bodyOf(e.body, hints) : fc.constant(undefined), headers: headerCase }));
    await assertProperty(
      fc.asyncProperty(v1Case, async ({ endpoint, id: execution, body, headers: h }) => {
        const key = h.key === 'shop' ? w.t.projects.shop.key : h.key === 'blog' ? w.t.projects.blog.key : h.key === 'user-token' ? w.t.token : 'dc_garbage';
        const timestamp = h.timestamp === 'now' ? seconds() : h.timestamp === 'now+301' ? String(Number(seconds()) + 301) : h.timestamp === 'now-301' ? String(Number(seconds()) - 301) : h.timestamp;
        const nonce = h.nonce === 'fresh' ? randomUUID() : h.nonce === 'reused' ? reused : h.nonce;
        const headers: Array<[string, string]> = [['authorization', `Bearer ${key}`]];
        if (timestamp !== 'missing') headers.push(['x-request-timestamp', timestamp]);
        if (nonce !== 'missing') headers.push(['x-request-nonce', encode(nonce)]);
        if (h.contentType !== 'missing' && (body !== undefined || endpoint.method === 'POST')) headers.push(['content-type', h.contentType]);
        await exchange(w, state, { method: endpoint.method, path: endpoint.path(execution), headers, body }, `${endpoint.method} ${endpoint.path('{id}')}`);
      }),
      fuzzParams(RUNS * 3),
    );
  }, TIMEOUT);

  it('runner protocol v2: generated messages over a real WebSocket', async () => {
    const execution = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...w.shopExecutions, ...w.blogExecutions) }, { weight: 1, arbitrary: uuid }, { weight: 1, arbitrary: text });
    const hints: Record<string, fc.Arbitrary<unknown>> = {
      execution_id: execution,
      runner_id: fc.oneof(uuid, text),
      running: fc.array(execution, { maxLength: 3 }),
      max_concurrency: fc.oneof(fc.integer({ min: 0, max: 3 }), num),
      schema: argparseSchema,
      name: fc.oneof(fc.constantFrom('migrate', 'check', 'rich', '名前', 'new'), text),
      at: fc.oneof(fc.constant(NOW_MS), num),
      seq: fc.oneof(fc.integer({ min: 1, max: 4 }), num),
      last_seq: fc.oneof(fc.integer({ min: 0, max: 4 }), num),
      line_times: fc.array(fc.tuple(fc.oneof(fc.integer({ min: 0, max: 10 }), num), fc.oneof(fc.constant(NOW_MS), num)), { maxLength: 3 }),
      data: fc.oneof(fc.constantFrom('line\n', '\u0000', '\x1b[2K\r50%'), text),
      protocol: fc.oneof(fc.constant(2), num),
    };
    const typed = (schema: object) => fromSchema(schema as JsonSchema, hints);
    const frame = fc.oneof(
      typed(Output).map((m) => {
        try {
          return encodeOutputFrame(m as Output);
        } catch {
          return Buffer.from(JSON.stringify(m));
        }
      }),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.string({ maxLength: 20 })).map(([n, s]) => {
        const b = Buffer.alloc(4 + Buffer.byteLength(s));
        b.writeUInt32BE(n, 0);
        b.write(s, 4);
        return b;
      }),
    );
    const message = fc.oneof(
      { weight: 8, arbitrary: fc.oneof(typed(Hello), typed(CommandsMessage), typed(Started), typed(Output), typed(Finished), fc.constant({ type: 'draining' })).map((m) => ({ text: JSON.stringify(m) })) },
      { weight: 2, arbitrary: frame.map((binary) => ({ binary })) },
      { weight: 1, arbitrary: fc.oneof(text, deepJson, anyJson.map((v) => JSON.stringify(v) ?? 'null')).map((t) => ({ text: t })) },
      // A type that is a key of every object, or nested past any stack.
      { weight: 1, arbitrary: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf').map((t) => JSON.stringify({ type: t })), deepJson.map((d) => `{"type":${d.endsWith(']') || d.endsWith('}') ? d : '1'}}`)).map((t) => ({ text: t })) },
      { weight: 1, arbitrary: deepJson.map((d) => ({ text: `{"type":"commands","commands":[{"name":"deep","app_label":"","help_text":"","schema":${d.endsWith(']') || d.endsWith('}') ? d : 'null'}}]}` })) },
    );
    const session = fc.record({ hello: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), messages: fc.array(message, { minLength: 1, maxLength: 4 }) });

    await assertProperty(
      fc.asyncProperty(session, async (s) => {
        const runner: V2Client = await connectV2(w.url, w.t.projects.shop.key, w.t.clock.now);
        const sent: string[] = [];
        const kindOf = (m: { text: string } | { binary: Buffer }) => {
          if ('binary' in m) return 'binary frame';
          try {
            return `"${String((JSON.parse(m.text) as { type?: unknown }).type)}" message`;
          } catch {
            return 'text that is not JSON';
          }
        };
        try {
          if (s.hello) {
            runner.send(hello({ max_concurrency: 2 }));
            await runner.settle();
          }
          state.digest = await digest(w);
          for (const m of s.messages) {
            if (!runner.isOpen()) break;
            sent.push('text' in m ? m.text.slice(0, 300) : `binary ${m.binary.toString('hex').slice(0, 300)}`);
            if ('text' in m) runner.sendRaw(m.text, false);
            else runner.sendRaw(m.binary, true);
            let answers: ServerMessage[];
            try {
              answers = await runner.settle(20_000);
            } catch {
              const closed = await Promise.race([runner.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
              if (!closed || closed.code === 1011 || closed.code === 1006) broken(`v2 ${closed ? `closed with ${closed.code}` : 'no answer'} after a ${kindOf(m)}`, `${JSON.stringify(closed)} after ${JSON.stringify(sent)}`);
              break;
            }
            const errors = answers.filter((a): a is Extract<ServerMessage, { type: 'error' }> => a.type === 'error');
            for (const e of errors) if (!/^DC_/.test(e.code)) broken(`v2 error code ${e.code} after a ${kindOf(m)}`, `error without a DC_ code after ${JSON.stringify(sent)}: ${JSON.stringify(e)}`);
            const after = await digest(w);
            if (errors.length > 0 && after !== state.digest) broken(`v2 refused ${kindOf(m)} stored something`, `a refused message changed what is stored: ${JSON.stringify(sent)} → ${JSON.stringify(errors)}`);
            state.digest = after;
          }
        } finally {
          const closing = runner.isOpen() ? undefined : await runner.closed;
          await runner.close();
          if (closing && (closing.code === 1011 || closing.code === 1006)) broken(`v2 closed with ${closing.code}`, `socket closed with ${JSON.stringify(closing)} after ${JSON.stringify(sent)}`);
        }
        state.digest = await digest(w);
        await checkHealth(w, JSON.stringify(sent));
      }),
      fuzzParams(RUNS * 2),
    );
  }, TIMEOUT);

  it('runner protocol v2: generated upgrade headers are refused with a DC_ error', async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
    const headerCase = fc.record({
      authorization: fc.oneof(fc.constantFrom('Bearer dc_nope', 'Bearer', 'user-token', 'missing', 'revoked'), printable),
      timestamp: fc.oneof(fc.constantFrom('now', 'missing', '1e308', '-1', 'abc', '99999999999999999999'), printable),
      nonce: fc.oneof(fc.constantFrom('fresh', 'missing', ''), printable),
    });
    await assertProperty(
      fc.asyncProperty(headerCase, async (h) => {
        const headers: Array<[string, string]> = [['upgrade', 'websocket'], ['connection', 'Upgrade'], ['sec-websocket-version', '13'], ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ==']];
        if (h.authorization !== 'missing') headers.push(['authorization', h.authorization === 'user-token' ? `Bearer ${w.t.token}` : h.authorization === 'revoked' ? 'Bearer dc_' + 'a'.repeat(43) : h.authorization]);
        if (h.timestamp !== 'missing') headers.push(['x-request-timestamp', h.timestamp === 'now' ? String(Math.floor(w.t.clock.now / 1000)) : h.timestamp]);
        if (h.nonce !== 'missing') headers.push(['x-request-nonce', h.nonce === 'fresh' ? randomUUID() : h.nonce]);
        const res = await rawRequest(w.port, { method: 'GET', path: '/api/runner/v2/connect', headers: headers.filter(([n]) => n !== 'connection'), timeoutMs: 5_000 });
        if (res.status === 101) broken('upgrade accepted', `upgrade with ${JSON.stringify(h)} accepted`);
        else checkAnswer(res, h, 'upgrade');
        await checkHealth(w, JSON.stringify(h));
      }),
      fuzzParams(RUNS),
    );
  }, TIMEOUT);
});
