/**
 * Notifications through real server processes and the CLI, on SQLite and PostgreSQL, with real
 * receivers on loopback: channels made with `djangocommand channel ...`, a test message signed and
 * received, email through a real SMTP server, a delivery that survives a server killed while its
 * receiver was down (sent once after the restart), and channel secrets found nowhere in the
 * database, the logs or the CLI's output. Non-admins may not change channels.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { httpReceiver, smtpReceiver, verifySignature, type HttpReceiver, type SmtpReceiver } from '../support/receivers.js';

const HOOK_PATH = '/hooks/T0KEN-IN-THE-PATH-4f1c';
const SIGNING_SECRET = 'given-signing-secret-9d2e7a';
const CHANNEL_SMTP_PASSWORD = 'channel-smtp-pass-71be';

/** Every row of every table, as text: where a secret in clear would show. */
async function databaseText(db: FreshDatabase): Promise<string> {
  if (!db.databaseUrl) {
    return ['djangocommand.sqlite3', 'djangocommand.sqlite3-wal']
      .map((f) => path.join(db.dataDir, f))
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.readFileSync(f).toString('latin1'))
      .join('\n');
  }
  const client = new pg.Client({ connectionString: db.databaseUrl });
  await client.connect();
  try {
    const tables = (await client.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).rows;
    let text = '';
    for (const { table_name } of tables) text += (await client.query(`SELECT t::text AS row FROM "${table_name}" t`)).rows.map((r) => r.row).join('\n');
    return text;
  } finally {
    await client.end();
  }
}

describe.each(DB_KINDS)('notifications end to end on %s', (kind) => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let hook: HttpReceiver;
  let smtp: SmtpReceiver;
  let env: Record<string, string>;
  let devEnv: Record<string, string>;
  const cli = (args: string[], e = env) => runCli(args, e);
  let webhookId: string;
  let emailId: string;

  beforeAll(async () => {
    db = await freshDatabase(kind);
    hook = await httpReceiver();
    smtp = await smtpReceiver();
    server = await startServer(db, {
      DJANGOCOMMAND_SMTP_URL: smtp.url,
      DJANGOCOMMAND_EMAIL_FROM: 'djangocommand@example.com',
      DJANGOCOMMAND_PUBLIC_URL: 'https://dc.example.com/',
      DJANGOCOMMAND_NOTIFY_RETRY_BASE: '1',
      DJANGOCOMMAND_LOG_LEVEL: 'info',
    });
    const { token } = await setUpProject(server);
    env = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    expect((await server.admin(['create-user', 'dev@example.com', '--json'])).code).toBe(0);
    expect((await server.admin(['set-member', 'shop', 'dev@example.com', '--role', 'operator'])).code).toBe(0);
    const dev = JSON.parse((await server.admin(['create-token', '--user', 'dev@example.com', '--json'])).stdout);
    devEnv = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: dev.token };
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await hook?.close();
    await smtp?.close();
    await db?.drop();
  });

  it('creates channels with the CLI; a webhook test arrives signed, an email test through SMTP', async () => {
    const wh = await cli(['channel', 'create', '--project', 'shop', '--kind', 'webhook', '--url', hook.url + HOOK_PATH, '--secret', SIGNING_SECRET, '--on', 'failure,recovery', '--name', 'ops hook', '--json']);
    expect(wh.code, wh.stderr).toBe(0);
    const created = JSON.parse(wh.stdout);
    expect(created).toMatchObject({ kind: 'webhook', project: 'shop', target: `${hook.url}/…`, on: ['failure', 'recovery'], secret: SIGNING_SECRET });
    webhookId = created.id;
    const mail = await cli(['channel', 'create', '--all-projects', '--kind', 'email', '--to', 'ops@example.com', '--url', `smtp://mailer:${CHANNEL_SMTP_PASSWORD}@127.0.0.1:1`, '--json']);
    expect(mail.code, mail.stderr).toBe(0);
    emailId = JSON.parse(mail.stdout).id;
    const serverSmtp = await cli(['channel', 'create', '--all-projects', '--kind', 'email', '--to', 'team@example.com', '--name', 'team mail']);
    expect(serverSmtp.code, serverSmtp.stderr).toBe(0);
    expect(serverSmtp.stdout).toMatch(/Created channel [0-9a-f-]{36}: team mail → team@example.com/);

    const list = await cli(['channel', 'list', '--json']);
    expect(JSON.parse(list.stdout).map((c: { name: string }) => c.name)).toEqual(['ops hook', `email to ops@example.com via 127.0.0.1:1`, 'team mail']);

    const test = await cli(['channel', 'test', webhookId]);
    expect(test.code, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toMatch(/delivered .*Test message from djangocommand for shop/);
    expect(test.stdout).toMatch(/ok +200/);
    expect(hook.received).toHaveLength(1);
    const req = hook.received[0];
    expect(req.path).toBe(HOOK_PATH);
    expect(verifySignature(req.headers['x-djangocommand-signature'] as string, req.body, SIGNING_SECRET)).toBe(true);
    expect(JSON.parse(req.body)).toMatchObject({ type: 'channel.test', project: 'shop' });

    const teamId = JSON.parse((await cli(['channel', 'list', '--json'])).stdout)[2].id;
    const mailed = await cli(['channel', 'test', teamId, '--json']);
    expect(mailed.code, mailed.stdout + mailed.stderr).toBe(0);
    expect(JSON.parse(mailed.stdout).delivery.status).toBe('delivered');
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]).toMatchObject({ from: 'djangocommand@example.com', to: ['team@example.com'] });
    expect(smtp.mails[0].raw).toContain('Subject: Test message from djangocommand');

    // The channel with an SMTP server that does not exist: the failure is said, and kept.
    const broken = await cli(['channel', 'test', emailId, '--wait', '15']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/failed/);
  }, 60_000);

  it('keeps a delivery across a server killed while its receiver was down, and sends it once', async () => {
    const port = hook.port;
    await hook.close();
    const before = await cli(['channel', 'test', webhookId, '--wait', '10']);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/ECONNREFUSED|fetch failed/);
    await server.restart('SIGKILL');
    hook = await httpReceiver(port);
    await waitFor('the retried delivery', () => hook.received.length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(hook.received).toHaveLength(1);
    const deliveries = JSON.parse((await cli(['channel', 'deliveries', webhookId, '--json'])).stdout);
    expect(deliveries[0].status).toBe('delivered');
    expect(deliveries[0].attempts.map((a: { ok: boolean }) => a.ok).at(-1)).toBe(true);
    expect(deliveries[0].attempts[0].ok).toBe(false);
    expect(deliveries[1]).toMatchObject({ status: 'delivered', attempts: [expect.objectContaining({ ok: true, status_code: 200 })] });
    const text = await cli(['channel', 'deliveries', webhookId]);
    expect(text.stdout).toMatch(/#\d+ +delivered/);
  }, 60_000);

  it('refuses non-admins, and keeps secrets out of the database, the logs and every answer', async () => {
    const refused = await cli(['channel', 'create', '--project', 'shop', '--kind', 'slack', '--url', 'https://hooks.slack.com/services/X'], devEnv);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/needs the admin role/);
    expect((await cli(['channel', 'test', webhookId], devEnv)).stderr).toMatch(/needs the admin role/);
    expect((await cli(['channel', 'delete', webhookId], devEnv)).stderr).toMatch(/needs the admin role/);
    const seen = [
      (await cli(['channel', 'list'], devEnv)).stdout,
      (await cli(['channel', 'list', '--json'])).stdout,
      (await cli(['channel', 'deliveries', webhookId, '--json'])).stdout,
      (await cli(['channel', 'deliveries', emailId, '--json'])).stdout,
      (await cli(['audit', '--json'])).stdout,
      server.logs(),
      await databaseText(db),
    ];
    // The dump holds the channels (sealed), so looking in it means something.
    expect(seen.at(-1)).toMatch(/v1\.[0-9a-f]{8}\./);
    expect(seen.at(-1)).toContain('ops@example.com');
    for (const text of seen) {
      for (const secret of ['T0KEN-IN-THE-PATH', SIGNING_SECRET, CHANNEL_SMTP_PASSWORD]) expect(text).not.toContain(secret);
    }
    // ...and the key that seals them is the server's own, 0600, outside the database.
    expect(fs.statSync(path.join(db.dataDir, 'secret.key')).mode & 0o777).toBe(0o600);
    const del = await cli(['channel', 'delete', webhookId]);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse((await cli(['channel', 'list', '--json'])).stdout)).toHaveLength(2);
  }, 60_000);
});
