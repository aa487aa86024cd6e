/**
 * Probes for load balancers and orchestrators, unauthenticated and not request-logged:
 *  - GET /healthz: the process answers (no database work). 200 while it runs.
 *  - GET /readyz: the database answers within 2 s and has every migration this version knows;
 *    503 with a JSON reason otherwise, and at once when the server begins shutting down.
 * Simultaneous probes share one database read, and a good answer is reused for a second.
 */
import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/context.js';
import { VERSION } from '../../version.js';

const PROBE_TIMEOUT_MS = 2_000;
const GOOD_FOR_MS = 1_000;

export interface Readiness {
  ready: boolean;
  body: { status: 'ready' | 'not_ready'; reason?: 'shutting_down' | 'database_unreachable' | 'database_timeout' | 'migrations_pending'; detail?: string; database: string; version: string };
}

export class Health {
  private shuttingDown = false;
  private inFlight: Promise<Readiness> | undefined;
  private lastGood = 0;

  constructor(
    private readonly core: Core,
    /** Migration names this version applies; the database must have them all. */
    private readonly migrations: readonly string[],
    private readonly timeoutMs = PROBE_TIMEOUT_MS,
  ) {}

  /** From now on /readyz answers 503 (shutdown began). */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  async readiness(): Promise<Readiness> {
    const base = { database: this.core.store.dialect, version: VERSION };
    if (this.shuttingDown) return { ready: false, body: { status: 'not_ready', reason: 'shutting_down', ...base } };
    if (Date.now() - this.lastGood < GOOD_FOR_MS) return { ready: true, body: { status: 'ready', ...base } };
    this.inFlight ??= this.probe().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async probe(): Promise<Readiness> {
    const base = { database: this.core.store.dialect, version: VERSION };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.timeoutMs)));
    try {
      const applied = await Promise.race([this.core.store.operations.appliedMigrations(), timeout]);
      if (applied === 'timeout') return { ready: false, body: { status: 'not_ready', reason: 'database_timeout', detail: `no answer within ${this.timeoutMs} ms`, ...base } };
      const have = new Set(applied);
      const missing = this.migrations.filter((m) => !have.has(m));
      if (missing.length > 0) return { ready: false, body: { status: 'not_ready', reason: 'migrations_pending', detail: missing.join(', '), ...base } };
      this.lastGood = Date.now();
      return { ready: true, body: { status: 'ready', ...base } };
    } catch (err) {
      return { ready: false, body: { status: 'not_ready', reason: 'database_unreachable', detail: safeDetail(err), ...base } };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An error code (ECONNREFUSED, 57P01 ...) or class name: never a message that could hold a connection string. */
function safeDetail(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
  return err instanceof Error ? err.name : 'error';
}

export function registerHealthRoutes(app: FastifyInstance, health: Health): void {
  const opts = { logLevel: 'silent' as const, schema: { hide: true } };
  app.get('/healthz', opts, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'alive', version: VERSION };
  });
  app.get('/readyz', opts, async (_request, reply) => {
    const r = await health.readiness();
    reply.header('cache-control', 'no-store');
    reply.status(r.ready ? 200 : 503);
    return r.body;
  });
}
