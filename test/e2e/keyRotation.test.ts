/**
 * Rotating a runner key without downtime, with a real server and real runners: the new key and
 * the old one work side by side, a careful revoke refuses while a runner still uses the old key,
 * and commands run at every step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, startServer, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';

describe('runner key rotation (sqlite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let oldRunner: RunnerHandle | undefined;
  let newRunner: RunnerHandle | undefined;
  let oldKey: string;
  let cli: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    const made = await setUpProject(server);
    oldKey = made.key;
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: made.token };
    example = exampleProject();
    oldRunner = await startRunner(runnerEnv(server.url, oldKey, example.env), ['--no-warm']);
  });

  afterAll(async () => {
    await oldRunner?.stop();
    await newRunner?.stop();
    await server?.stop();
    await db?.drop();
  });

  const check = async () => {
    const r = await runCli(['run', '--project', 'shop', 'check'], cli);
    expect(r.stdout + r.stderr).toContain('System check identified no issues');
    expect(r.code).toBe(0);
  };

  it('moves the runners to a new key, then revokes the old one only once unused', async () => {
    const rotated = await server.admin(['rotate-key', 'shop', '--json']);
    expect(rotated.stderr).toBe('');
    const r = JSON.parse(rotated.stdout);
    expect(r.key).toMatch(/^dc_/);
    expect(r.key).not.toBe(oldKey);
    const oldPrefix = oldKey.slice(0, 11);
    expect(r.previous).toEqual([expect.objectContaining({ key_prefix: oldPrefix, runners: [expect.objectContaining({ online: true, protocol: 'v2' })] })]);

    // The old key still works: its runner is connected and runs commands.
    const refused = await server.admin(['revoke-key', oldPrefix, '--if-unused']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('DC_KEY_IN_USE');
    expect(refused.stderr).toContain('1 online runner(s)');
    await check();

    // Overlap: a runner on the new key joins; then the old one stops.
    newRunner = await startRunner(runnerEnv(server.url, r.key, example.env), ['--no-warm']);
    await check();
    await oldRunner!.stop();
    oldRunner = undefined;
    const revoked = await server.admin(['revoke-key', oldPrefix, '--if-unused', '--json']);
    expect(revoked.stderr).toBe('');
    expect(JSON.parse(revoked.stdout)).toMatchObject({ prefix: oldPrefix, revoked_at: expect.any(String) });
    await check();

    // The text form lists the keys left and the next steps.
    const again = await server.admin(['rotate-key', 'shop']);
    expect(again.stdout).toContain(`${r.key_prefix}…`);
    expect(again.stdout).toContain('used by 1 online runner(s)');
    expect(again.stdout).toContain(`djangocommand admin revoke-key ${r.key_prefix} --if-unused`);
  });
});
