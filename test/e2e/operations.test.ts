/**
 * Operating the server, as real processes (SQLite): health and readiness probes, Prometheus
 * metrics behind a token and on their own address (and moving after a real execution through our
 * runner and the example Django project), JSON request logs with a request id and no secret in
 * them, and per-project retention through the CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { openDatabase } from '../../src/store/openStore.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const PASSWORD = 'correct horse battery staple';

/** The value of one sample in Prometheus text, e.g. `djangocommand_output_bytes_total`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const [series, value] = [line.slice(0, line.lastIndexOf(' ')), line.slice(line.lastIndexOf(' ') + 1)];
    if (want.every((l) => series.includes(l))) return Number(value);
  }
  return 0;
}

describe('operations: probes, metrics, logs, retention (SQLite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle | undefined;
  let key: string;
  let token: string;
  let metricsUrl: string;

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const scrape = async () => {
    const res = await fetch(server.url + '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    return res.text();
  };
  /** The JSON log lines of the server (its banner lines are not JSON). */
  const jsonLines = () =>
    server
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db, { DJANGOCOMMAND_LOG_LEVEL: 'debug', DJANGOCOMMAND_METRICS_TOKEN: METRICS_TOKEN, DJANGOCOMMAND_METRICS_ADDRESS: '127.0.0.1:0', DJANGOCOMMAND_RETENTION_INTERVAL: '1' });
    ({ key, token } = await setUpProject(server));
    metricsUrl = (await waitFor('the metrics address', () => /metrics: (http:\/\/127\.0\.0\.1:\d+)\/metrics \(no token/.exec(server.logs())?.[1]))!;
  });
  afterAll(async () => {
    await runner?.stop();
    await server?.stop();
    await db?.drop();
  });

  it('answers /healthz and /readyz without credentials, and does not log them', async () => {
    const alive = await fetch(server.url + '/healthz');
    expect(alive.status).toBe(200);
    expect(await alive.json()).toMatchObject({ status: 'alive' });
    const ready = await fetch(server.url + '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', database: 'sqlite' });
    // A request that is logged, to be sure logging is on at all.
    await api('/api/v1/projects');
    await waitFor('the request log line', () => jsonLines().some((l) => l.req?.path === '/api/v1/projects'));
    expect(jsonLines().filter((l) => l.req?.path === '/healthz' || l.req?.path === '/readyz')).toEqual([]);
  });

  it('serves /metrics only with the token on the main address, and without one on the metrics address', async () => {
    const none = await fetch(server.url + '/metrics');
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'DC_UNAUTHENTICATED', request_id: expect.any(String) });
    const wrong = await fetch(server.url + '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } });
    expect(wrong.status).toBe(401);
    // A user's API token is not the metrics token.
    expect((await fetch(server.url + '/metrics', { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    const text = await scrape();
    expect(text).toContain('djangocommand_build_info{version=');
    expect(text).toMatch(/nodejs_eventloop_lag_seconds \d/);
    expect(sample(text, 'djangocommand_db_query_duration_seconds_count', { operation: 'select' })).toBeGreaterThan(0);

    const side = await fetch(metricsUrl + '/metrics');
    expect(side.status).toBe(200);
    expect(side.headers.get('content-type')).toContain('text/plain');
    expect(await side.text()).toContain('djangocommand_executions_active');
    expect((await fetch(metricsUrl + '/readyz')).status).toBe(200);
    // Only metrics and probes there: not the API.
    expect((await fetch(metricsUrl + '/api/v1/projects', { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });

  it('counts a real execution through our runner: status, latencies, output bytes, connected runners', async () => {
    const before = await scrape();
    const example = exampleProject();
    runner = await startRunner(runnerEnv(server.url, key, example.env));
    const created = await api('/api/v1/projects/shop/executions?wait=60', { method: 'POST', body: JSON.stringify({ command: 'check', argv: [] }) });
    expect(created.status).toBeLessThan(300);
    const id = JSON.parse(created.text).id as string;
    await waitFor('check to succeed', async () => JSON.parse((await api(`/api/v1/executions/${id}`)).text).status === 'succeeded', 60_000, 100);

    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('djangocommand_executions_total', { status: 'succeeded', command: 'check' })).toBe(1);
    expect(delta('djangocommand_executions_total', { status: 'running', command: 'check' })).toBe(1);
    expect(delta('djangocommand_dispatch_latency_seconds_count')).toBe(1);
    expect(delta('djangocommand_first_output_latency_seconds_count')).toBe(1);
    expect(delta('djangocommand_output_bytes_total')).toBeGreaterThan(10);
    expect(sample(after, 'djangocommand_runners_connected', { project: 'shop', protocol: 'v2' })).toBe(1);
    expect(delta('djangocommand_http_request_duration_seconds_count', { route: '/api/v1/executions/:id', status_code: '200' })).toBeGreaterThan(0);

    await runner.stop();
    runner = undefined;
    await waitFor('the runner gauge to drop', async () => sample(await scrape(), 'djangocommand_runners_connected', { project: 'shop', protocol: 'v2' }) === 0);
  });

  it('logs JSON lines with the request id, echoes it, and never logs a token, key, password or query string', async () => {
    const given = await api('/api/v1/projects/nope', { headers: { 'x-request-id': 'trace-7f3a.1' } });
    expect(given.status).toBe(404);
    expect(given.headers.get('x-request-id')).toBe('trace-7f3a.1');
    expect(JSON.parse(given.text)).toMatchObject({ request_id: 'trace-7f3a.1', code: 'DC_UNKNOWN_PROJECT' });
    // Not an id we take (spaces, too long): one of ours instead.
    for (const bad of ['has spaces', 'x'.repeat(200), '../../etc']) {
      const res = await api('/api/v1/projects', { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }

    const querySecret = 'qs-secret-5e1b9c2d';
    await api(`/api/v1/projects?token=${querySecret}`);
    const login = await fetch(server.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@localhost', password: PASSWORD }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    expect((await fetch(server.url + '/api/v1/me', { headers: { cookie } })).status).toBe(200);
    const wrongPassword = 'wrong-password-81d6e4';
    expect((await fetch(server.url + '/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@localhost', password: wrongPassword }) })).status).toBe(401);
    // A runner key on the runner API (protocol v1) and on the user API.
    await fetch(server.url + '/api/runner/pending/', { headers: { authorization: `Bearer ${key}` } });
    await fetch(server.url + '/api/v1/projects', { headers: { authorization: `Bearer ${key}` } });
    await waitFor('the last request to be logged', () => jsonLines().some((l) => l.req?.path === '/api/v1/projects' && l.msg === 'incoming request' && jsonLines().length > 10));
    await new Promise((r) => setTimeout(r, 300));

    const logs = server.logs();
    for (const secret of [token, key, PASSWORD, wrongPassword, querySecret, cookie.split('=')[1], METRICS_TOKEN]) expect(logs).not.toContain(secret);
    const lines = jsonLines();
    const requestLines = lines.filter((l) => l.req || l.res);
    expect(requestLines.length).toBeGreaterThan(10);
    for (const l of requestLines) {
      expect(l.request_id).toEqual(expect.any(String));
      expect(l.level).toEqual(expect.any(String));
      expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    const traced = lines.filter((l) => l.request_id === 'trace-7f3a.1');
    expect(traced.map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
    expect(traced.find((l) => l.res)?.res).toEqual({ statusCode: 404 });
  });

  it('sets and shows a project retention through the CLI; bad values are refused', async () => {
    const cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    const set = await runCli(['retention', 'set', 'shop', '--days', '30', '--max-output-bytes', '1073741824', '--json'], cli);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ project: 'shop', days: 30, max_output_bytes: 1073741824, effective: { days: 30 }, defaults: { days: 0 } });
    const bad = await runCli(['retention', 'set', 'shop', '--days', '30d'], cli);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('DC_VALIDATION');
    const negative = await api('/api/v1/projects/shop/retention', { method: 'PUT', body: JSON.stringify({ days: -5 }) });
    expect(negative.status).toBe(400);
    const back = await runCli(['retention', 'set', 'shop', '--days', 'default'], cli);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain('server default');
    const shown = JSON.parse((await runCli(['retention', 'show', 'shop', '--json'], cli)).stdout);
    expect(shown).toMatchObject({ days: null, max_output_bytes: 1073741824 });
    const audit = JSON.parse((await api('/api/v1/audit?action=project.retention.set')).text);
    expect(audit.items.length).toBe(2);
  });

  it("purges in the background: an execution finished 40 days ago goes under a 30-day limit, a running one stays", async () => {
    expect((await runCli(['retention', 'set', 'shop', '--days', '30'], { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token })).code).toBe(0);
    const { db: kysely } = openDatabase({ dataDir: db.dataDir });
    try {
      const project = await kysely.selectFrom('projects').select('id').where('name', '=', 'shop').executeTakeFirstOrThrow();
      const old = Date.now() - 40 * 86_400_000;
      const row = (id: string, status: string, finished: number | null) => ({
        id, project_id: project.id, command: 'check', args: '', argv_json: '[]', status, timeout_seconds: 60, created_at: old, created_by_type: 'token', created_by_label: 'test', finished_at: finished,
      });
      const gone = '00000000-0000-4000-8000-000000000001';
      const kept = '00000000-0000-4000-8000-000000000002';
      await kysely.insertInto('executions').values([row(gone, 'succeeded', old), row(kept, 'running', null)] as never).execute();
      await waitFor('the background purge', async () => (await api(`/api/v1/executions/${gone}`)).status === 404, 20_000, 200);
      expect((await api(`/api/v1/executions/${kept}`)).status).toBe(200);
      // The purge's audit event commits with its deletion: it is there as soon as the execution is gone.
      const purge = JSON.parse((await api('/api/v1/audit?action=retention.purge')).text) as { items: Array<{ details: unknown; project_id: string }> };
      expect(purge.items).toHaveLength(1);
      expect(purge.items[0].project_id).toBe(project.id);
      expect(purge.items[0].details).toMatchObject({ rule: 'days', executions: 1 });
    } finally {
      await kysely.destroy();
    }
  });
});
