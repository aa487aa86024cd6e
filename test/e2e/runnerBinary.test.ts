/**
 * The runner as one executable (`npm run build:runner-binary`): built here, then run as the
 * runner of the example Django project against a real server, with no Node.js on its PATH and
 * a fresh temporary folder, through its verbs: start -d, status, stop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { EXAMPLE_DIR, PYTHON, REPO, runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runProgram } from '../support/program.js';

const BINARY = path.join(REPO, 'dist/runner-binary/djangocommand');
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

describe('the runner binary (Node single executable), SQLite server', () => {
  const work = tempDir('dc-binary-');
  const stateDir = path.join(work, 'state');
  const tmp = path.join(work, 'tmp');
  /** A PATH with the project's Python and nothing else: no node, no npm. */
  const pathDir = path.join(work, 'path');
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let key: string;
  let token: string;

  const runnerEnv = () => ({ PATH: pathDir, TMPDIR: tmp, HOME: work, LANG: 'C.UTF-8', ...example.env, DJANGOCOMMAND_API_KEY: key, DJANGOCOMMAND_SERVER_URL: server.url });
  const binary = (args: string[]) => runProgram(BINARY, [...args, '--python', PYTHON, '--project-dir', EXAMPLE_DIR, '--state-dir', stateDir], { cwd: work, env: runnerEnv() });

  beforeAll(async () => {
    const started = Date.now();
    const build = await runProgram(process.execPath, [path.join(REPO, 'scripts/build-runner-binary.mjs')], { cwd: REPO, timeoutMs: 120_000 });
    expect(build.code, build.stdout + build.stderr).toBe(0);
    console.log(`runnerBinary: built in ${((Date.now() - started) / 1000).toFixed(1)} s, ${(fs.statSync(BINARY).size / 1048576).toFixed(0)} MiB`);
    fs.mkdirSync(pathDir);
    fs.mkdirSync(tmp);
    fs.symlinkSync(PYTHON, path.join(pathDir, 'python3'));
    db = await freshDatabase('sqlite');
    server = await startServer(db);
    ({ key, token } = await setUpProject(server));
    example = exampleProject();
  }, 180_000);

  afterAll(async () => {
    await binary(['stop', '--force']);
    await server?.stop();
    await db?.drop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('answers --version at once', async () => {
    const started = Date.now();
    const res = await runProgram(BINARY, ['--version'], { cwd: work, env: { PATH: pathDir, TMPDIR: tmp } });
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(pkg.version);
    expect(res.stderr).toBe('');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('starts detached, runs check from the server with its output, reports status, and stops', async () => {
    const start = await binary(['start', '-d']);
    expect(start.code, start.stdout + start.stderr).toBe(0);
    expect(start.stdout).toMatch(/runner started \(pid \d+\)/);
    expect(start.stderr).toBe('');

    const status = await waitFor('the binary runner to be connected', async () => {
      const s = await binary(['status', '--json']);
      const view = JSON.parse(s.stdout) as { running: boolean; connection: string; server: string };
      return view.connection === 'connected' ? view : undefined;
    }, 30_000, 200);
    expect(status).toMatchObject({ running: true, server: server.url });

    const run = await runCli(['run', 'check'], { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('System check identified no issues');
    const res = await fetch(`${server.url}/api/v1/executions?project=shop`, { headers: { authorization: `Bearer ${token}` } });
    const { items } = (await res.json()) as { items: Array<{ command: string; status: string; exit_code: number }> };
    expect(items[0]).toMatchObject({ command: 'check', status: 'succeeded', exit_code: 0 });

    // bootstrap.py came out of the binary into this user's own folder, and the warm process runs it.
    const uid = process.getuid!();
    const root = path.join(tmp, `djangocommand-${uid}-bootstrap`);
    expect(fs.statSync(root).mode & 0o777).toBe(0o700);
    const [hashDir] = fs.readdirSync(root);
    expect(fs.readFileSync(path.join(root, hashDir, 'bootstrap.py'), 'utf8')).toBe(fs.readFileSync(path.join(REPO, 'src/runner/python/bootstrap.py'), 'utf8'));
    await waitFor('the warm process', () => /warm process ready/.test(fs.readFileSync(path.join(stateDir, 'runner.log'), 'utf8')), 30_000, 200);

    const stop = await binary(['stop']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/runner \d+ stopped/);
    const after = await binary(['status']);
    expect(after.code).toBe(3);
    expect(after.stdout).toMatch(/not running/);
  }, 120_000);
});
