/**
 * The HTTP server: one Fastify instance with the runner protocol v1 routes, the REST API and
 * its OpenAPI document. Errors leave as `{ error, code }` JSON with a stable code; anything
 * that is not a UserError is logged with its cause and answered as an internal error.
 */
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { isUserError, UserError } from '../shared/errors.js';
import type { Core } from '../core/context.js';
import { registerRunnerV1Routes } from './routes/runnerV1.js';
import { registerProjectRoutes } from './routes/projects.js';
import { registerExecutionRoutes } from './routes/executions.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerAuditChainRoutes } from './routes/auditChain.js';
import { registerMetaRoutes } from './routes/meta.js';
import { registerUserRoutes } from './routes/users.js';
import { registerMemberRoutes } from './routes/members.js';
import { registerCommandSettingsRoutes } from './routes/commandSettings.js';
import { registerApprovalRoutes } from './routes/approvals.js';
import { registerManageRoutes } from './routes/manage.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerChannelRoutes } from './routes/channels.js';
import { VERSION } from '../version.js';
import { RunnerSessions } from './runnerSessions.js';
import { ShellSessions } from './shellSessions.js';
import { registerShellRoutes } from './routes/shells.js';
import { Health, registerHealthRoutes } from './routes/health.js';
import { registerRetentionRoutes } from './routes/retention.js';
import type { RetentionLimits } from '../core/retention.js';
import { registerMetricsRoute, type Metrics } from './metrics.js';
import { requestIdOf, loggerOptions, requestLogController } from './requestLog.js';
import { migrations } from '../store/migrations.js';
import { CAPABILITIES } from '../store/dialects.js';

declare module 'fastify' {
  interface FastifyInstance {
    runnerSessions: RunnerSessions;
    shellSessions: ShellSessions;
  }
  interface FastifyRequest {
    /** SHA-256 of the JSON body's bytes as received (runner requests are fingerprinted by it). */
    bodyDigest?: string;
  }
}

export interface AppOptions {
  core: Core;
  maxApiBodyBytes: number;
  maxRunnerBodyBytes: number;
  /** Largest v1 output/ body (read as a stream); default 512 MiB. */
  maxOutputChunkBytes?: number;
  trustProxy: boolean;
  logLevel: string;
  /** Longest time to receive one request, headers and body (slow clients are cut off); default 120 s. */
  receiveTimeoutMs?: number;
  /** Open connections one address may hold; 0: no cap. Default 256. */
  maxConnectionsPerAddress?: number;
  /** /healthz and /readyz (serve.ts shares it with the shutdown); default: a fresh one. */
  health?: Health;
  /** Prometheus metrics; served at /metrics when `metricsToken` is given. */
  metrics?: Metrics;
  metricsToken?: string;
  /** Server-wide retention limits (DJANGOCOMMAND_RETENTION_*); default: none. */
  retentionDefaults?: RetentionLimits;
  /** Audited shells: the reattach grace period and start timeout (shellSessions.ts). */
  shells?: import('./shellSessions.js').ShellSessionsOptions;
}

/** No real cap: a chunk streams into the store in parts, so its size costs time, not memory. */
export const DEFAULT_MAX_OUTPUT_CHUNK = 64 * 1024 ** 3;
/** Headers must arrive this fast, whatever the receive timeout: a slow-loris sends them a byte at a time. */
const HEADERS_TIMEOUT_MS = 10_000;

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const receiveTimeoutMs = opts.receiveTimeoutMs ?? 120_000;
  const app = Fastify({
    logger: opts.logLevel === 'silent' ? false : loggerOptions(opts.logLevel),
    // Every request has an id (the caller's X-Request-Id when well-formed): in each log line of
    // the request, in the response's X-Request-Id header and in error bodies (request_id).
    genReqId: requestIdOf,
    requestIdHeader: false,
    logController: requestLogController(),
    bodyLimit: opts.maxApiBodyBytes,
    trustProxy: opts.trustProxy,
    // No coercion: "5" is not a number and "x" is not a list; query strings are parsed by hand.
    ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false } },
    routerOptions: { ignoreTrailingSlash: false },
    // A request whose headers or body never finish is cut off (Node checks every second). Live
    // output (SSE) and runner WebSockets are not affected: their requests are complete at once.
    requestTimeout: receiveTimeoutMs,
    http: { headersTimeout: Math.min(HEADERS_TIMEOUT_MS, receiveTimeoutMs), requestTimeout: receiveTimeoutMs, connectionsCheckingInterval: 1000 },
    clientErrorHandler: answerClientError,
    frameworkErrors: (err, _request, reply) => {
      (reply as FastifyReply).status(400).send({ error: `The URL is malformed (${err.message.slice(0, 200)}).`, code: 'DC_BAD_REQUEST' });
    },
  });
  capConnectionsPerAddress(app, opts.maxConnectionsPerAddress ?? 256);
  app.addHook('onRequest', async (request, reply) => {
    // On the raw response, so hijacked replies (live output streams) carry it too.
    reply.raw.setHeader('x-request-id', request.id);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // Error bodies say which request they answer, for a support ticket or a log search.
    if (reply.statusCode >= 400 && typeof payload === 'string' && payload.startsWith('{"error"')) return `{"request_id":${JSON.stringify(request.id)},${payload.slice(1)}`;
    return payload;
  });
  // `Expect: 100-continue` is answered by Node itself; any other expectation cannot be met.
  app.server.on('checkExpectation', (_req, res) => {
    const body = JSON.stringify({ error: 'Only "Expect: 100-continue" is understood.', code: 'DC_BAD_REQUEST' });
    res.writeHead(417, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  // Bodies come only as JSON: anything else sent to the API is refused by its content type; the
  // hook below catches NULs in what every route reads (PostgreSQL text cannot hold one).
  app.addHook('preValidation', async (request) => {
    const where = nulIn(request.params, 'params') ?? nulIn(request.query, 'query') ?? nulIn(request.body, '');
    if (where) throw new UserError('DC_VALIDATION', `${where || 'The body'} contains a NUL (a control character no field may hold).`, { field: where });
  });

  // v1 runners POST with "Content-Type: application/json" and no body; that must parse as "no body".
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) return done(null, undefined);
    req.bodyDigest = createHash('sha256').update(bytes).digest('hex');
    try {
      done(null, JSON.parse(bytes.toString('utf8')));
    } catch {
      done(Object.assign(new Error('The body is not valid JSON.'), { statusCode: 400, code: 'DC_BAD_JSON' }) as FastifyError, undefined);
    }
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isUserError(err)) {
      return reply.status(err.status).send({ error: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) });
    }
    if (err.validation) {
      const v = err.validation[0];
      const where = `${err.validationContext ?? 'body'}${v?.instancePath ?? ''}`.replace(/\//g, '.');
      const extra = v?.params && 'additionalProperty' in v.params ? ` (${String(v.params.additionalProperty)})` : '';
      const allowed = v?.params && 'allowedValues' in v.params ? `: ${(v.params.allowedValues as unknown[]).join(', ')}` : '';
      return reply.status(400).send({ error: `${where} ${v?.message ?? 'is invalid'}${extra}${allowed}.`, code: 'DC_VALIDATION', details: { field: where } });
    }
    switch (err.code) {
      case 'DC_BAD_JSON':
        return reply.status(400).send({ error: err.message, code: 'DC_BAD_JSON' });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.status(413).send({ error: `The body is larger than this endpoint accepts (${request.routeOptions.bodyLimit ?? opts.maxApiBodyBytes} bytes).`, code: 'DC_BODY_TOO_LARGE' });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send({ error: 'Send JSON with "Content-Type: application/json".', code: 'DC_BAD_REQUEST' });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send({ error: 'Content-Length does not match the body.', code: 'DC_BAD_REQUEST' });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: err.message, code: 'DC_BAD_REQUEST' });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ error: 'Internal error; the server logged it.', code: 'DC_INTERNAL' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: `No route ${request.method} ${request.url.split('?')[0]}.`, code: 'DC_NOT_FOUND' });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'djangocommand', version: VERSION, description: 'Run, schedule and audit Django management commands.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A personal API token (dct_...) or, on /api/runner/, a runner key (dc_...).' } } },
      security: [{ bearer: [] }],
    },
  });

  registerMetaRoutes(app, opts.core);
  registerHealthRoutes(app, opts.health ?? new Health(opts.core, Object.keys(migrations(CAPABILITIES[opts.core.store.dialect]))));
  if (opts.metrics) opts.metrics.instrument(app);
  registerMetricsRoute(app, opts.metrics, opts.metricsToken);
  registerRunnerV1Routes(app, opts.core, opts.maxRunnerBodyBytes, opts.maxOutputChunkBytes ?? DEFAULT_MAX_OUTPUT_CHUNK);
  registerProjectRoutes(app, opts.core);
  registerExecutionRoutes(app, opts.core);
  registerAuditRoutes(app, opts.core);
  registerAuditChainRoutes(app, opts.core);
  registerUserRoutes(app, opts.core);
  (await import('./routes/oidc.js')).registerOidcRoutes(app, opts.core);
  registerMemberRoutes(app, opts.core);
  registerCommandSettingsRoutes(app, opts.core);
  registerApprovalRoutes(app, opts.core);
  registerManageRoutes(app, opts.core);
  registerChannelRoutes(app, opts.core);
  registerRetentionRoutes(app, opts.core, opts.retentionDefaults ?? { days: 0, maxOutputBytes: 0 });
  (await import('./routes/schedules.js')).registerScheduleRoutes(app, opts.core);
  registerDashboardRoutes(app);

  const sessions = new RunnerSessions(opts.core, app.log, opts.maxRunnerBodyBytes);
  // Audited shells: their own routes and attach WebSocket; they ride on the runner connections.
  const shells = new ShellSessions(opts.core, app.log, opts.shells);
  sessions.shells = shells;
  registerShellRoutes(app, opts.core, shells);
  app.decorate('shellSessions', shells);
  app.addHook('preClose', async () => shells.close());
  app.server.on('upgrade', (request, socket, head) => {
    const forwarded = opts.trustProxy ? String(request.headers['x-forwarded-for'] ?? '').split(',')[0].trim() : '';
    const address = forwarded || request.socket.remoteAddress || 'unknown';
    if (!sessions.handleUpgrade(request, socket, head, address) && !shells.handleUpgrade(request, socket, head, address)) socket.destroy();
  });
  app.decorate('runnerSessions', sessions);
  opts.metrics?.attach(opts.core, () => sessions.connected());
  app.addHook('preClose', async () => sessions.close());
  return app;
}

/**
 * One address may hold at most `max` open connections (0: no cap): a single client cannot take
 * every socket the server has. Behind a reverse proxy every connection comes from the proxy:
 * cap there, and raise or turn off this one.
 */
function capConnectionsPerAddress(app: FastifyInstance, max: number): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  app.server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const n = (open.get(address) ?? 0) + 1;
    if (n > max) {
      app.log.warn({ address, max }, 'too many connections from one address: refused');
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/**
 * What Node could not parse as HTTP (a bad header, bare LF line ends, an unknown method, a header
 * block over 16 KiB, a request too slow to arrive) gets a DC_ error like everything else.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'DC_REQUEST_TIMEOUT', 'The request took too long to arrive (DJANGOCOMMAND_RECEIVE_TIMEOUT).']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'DC_HEADERS_TOO_LARGE', 'The request headers are larger than 16 KiB.']
    : [400, 'DC_BAD_REQUEST', 'The request is not valid HTTP/1.1.'];
  const body = JSON.stringify({ error: message, code });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy();
}

/** Where the first string holding a NUL is (`commands[1].name`, `query.action`), or undefined. */
function nulIn(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? path : undefined;
  if (value === null || typeof value !== 'object' || depth > 64) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const inner = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    const found = k.includes('\0') ? inner : nulIn(v, inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}
