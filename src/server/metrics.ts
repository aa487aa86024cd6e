/**
 * Prometheus metrics (prom-client), one registry per server process.
 *
 * Counted as things happen (through the core's observer, see core/observer.ts): executions
 * reaching each status per command, dispatch latency (created → started), first-output latency
 * (started → first output stored), output bytes stored, notification deliveries by channel kind
 * and result, database query time by operation, HTTP requests by route and status.
 * Read at scrape time: runners connected per project and protocol (v2: this process's live
 * sockets; v1: runners heard from within the offline period), active executions per status,
 * and Node's default process metrics (event loop lag, heap, CPU, GC).
 *
 * Served at /metrics only with DJANGOCOMMAND_METRICS_TOKEN (Bearer) on the main listener, or
 * without a token on the separate DJANGOCOMMAND_METRICS_ADDRESS listener; otherwise not at all.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Core } from '../core/context.js';
import type { CoreObserver } from '../core/observer.js';
import type { QueryTimer } from '../store/queryTiming.js';
import { UserError } from '../shared/errors.js';
import { VERSION } from '../version.js';
import type { Health } from './routes/health.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const QUERY_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** What the runner gauge reads from the live sockets (RunnerSessions.connected()). */
export type ConnectedRunners = () => Array<{ runnerId: string | undefined; project: string }>;

export class Metrics {
  readonly registry = new Registry();
  private readonly executions: Counter<'status' | 'command'>;
  private readonly dispatchLatency: Histogram;
  private readonly firstOutputLatency: Histogram;
  private readonly outputBytes: Counter;
  private readonly deliveries: Counter<'kind' | 'result'>;
  private readonly queries: Histogram<'operation'>;
  private readonly requests: Histogram<'method' | 'route' | 'status_code'>;
  private connected: ConnectedRunners = () => [];
  private core: Core | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'djangocommand_build_info', help: 'Always 1; the version as a label.', labelNames: ['version'], registers }).set({ version: VERSION }, 1);
    this.executions = new Counter({ name: 'djangocommand_executions_total', help: 'Executions that changed to each status (running, succeeded, failed, lost ...); creation (queued) is not counted.', labelNames: ['status', 'command'], registers });
    this.dispatchLatency = new Histogram({ name: 'djangocommand_dispatch_latency_seconds', help: 'From an execution being created to its runner starting it.', buckets: LATENCY_BUCKETS, registers });
    this.firstOutputLatency = new Histogram({ name: 'djangocommand_first_output_latency_seconds', help: 'From an execution starting to its first output being stored.', buckets: LATENCY_BUCKETS, registers });
    this.outputBytes = new Counter({ name: 'djangocommand_output_bytes_total', help: 'Bytes of command output stored (v1 and v2 runners).', registers });
    this.deliveries = new Counter({ name: 'djangocommand_notification_deliveries_total', help: 'Notification delivery attempts by channel kind and result (delivered, retry, failed).', labelNames: ['kind', 'result'], registers });
    this.queries = new Histogram({ name: 'djangocommand_db_query_duration_seconds', help: 'Database query time by operation (select, insert, update, delete, other).', labelNames: ['operation'], buckets: QUERY_BUCKETS, registers });
    this.requests = new Histogram({ name: 'djangocommand_http_request_duration_seconds', help: 'HTTP requests by method, route pattern and status code.', labelNames: ['method', 'route', 'status_code'], buckets: LATENCY_BUCKETS, registers });

    const metrics = this;
    new Gauge({
      name: 'djangocommand_runners_connected',
      help: 'Runners connected per project and protocol: v2, live WebSockets to this process; v1, runners heard from within the offline period.',
      labelNames: ['project', 'protocol'],
      registers,
      async collect() {
        this.reset();
        const v2 = new Map<string, number>();
        for (const s of metrics.connected()) if (s.runnerId) v2.set(s.project, (v2.get(s.project) ?? 0) + 1);
        for (const [project, n] of v2) this.set({ project, protocol: 'v2' }, n);
        const core = metrics.core;
        if (!core) return;
        const v1 = await core.store.operations.recentV1Runners(core.now() - core.settings.runnerOfflineAfterMs).catch(() => []);
        for (const r of v1) this.set({ project: r.project, protocol: 'v1' }, r.count);
      },
    });
    new Gauge({
      name: 'djangocommand_executions_active',
      help: 'Executions not finished yet, per status (queued, awaiting_approval, dispatched, running), in the whole database.',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        const core = metrics.core;
        if (!core) return;
        for (const s of ['queued', 'awaiting_approval', 'dispatched', 'running']) this.set({ status: s }, 0);
        for (const r of await core.store.operations.activeExecutions().catch(() => [])) this.set({ status: r.status }, r.count);
      },
    });
  }

  /** Turns what the core reports into metrics. */
  readonly observer: CoreObserver = {
    executionChanged: (e) => {
      this.executions.inc({ status: e.status, command: e.command });
      if (e.status === 'running' && e.startedAt !== null) this.dispatchLatency.observe(Math.max(0, e.startedAt - e.createdAt) / 1000);
    },
    outputStored: (e, bytes, first, at) => {
      this.outputBytes.inc(bytes);
      if (first && e.startedAt !== null) this.firstOutputLatency.observe(Math.max(0, at - e.startedAt) / 1000);
    },
    deliveryEnded: (kind, result) => this.deliveries.inc({ kind, result }),
  };

  readonly queryTimer: QueryTimer = (operation, seconds) => this.queries.observe({ operation }, seconds);

  /** Where scrape-time reads come from; called once the server is built. */
  attach(core: Core, connected: ConnectedRunners): void {
    this.core = core;
    this.connected = connected;
  }

  /** Times every routed request (health probes and /metrics excluded). */
  instrument(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url;
      if (route === undefined || route === '/metrics' || route === '/healthz' || route === '/readyz') return;
      this.requests.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Constant-time check of "Authorization: Bearer <token>". */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return false;
  // Digests have the same length whatever was sent: the comparison time tells nothing.
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** /metrics on the main listener, behind the token; without a token, 404 (not the dashboard's page). */
export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics | undefined, token: string | undefined): void {
  app.get('/metrics', { logLevel: 'silent', schema: { hide: true } }, async (request, reply) => {
    if (!metrics || !token) throw new UserError('DC_NOT_FOUND', 'No route GET /metrics: set DJANGOCOMMAND_METRICS_TOKEN or DJANGOCOMMAND_METRICS_ADDRESS to serve metrics.');
    if (!bearerMatches(request.headers.authorization, token)) {
      reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new UserError('DC_UNAUTHENTICATED', 'Send the metrics token: "Authorization: Bearer <DJANGOCOMMAND_METRICS_TOKEN>".');
    }
    reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store');
    return metrics.text();
  });
}

/**
 * The separate metrics listener (DJANGOCOMMAND_METRICS_ADDRESS): /metrics with no token, and the
 * health probes, nothing else. Meant for an address only Prometheus reaches.
 */
export async function listenMetrics(metrics: Metrics, health: Health, address: { host: string; port: number }): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'application/json', JSON.stringify({ error: 'Only GET.', code: 'DC_BAD_REQUEST' }));
    if (path === '/metrics') {
      metrics.text().then(
        (text) => send(200, metrics.registry.contentType, text),
        () => send(500, 'application/json', JSON.stringify({ error: 'Internal error.', code: 'DC_INTERNAL' })),
      );
    } else if (path === '/healthz') {
      send(200, 'application/json', JSON.stringify({ status: 'alive', version: VERSION }));
    } else if (path === '/readyz') {
      health.readiness().then((r) => send(r.ready ? 200 : 503, 'application/json', JSON.stringify(r.body)));
    } else {
      send(404, 'application/json', JSON.stringify({ error: `No route ${req.method} ${path.slice(0, 200)} on the metrics listener.`, code: 'DC_NOT_FOUND' }));
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UserError('DC_CONFIG', `DJANGOCOMMAND_METRICS_ADDRESS ${address.host}:${address.port}: cannot listen (${(err as NodeJS.ErrnoException).code ?? err.message}).`, undefined, { exitCode: 2 })));
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : address.port;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
