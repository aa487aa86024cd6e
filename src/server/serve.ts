/**
 * Starting the server: open and migrate the database, create the first admin on first start,
 * listen, and sweep for lost and timed-out executions until stopped.
 *
 * Stopping (SIGTERM/SIGINT, see close()): /readyz answers 503 at once; after
 * DJANGOCOMMAND_SHUTDOWN_DELAY (0 s by default) the listener closes, v2 runners are told to
 * reconnect elsewhere (close code 1001), live output streams end (clients reconnect to another
 * replica), background work stops, and requests in flight have DJANGOCOMMAND_SHUTDOWN_GRACE
 * (25 s) to finish before their connections are cut.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerConfig } from '../config/serverConfig.js';
import type { Core } from '../core/context.js';
import { LocalNotifier } from '../core/notifier.js';
import { ensureFirstAdmin } from '../core/accounts.js';
import { SYSTEM_ACTOR } from '../core/audit.js';
import { sweep } from '../core/sweeper.js';
import { CLAIM_AHEAD_MS, Scheduler } from '../core/schedules/scheduler.js';
import { notificationRuntime } from '../core/notifications/runtime.js';
import { startDeliverer } from '../core/notifications/deliverer.js';
import { openStore } from '../store/openStore.js';
import { PgNotifier } from '../store/pgNotifier.js';
import { CAPABILITIES } from '../store/dialects.js';
import { buildApp } from './app.js';
import { startRetention } from '../core/retention.js';
import { migrations } from '../store/migrations.js';
import { Health } from './routes/health.js';
import { listenMetrics, Metrics } from './metrics.js';
import { writePidFile } from './pidFile.js';

export const ADMIN_PASSWORD_FILE = 'admin-password.txt';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function serve(config: ServerConfig, print: (line: string) => void): Promise<RunningServer> {
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const metrics = new Metrics();
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, onQuery: metrics.queryTimer, preparedStatements: config.pgPreparedStatements });
  // With PostgreSQL, several replicas may share the database: wake-ups travel by LISTEN/NOTIFY.
  const pgNotifier = CAPABILITIES[store.dialect].listenNotify && config.databaseUrl ? new PgNotifier(config.databaseUrl) : undefined;
  await pgNotifier?.start();
  const core: Core = { store, notifier: pgNotifier ?? new LocalNotifier(), now: Date.now, settings: config.core, observer: metrics.observer, signIn: config.signIn };
  const health = new Health(core, Object.keys(migrations(CAPABILITIES[store.dialect])));
  // Before listening: a wrong DJANGOCOMMAND_SECRET_KEY or SMTP URL stops the start.
  core.notifications = notificationRuntime(config.notifications, config.dataDir);

  const admin = await ensureFirstAdmin(core, SYSTEM_ACTOR, { email: config.adminEmail, password: config.adminPassword });
  const passwordFile = path.join(config.dataDir, ADMIN_PASSWORD_FILE);
  if (admin?.generatedPassword) {
    fs.writeFileSync(passwordFile, `${admin.user.email}\n${admin.generatedPassword}\n`, { mode: 0o600 });
    fs.chmodSync(passwordFile, 0o600);
  }

  const app = await buildApp({
    core,
    maxApiBodyBytes: config.maxApiBodyBytes,
    maxRunnerBodyBytes: config.maxRunnerBodyBytes,
    maxOutputChunkBytes: config.maxOutputChunkBytes,
    receiveTimeoutMs: config.receiveTimeoutMs,
    maxConnectionsPerAddress: config.maxConnectionsPerAddress,
    trustProxy: config.trustProxy,
    logLevel: config.logLevel,
    health,
    metrics,
    metricsToken: config.metricsToken,
    retentionDefaults: { days: config.retention.days, maxOutputBytes: config.retention.maxOutputBytes },
  });
  // What is open, so a shutdown can end live streams at once and cut what outlasts the grace.
  const responses = new Set<ServerResponse>();
  app.server.on('request', (_req, res: ServerResponse) => {
    // While shutting down, a client is told not to reuse the connection (its next request goes to another replica).
    // (fastify may have answered already, e.g. a body too large: then there is no header to add.)
    if (health.isShuttingDown && !res.headersSent) res.setHeader('connection', 'close');
    responses.add(res);
    res.once('close', () => responses.delete(res));
  });
  const upgraded = new Set<Duplex>();
  app.server.on('upgrade', (_req, socket: Duplex) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
  });
  await app.listen({ host: config.host, port: config.port });
  const metricsListener = config.metricsAddress ? await listenMetrics(metrics, health, config.metricsAddress).catch(async (err) => (await app.close(), Promise.reject(err))) : undefined;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  core.notifications.publicUrl ??= url;
  const deliverer = startDeliverer(core, { onError: (err) => app.log.error({ err }, 'notification delivery pass failed') });
  const retention = startRetention(core, { days: config.retention.days, maxOutputBytes: config.retention.maxOutputBytes }, {
    intervalMs: config.retention.intervalMs,
    onError: (err) => app.log.error({ err }, 'retention pass failed'),
    onReport: (r) => {
      if (r.executions > 0) app.log.info({ executions: r.executions, output_bytes: r.outputBytes, batches: r.batches }, 'retention purged finished executions');
    },
  });
  const removePidFile = writePidFile(config.dataDir, url);

  // Runners are declared lost only after offline + grace of this server hearing them: a start,
  // a database outage or a stalled process starts the count again (see sweeper.ts).
  let hearingSince = core.now();
  let lastGoodSweep = core.now();
  const stallMs = Math.max(5_000, 5 * config.sweepIntervalMs);
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    if (core.now() - lastGoodSweep > stallMs) hearingSince = core.now();
    sweep(core, hearingSince)
      .then(() => {
        lastGoodSweep = core.now();
      })
      .catch((err) => app.log.error({ err }, 'sweep failed'))
      .finally(() => {
        sweeping = false;
      });
  }, config.sweepIntervalMs);

  // Every process runs the scheduler; the database makes each occurrence fire once.
  const scheduler = new Scheduler(core, { claimAheadMs: CLAIM_AHEAD_MS }).start((err) => app.log.error({ err }, 'scheduler pass failed'));

  print(`djangocommand server listening on ${url} (database: ${store.dialect === 'sqlite' ? path.join(config.dataDir, 'djangocommand.sqlite3') : 'PostgreSQL'})`);
  print(`  REST API: ${url}/api/v1/   OpenAPI: ${url}/api/v1/openapi.json   runner protocol v1: ${url}/api/runner/`);
  if (metricsListener) print(`  metrics: ${metricsListener.url}/metrics (no token: keep this address private)`);
  else if (config.metricsToken) print(`  metrics: ${url}/metrics (Bearer DJANGOCOMMAND_METRICS_TOKEN)`);
  if (admin?.generatedPassword) print(`  first admin ${admin.user.email}: one-time password written to ${passwordFile} (mode 0600)`);
  else if (admin) print(`  first admin ${admin.user.email} created with the password from DJANGOCOMMAND_ADMIN_PASSWORD`);

  let closing: Promise<void> | undefined;
  const shutdown = async () => {
    health.markShuttingDown();
    for (const res of responses) if (!res.headersSent) res.setHeader('connection', 'close');
    app.log.info({ delay_ms: config.shutdownDelayMs, grace_ms: config.shutdownGraceMs }, 'shutting down');
    // The load balancer sees /readyz fail and stops sending; then the listener closes.
    if (config.shutdownDelayMs > 0) await sleep(config.shutdownDelayMs);
    clearInterval(timer);
    // Live output streams never end by themselves: end them (the client reconnects elsewhere).
    for (const res of responses) if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) res.destroy();
    // Past the grace, what is still open is cut: slow requests, runners that ignore 1001.
    const force = setTimeout(() => {
      app.log.warn({ requests: responses.size, sockets: upgraded.size }, 'shutdown grace over: closing what is left');
      app.server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
    }, config.shutdownGraceMs);
    try {
      // app.close(): stop accepting, tell v2 runners 1001 (going away), wait for requests in flight.
      await Promise.all([app.close(), scheduler.stop(), deliverer.stop(), retention.stop(), metricsListener?.close()]);
      await pgNotifier?.close();
      await store.close();
    } finally {
      clearTimeout(force);
      removePidFile();
    }
  };

  return {
    url,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
