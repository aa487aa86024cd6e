/**
 * Starting the server: open and migrate the database, create the first admin on first start,
 * listen, and sweep for lost and timed-out executions until stopped.
 */
import fs from 'node:fs';
import path from 'node:path';
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

export const ADMIN_PASSWORD_FILE = 'admin-password.txt';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function serve(config: ServerConfig, print: (line: string) => void): Promise<RunningServer> {
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  // With PostgreSQL, several replicas may share the database: wake-ups travel by LISTEN/NOTIFY.
  const pgNotifier = CAPABILITIES[store.dialect].listenNotify && config.databaseUrl ? new PgNotifier(config.databaseUrl) : undefined;
  await pgNotifier?.start();
  const core: Core = { store, notifier: pgNotifier ?? new LocalNotifier(), now: Date.now, settings: config.core };
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
  });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  core.notifications.publicUrl ??= url;
  const deliverer = startDeliverer(core, { onError: (err) => app.log.error({ err }, 'notification delivery pass failed') });

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
  if (admin?.generatedPassword) print(`  first admin ${admin.user.email}: one-time password written to ${passwordFile} (mode 0600)`);
  else if (admin) print(`  first admin ${admin.user.email} created with the password from DJANGOCOMMAND_ADMIN_PASSWORD`);

  return {
    url,
    async close() {
      clearInterval(timer);
      await scheduler.stop();
      await deliverer.stop();
      await app.close();
      await pgNotifier?.close();
      await store.close();
    },
  };
}
