/** REST: executions: create, list, get, cancel, full output download and live output (SSE). */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { cancelExecution, createExecution } from '../../core/executions.js';
import { outputTail, waitForEnd } from '../../core/executionWait.js';
import { topics, waitForTopic } from '../../core/notifier.js';
import { isExecutionStatus, isTerminal, type ExecutionStatus } from '../../domain/execution.js';
import type { Execution } from '../../domain/model.js';
import { UserError } from '../../shared/errors.js';
import {
  CreateExecutionRequest,
  ErrorBody,
  ExecutionView,
  OutputChunkView,
  WaitedExecutionView,
  pageOf,
  SSE_EVENTS,
} from '../../shared/api.js';
import { chunkView, executionView } from '../../shared/views.js';
import { requireProjectCaller, requireUser, type Caller } from '../userAuth.js';
import { requireExecution, requireProject, visibleFilter } from '../../core/access.js';
import type { Permission } from '../../domain/roles.js';
import { watchCredential } from '../liveCredential.js';
import { SECURITY_HEADERS } from './dashboard.js';
import { parseLimit, parseTime } from './query.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IdParams = Type.Object({ id: Type.String() });
const ProjectParams = Type.Object({ project: Type.String({ maxLength: 200 }) });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
/**
 * Chunks read per query while streaming output: bounds memory whatever the output size. A chunk
 * is at most 8 MiB (a part of a large v1 chunk), so a read holds at most 32 MiB of text.
 */
const CHUNKS_PER_READ = 4;
/** Without a wake-up (another replica got the output), live readers look again this often. */
const LIVE_POLL_MS = 1000;
const SSE_PING_MS = 15_000;

const ListQuery = Type.Object(
  {
    project: Type.Optional(Type.String()),
    command: Type.Optional(Type.String()),
    status: Type.Optional(Type.String({ description: 'One status or several separated by commas.' })),
    created_by: Type.Optional(Type.String({ description: 'User id.' })),
    since: Type.Optional(Type.String()),
    until: Type.Optional(Type.String()),
    limit: Type.Optional(Type.String()),
    cursor: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const OutputQuery = Type.Object(
  {
    stream: Type.Optional(Type.Union([Type.Literal('stdout'), Type.Literal('stderr')])),
    format: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('jsonl')])),
  },
  { additionalProperties: false },
);
const ChunksQuery = Type.Object({ after: Type.Optional(Type.String()), limit: Type.Optional(Type.String()) }, { additionalProperties: false });

export function registerExecutionRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['executions'];
  const names = new Map<string, string>();
  const projectName = async (id: string) => {
    if (!names.has(id)) names.set(id, (await core.store.getProject(id))?.name ?? id);
    return names.get(id)!;
  };
  const view = async (e: Execution) => executionView(e, await projectName(e.projectId));
  /** The execution the route names, when the caller may do `permission` in its project. */
  const load = async (request: FastifyRequest, caller: Caller, permission: Permission = 'view') => {
    const { id } = request.params as { id: string };
    if (!UUID.test(id)) throw new UserError('DC_BAD_ID', `"${id.slice(0, 40)}" is not an execution id (a UUID).`);
    return requireExecution(core, caller, id.toLowerCase(), permission);
  };

  /** Creates, and with `?wait=SECONDS` answers once it has ended (or the wait is over), with its last lines. */
  const create = async (request: FastifyRequest, reply: FastifyReply, projectRef: string | undefined) => {
    const waitSeconds = parseWait((request.query as { wait?: string }).wait);
    const { caller, project } = await requireProjectCaller(core, request, projectRef, 'run');
    const body = request.body as CreateExecutionRequest;
    const e = await createExecution(core, caller.actor, project, { command: body.command, argv: body.argv, args: body.args, timeoutSeconds: body.timeout, startTimeoutSeconds: body.start_timeout, readOnly: body.read_only });
    reply.status(201);
    if (waitSeconds === undefined) return view(e);
    const gone = new AbortController();
    request.raw.once('close', () => gone.abort());
    const final = (await waitForEnd(core, e.id, waitSeconds * 1000, gone.signal)) ?? e;
    return { ...(await view(final)), ...(isTerminal(final.status) ? { output_tail: final.metadataOnly ? '' : await outputTail(core, final) } : {}) };
  };
  const createSchema = { 201: WaitedExecutionView, ...errors };
  const WaitQuery = Type.Object({ wait: Type.Optional(Type.String({ description: 'Seconds (1 to 3600) to wait for the end before answering; the answer then has output_tail.' })) }, { additionalProperties: false });

  app.post(
    '/api/v1/projects/:project/executions',
    { schema: { tags, params: ProjectParams, querystring: WaitQuery, body: CreateExecutionRequest, response: createSchema } },
    (request, reply) => create(request, reply, (request.params as { project: string }).project),
  );
  app.post(
    '/api/v1/executions',
    { schema: { tags, querystring: WaitQuery, body: Type.Composite([CreateExecutionRequest, Type.Object({ project: Type.Optional(Type.String({ maxLength: 200 })) })], { additionalProperties: false }), response: createSchema, description: 'Like POST /projects/{project}/executions, with the project in the body (or the only one there is).' } },
    (request, reply) => create(request, reply, (request.body as { project?: string }).project),
  );

  app.get('/api/v1/executions', { schema: { tags, querystring: ListQuery, response: { 200: pageOf(ExecutionView), ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const q = request.query as Record<string, string | undefined>;
    const project = q.project ? await requireProject(core, caller, q.project, 'view') : undefined;
    const statuses = q.status ? q.status.split(',').map((s) => s.trim()) : undefined;
    const bad = statuses?.find((s) => !isExecutionStatus(s));
    if (bad) throw new UserError('DC_VALIDATION', `"${bad}" is not an execution status.`, { field: 'status' });
    const page = await core.store.listExecutions(
      {
        projectId: project?.id,
        projectIds: visibleFilter(caller),
        command: q.command,
        statuses: statuses as ExecutionStatus[] | undefined,
        createdById: q.created_by,
        createdAfter: parseTime(q.since, 'since'),
        createdBefore: parseTime(q.until, 'until'),
      },
      parseLimit(q.limit),
      q.cursor,
    );
    return { items: await Promise.all(page.items.map(view)), next_cursor: page.nextCursor };
  });

  app.get('/api/v1/executions/:id', { schema: { tags, params: IdParams, response: { 200: ExecutionView, ...errors } } }, async (request) => {
    return view(await load(request, await requireUser(core, request)));
  });

  app.post('/api/v1/executions/:id/cancel', { schema: { tags, params: IdParams, description: 'Optional body {"force": true} kills at once; without it the runner sends SIGTERM, then SIGKILL after its grace period.', response: { 200: ExecutionView, ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const e = await load(request, caller, 'cancel');
    const force = parseCancelBody(request.body);
    return view(await cancelExecution(core, caller.actor, e.id, force));
  });

  app.get('/api/v1/executions/:id/output/chunks', { schema: { tags, params: IdParams, querystring: ChunksQuery, response: { 200: pageOf(OutputChunkView), ...errors } } }, async (request) => {
    const e = await load(request, await requireUser(core, request));
    const q = request.query as { after?: string; limit?: string };
    const after = q.after === undefined ? 0 : Number(q.after);
    if (!Number.isSafeInteger(after) || after < 0 || after > 2 ** 31 - 1) throw new UserError('DC_VALIDATION', 'after must be a chunk number (0 or more).', { field: 'after' });
    const limit = parseLimit(q.limit, 100);
    const chunks = await core.store.readOutput(e.id, after, limit);
    const last = chunks[chunks.length - 1];
    return { items: chunks.map(chunkView), next_cursor: chunks.length === limit && last ? String(last.seq) : null };
  });

  app.get('/api/v1/executions/:id/output', { schema: { tags, params: IdParams, querystring: OutputQuery } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const e = await load(request, caller);
    const q = request.query as { stream?: 'stdout' | 'stderr'; format?: 'text' | 'jsonl' };
    const jsonl = q.format === 'jsonl';
    reply.header('content-type', jsonl ? 'application/x-ndjson; charset=utf-8' : 'text/plain; charset=utf-8');
    reply.header('content-disposition', attachment(`${e.command}-${e.id}.${jsonl ? 'jsonl' : 'log'}`));
    const store = core.store;
    const credential = watchCredential(core, caller, { projectId: e.projectId, permission: 'view' });
    async function* pieces() {
      let after = 0;
      for (;;) {
        // A download of a huge output stops when its credential is revoked, like a live stream.
        if (!(await credential.valid())) throw new Error('the credential of this download was revoked');
        const chunks = await store.readOutput(e.id, after, CHUNKS_PER_READ);
        for (const c of chunks) {
          after = c.seq;
          if (q.stream && c.stream !== q.stream) continue;
          yield jsonl ? JSON.stringify(chunkView(c)) + '\n' : c.data;
        }
        if (chunks.length < CHUNKS_PER_READ) return;
      }
    }
    const body = Readable.from(pieces(), { objectMode: false, highWaterMark: 1 });
    body.once('close', () => credential.stop());
    credential.signal.addEventListener('abort', () => body.destroy(), { once: true });
    return reply.send(body);
  });

  app.get('/api/v1/executions/:id/events', { schema: { tags, params: IdParams, description: 'Server-Sent Events: output, status, end. Resume with Last-Event-ID (a chunk number).' } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const e = await load(request, caller);
    const lastId = request.headers['last-event-id'];
    const after = Number((Array.isArray(lastId) ? lastId[0] : lastId) ?? (request.query as { after?: string }).after ?? 0);
    await streamEvents(core, caller, e, Number.isSafeInteger(after) && after >= 0 && after < 2 ** 31 ? after : 0, request, reply, view);
  });
}

/** A Content-Disposition for a download, any command name: an ASCII fallback and the UTF-8 name (RFC 6266, 5987). */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

async function streamEvents(
  core: Core,
  caller: Caller,
  first: Execution,
  afterSeq: number,
  request: FastifyRequest,
  reply: FastifyReply,
  view: (e: Execution) => Promise<unknown>,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  // A hijacked reply skips the onSend hook that adds these to every other response.
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const abort = new AbortController();
  const credential = watchCredential(core, caller, { projectId: first.projectId, permission: 'view' });
  request.raw.on('close', () => abort.abort());
  credential.signal.addEventListener('abort', () => abort.abort(), { once: true });
  const write = async (text: string) => {
    if (res.write(text) || abort.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        abort.signal.removeEventListener('abort', done);
        resolve();
      };
      res.once('drain', done);
      abort.signal.addEventListener('abort', done, { once: true });
    });
  };
  const event = (name: string, data: unknown, id?: number) => write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);

  let after = afterSeq;
  let lastStatus = '';
  let lastPing = Date.now();
  try {
    let current = first;
    while (!abort.signal.aborted && (await credential.valid())) {
      const chunks = await core.store.readOutput(first.id, after, CHUNKS_PER_READ);
      for (const c of chunks) {
        await event(SSE_EVENTS.output, chunkView(c), c.seq);
        after = c.seq;
      }
      if (chunks.length === CHUNKS_PER_READ) continue;
      const key = `${current.status}|${current.cancelRequestedAt}|${current.startedAt}`;
      if (key !== lastStatus) {
        lastStatus = key;
        await event(SSE_EVENTS.status, await view(current));
      }
      if (isTerminal(current.status)) {
        // Output that arrived before the status changed has been read above; re-check once.
        const late = await core.store.readOutput(first.id, after, CHUNKS_PER_READ);
        if (late.length > 0) continue;
        await event(SSE_EVENTS.end, await view(current));
        break;
      }
      if (Date.now() - lastPing > SSE_PING_MS) {
        await write(': ping\n\n');
        lastPing = Date.now();
      }
      await waitForTopic(core.notifier, topics.execution(first.id), LIVE_POLL_MS, abort.signal);
      current = (await core.store.getExecution(first.id)) ?? current;
    }
    if (credential.signal.aborted && !res.destroyed) {
      // The client's reconnect gets the 401 that says why; this tells a reader at once.
      res.write(`event: ${SSE_EVENTS.revoked}\ndata: ${JSON.stringify({ error: 'The credential of this stream was revoked or expired; sign in again.', code: 'DC_UNAUTHENTICATED' })}\n\n`);
    }
  } catch (err) {
    request.log.error({ err }, 'live output stream failed');
  } finally {
    credential.stop();
    res.end();
  }
}

function parseWait(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 3600) throw new UserError('DC_VALIDATION', 'wait must be a whole number of seconds from 1 to 3600.', { field: 'wait' });
  return n;
}

/** The cancel body is optional (a bare POST cancels gracefully), which a route schema cannot say. */
function parseCancelBody(body: unknown): boolean {
  if (body === undefined || body === null) return false;
  if (typeof body !== 'object' || Array.isArray(body)) throw new UserError('DC_VALIDATION', 'The body must be an object like {"force": true}.', { field: 'body' });
  const { force, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw new UserError('DC_VALIDATION', `body must NOT have additional properties (${extra}).`, { field: 'body' });
  if (force !== undefined && typeof force !== 'boolean') throw new UserError('DC_VALIDATION', 'body.force must be true or false.', { field: 'body.force' });
  return force === true;
}
