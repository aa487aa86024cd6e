/**
 * PostgreSQL with two server processes sharing it: a command created through one replica is
 * run by a runner connected to the other, and its output streams back through the first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { V1Runner } from '../support/v1Runner.js';
import { exampleProject } from '../support/example.js';

describe('two server replicas on one PostgreSQL database', () => {
  let db: FreshDatabase;
  let a: ServerHandle;
  let b: ServerHandle;
  let runner: V1Runner;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase('postgres');
    [a, b] = await Promise.all([startServer(db), startServer(db)]);
    const creds = await setUpProject(a);
    env = { DJANGOCOMMAND_URL: a.url, DJANGOCOMMAND_TOKEN: creds.token };
    const example = exampleProject();
    runner = new V1Runner({ serverUrl: b.url, apiKey: creds.key, projectDir: example.dir, env: example.env, heartbeatIntervalMs: 500, pollIntervalMs: 200, flushIntervalMs: 200, cancelPollIntervalMs: 200 });
    await runner.start();
  });
  afterAll(async () => {
    await runner?.stop().catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('runs through replica B what was asked of replica A, output and exit code intact', async () => {
    const res = await runCli(['run', 'fail', '--after-lines', '3', '--code', '4'], env);
    expect(res.code).toBe(4);
    expect(res.stdout).toBe('line 1\nline 2\nline 3\n');
    expect(res.stderr).toContain('demo failure');
  });

  it('makes only one of two simultaneous migrate requests through different replicas win', async () => {
    const [x, y] = await Promise.all([
      runCli(['run', '--detach', 'slow', '--steps', '3', '--delay', '0.2'], env),
      runCli(['run', '--detach', 'slow', '--steps', '3', '--delay', '0.2'], { ...env, DJANGOCOMMAND_URL: b.url }),
    ]);
    expect([x.code, y.code].sort()).toEqual([0, 1]);
    expect((x.code === 0 ? y : x).stderr).toContain('DC_CONCURRENCY_LIMIT');
  });

  it('counts failed sign-ins across replicas', async () => {
    const signIn = async (server: ServerHandle) =>
      (await fetch(`${server.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'guesser@example.com', password: 'not the password' }) })).status;
    for (const server of [a, b, a, b, a]) expect(await signIn(server)).toBe(401);
    expect(await signIn(b)).toBe(429);
    expect(await signIn(a)).toBe(429);
  });

  it('shows the same audit log from either replica', async () => {
    // Once the detached `slow` above has ended, nothing adds events between the two reads.
    await waitFor('every execution to end', async () => {
      const { items } = JSON.parse((await runCli(['executions', '--json'], env)).stdout) as { items: Array<{ status: string }> };
      return items.every((e) => !['queued', 'dispatched', 'running'].includes(e.status));
    }, 30_000, 200);
    const ids = async (url: string) => JSON.parse((await runCli(['audit', '--json'], { ...env, DJANGOCOMMAND_URL: url })).stdout).items.map((e: { id: number }) => e.id) as number[];
    // An event written between the two reads (an execution's end is audited just after its status) is no difference.
    const [fromA, fromB] = await waitFor('both replicas to list the same events', async () => {
      const [x, y] = [await ids(a.url), await ids(b.url)];
      return JSON.stringify(x) === JSON.stringify(y) ? [x, y] : undefined;
    }, 10_000, 200);
    expect(fromA).toEqual(fromB);
    expect(fromA.length).toBeGreaterThan(5);
  });
});
