/**
 * Protocol v2 at scale: two server processes sharing PostgreSQL (work and cancels created
 * through one reach a runner connected to the other, by LISTEN/NOTIFY), and two runners serving
 * one project (each execution goes to exactly one of them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';

describe('v2 with two replicas on PostgreSQL and two runners', () => {
  let db: FreshDatabase;
  let a: ServerHandle;
  let b: ServerHandle;
  let runners: RunnerHandle[] = [];
  let token: string;

  const api = async (server: ServerHandle, path: string, body?: unknown) => {
    const res = await fetch(server.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return res.json();
  };

  beforeAll(async () => {
    db = await freshDatabase('postgres');
    [a, b] = await Promise.all([startServer(db), startServer(db)]);
    const creds = await setUpProject(a);
    token = creds.token;
    const example = exampleProject();
    // Both runners connect to replica B; requests go to replica A.
    runners = await Promise.all([1, 2].map(() => startRunner(runnerEnv(b.url, creds.key, example.env, { DJANGOCOMMAND_MAX_CONCURRENCY: '2' }))));
    await fetch(`${a.url}/api/v1/projects/shop/commands/slow`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ max_concurrency: 10 }),
    });
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('starts on a runner of replica B what was created through replica A, without waiting for a poll', async () => {
    const e = await api(a, '/api/v1/projects/shop/executions', { command: 'check' });
    const done = await waitFor('check to end', async () => {
      const x = await api(a, `/api/v1/executions/${e.id}`);
      return x.status === 'succeeded' ? x : undefined;
    });
    expect(await (await fetch(`${a.url}/api/v1/executions/${e.id}/output`, { headers: { authorization: `Bearer ${token}` } })).text()).toContain('System check identified no issues');
    // Dispatch rides on NOTIFY, not on the one-second safety sweep: well under a second here.
    expect(Date.parse(done.dispatched_at) - Date.parse(done.created_at)).toBeLessThan(900);
  });

  it('gives each execution to exactly one runner, spreading the work', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await api(a, '/api/v1/projects/shop/executions', { command: 'slow', argv: ['--steps', '4', '--delay', '0.1'] })).id);
    const finals = await waitFor('all to end', async () => {
      const all = await Promise.all(ids.map((id) => api(a, `/api/v1/executions/${id}`)));
      return all.every((x) => x.status === 'succeeded') ? all : undefined;
    }, 60_000);
    expect(new Set(finals.map((x: { runner_id: string }) => x.runner_id)).size).toBe(2);
    for (const id of ids) {
      const starts = (await api(a, `/api/v1/audit?execution=${id}&action=execution.start`)).items;
      expect(starts).toHaveLength(1);
    }
  });

  it('pushes a cancel made through replica A to the runner connected to replica B', async () => {
    const e = await api(a, '/api/v1/projects/shop/executions', { command: 'sleep_forever' });
    await waitFor('running', async () => (await api(a, `/api/v1/executions/${e.id}`)).status === 'running');
    await api(a, `/api/v1/executions/${e.id}/cancel`, {});
    const final = await waitFor('cancelled', async () => {
      const x = await api(a, `/api/v1/executions/${e.id}`);
      return x.status === 'cancelled' ? x : undefined;
    });
    // Python dies of the uncaught KeyboardInterrupt by SIGINT, as a cold `manage.py` would.
    expect(final.exit_code).toBe(-2);
  });
});
