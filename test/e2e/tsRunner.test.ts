/**
 * Our runner (protocol v2) as a real process next to the example Django project, against a real
 * server: push dispatch, warm and cold starts, nothing lost when the server dies or the network
 * drops, lost when the runner dies, and the management verbs.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { runCli, setUpProject, spawnCli, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerCli, runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { tcpProxy, type TcpProxy } from '../support/tcpProxy.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
/** Bytes in the files under `dir` (a file removed while counting counts 0). */
const folderBytes = (dir: string): number =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { withFileTypes: true }).reduce((n, f) => n + (f.isDirectory() ? folderBytes(path.join(dir, f.name)) : (fs.statSync(path.join(dir, f.name), { throwIfNoEntry: false })?.size ?? 0)), 0)
    : 0;

describe('the TypeScript runner', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let proxy: TcpProxy;
  let runner: RunnerHandle;
  let cli: Record<string, string>;
  let key: string;
  let token: string;

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    return { status: res.status, text: await res.text() };
  };
  const execution = async (id: string) => JSON.parse((await api(`/api/v1/executions/${id}`)).text);
  const storedOutput = async (id: string, stream?: string) => (await api(`/api/v1/executions/${id}/output${stream ? `?stream=${stream}` : ''}`)).text;
  const create = async (command: string, argv: string[] = [], timeout?: number) => {
    const res = await api('/api/v1/projects/shop/executions', { method: 'POST', body: JSON.stringify({ command, argv, ...(timeout ? { timeout } : {}) }) });
    expect(res.status).toBe(201);
    return JSON.parse(res.text) as { id: string };
  };
  const ended = (id: string, ms = 30_000) => waitFor(`execution ${id} to end`, async () => {
    const e = await execution(id);
    return ['succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'lost'].includes(e.status) ? e : undefined;
  }, ms, 100);
  /** `ended` with more time: `lost` is final, so a cut that lasts past offline + grace fails the test at once. */
  const finished = (id: string, ms = 60_000) => ended(id, ms);

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    // Offline + grace (20 s) outlasts the cuts below, even on a loaded CI machine: they must not make anything lost.
    server = await startServer(db, { DJANGOCOMMAND_RUNNER_OFFLINE_AFTER: '15', DJANGOCOMMAND_LOST_GRACE: '5', DJANGOCOMMAND_SWEEP_INTERVAL: '0.2' });
    ({ key, token } = await setUpProject(server));
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    example = exampleProject();
    proxy = await tcpProxy(server.port);
    runner = await startRunner(runnerEnv(`http://127.0.0.1:${proxy.port}`, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }));
  });
  afterAll(async () => {
    if (process.env.DEBUG_RUNNER) console.log(runner?.logs());
    await runner?.stop();
    await proxy?.close();
    await server?.stop();
    await db?.drop();
  });

  it('reports the commands with argparse schemas, and the ones its policy refuses with why', async () => {
    const { items } = JSON.parse((await api('/api/v1/projects/shop/commands')).text) as { items: Array<{ name: string; schema: any; refused: string | null }> };
    const rich = items.find((c) => c.name === 'rich_args')!;
    expect(rich.refused).toBeNull();
    const mode = rich.schema.arguments.find((a: { dest: string }) => a.dest === 'mode');
    expect(mode).toMatchObject({ choices: ['fast', 'safe'], default: 'safe', option_strings: ['--mode'] });
    expect(rich.schema.groups[0].dests).toEqual(expect.arrayContaining(['verbose_output', 'quiet_output']));
    const flush = items.find((c) => c.name === 'flush')!;
    expect(flush.refused).toMatch(/not in DJANGOCOMMAND_ALLOWED_COMMANDS.*add it/);
    const res = await runCli(['run', 'flush'], cli);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('DC_COMMAND_NOT_ALLOWED');
  });

  it('refuses arguments argparse would refuse, before anything runs, in argparse words', async () => {
    const before = JSON.parse((await api('/api/v1/executions?limit=500')).text).items.length;
    const res = await runCli(['run', 'rich_args', 'target', '--mode', 'reckless'], cli);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("rich_args: argument --mode: invalid choice: 'reckless' (choose from 'fast', 'safe') [DC_BAD_ARGS]");
    expect(JSON.parse((await api('/api/v1/executions?limit=500')).text).items.length).toBe(before);
  });

  it('runs warm, with output, exit code and side effects identical to a cold manage.py', async () => {
    for (const [cmd, ...args] of [['colors'], ['fail', '--code', '7', '--after-lines', '2'], ['rich_args', 'a b', '--tag', "it's"], ['ask'], ['spew', '--lines', '5000', '--stderr-every', '3']]) {
      const cold = example.manage([cmd, ...args]);
      const e = await create(cmd, args);
      const final = await ended(e.id);
      expect(final.exit_code, cmd).toBe(cold.code);
      expect(await storedOutput(e.id, 'stdout'), cmd).toBe(cold.stdout.toString('utf8'));
      expect(await storedOutput(e.id, 'stderr'), cmd).toBe(cold.stderr.toString('utf8'));
    }
    const before = Number(example.manage(['touch_note']).stdout.toString());
    const e = await create('touch_note');
    await ended(e.id);
    expect(Number(await storedOutput(e.id))).toBe(before + 1);
    expect(runner.logs()).toMatch(/started \(warm/);
  });

  it('reloads the warm process when project code changed, running that command cold', async () => {
    const file = path.join(example.dir, 'demo/management/commands/colors.py');
    const future = new Date(Date.now() + 5_000);
    fs.utimesSync(file, future, future);
    const e = await create('colors');
    expect((await ended(e.id)).status).toBe('succeeded');
    expect(runner.logs()).toMatch(new RegExp(`${e.id}: colors\\s+started \\(cold`));
    expect(runner.logs()).toMatch(/project code changed .*colors\.py/);
    await waitFor('a new warm process', async () => (runner.logs().match(/warm process ready/g) ?? []).length >= 2);
    const again = await create('colors');
    await ended(again.id);
    expect(runner.logs()).toMatch(new RegExp(`${again.id}: colors\\s+started \\(warm`));
  });

  it('falls back to a cold start when the warm process dies, and brings it back', async () => {
    const pids = [...runner.logs().matchAll(/warm process ready \(pid (\d+)/g)].map((m) => Number(m[1]));
    process.kill(pids[pids.length - 1], 'SIGKILL');
    await waitFor('the runner to notice', async () => /warm process exited/.test(runner.logs()));
    const e = await create('check');
    expect((await ended(e.id)).status).toBe('succeeded');
    expect(runner.logs()).toMatch(new RegExp(`${e.id}: check\\s+started \\(cold`));
    await waitFor('a new warm process', async () => (runner.logs().match(/warm process ready/g) ?? []).length > pids.length);
  });

  it('keeps stdout and stderr in the order the command wrote them, with line times', async () => {
    const e = await create('fail', ['--after-lines', '3', '--code', '1']);
    await ended(e.id);
    const chunks = JSON.parse((await api(`/api/v1/executions/${e.id}/output/chunks`)).text).items as Array<{ stream: string; data: string; line_times: number[][] }>;
    // The runner may flush stdout in more than one chunk (a loaded machine): the order of the streams is what counts.
    expect(chunks.map((c) => c.stream).filter((s, i, all) => i === 0 || all[i - 1] !== s)).toEqual(['stdout', 'stderr']);
    // One time mark per millisecond in which lines started; the first line always has one.
    expect(chunks[0].line_times[0][0]).toBe(0);
    expect(chunks[0].line_times[0][1]).toBeGreaterThan(Date.now() - 60_000);
    expect(chunks.find((c) => c.stream === 'stderr')!.line_times[0][0]).toBe(0);
  });

  it('loses and duplicates no byte when the server is killed mid-output and restarted', async () => {
    const args = ['--steps', '60', '--delay', '0.05'];
    const cold = example.manage(['slow', ...args]);
    const e = await create('slow', args);
    await waitFor('output', async () => (await execution(e.id)).output_bytes > 0);
    await server.restart('SIGKILL');
    const final = await finished(e.id);
    expect(final.status).toBe('succeeded');
    expect(await storedOutput(e.id, 'stdout')).toBe(cold.stdout.toString('utf8'));
  });

  it('loses and duplicates no byte when the network is cut for a while', async () => {
    const args = ['--steps', '50', '--delay', '0.06'];
    const cold = example.manage(['slow', ...args]);
    const e = await create('slow', args);
    await waitFor('output', async () => (await execution(e.id)).output_bytes > 0);
    proxy.cut();
    await new Promise((r) => setTimeout(r, 2500));
    proxy.restore();
    const final = await finished(e.id);
    expect(final.status).toBe('succeeded');
    expect(await storedOutput(e.id, 'stdout')).toBe(cold.stdout.toString('utf8'));
  });

  it('pauses a command whose output the server cannot take, keeping the spool within its cap, and loses nothing', async () => {
    const runnerUrl = `http://127.0.0.1:${proxy.port}`;
    await runner.stop();
    runner = await startRunner(runnerEnv(runnerUrl, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1', DJANGOCOMMAND_SPOOL_MAX_MB: '16' }), [], runner.stateDir);
    try {
      const args = ['--bytes', '60000000'];
      const cold = example.manage(['spew', ...args]);
      const e = await create('spew', args);
      await waitFor('output', async () => (await execution(e.id)).output_bytes > 0, 30_000, 20);
      proxy.cut();
      const status = async () => JSON.parse((await runnerCli(['status', '--json'], {}, runner.stateDir)).stdout);
      await waitFor('back-pressure', async () => (await status()).output_paused === true, 20_000, 100);
      // Paused, not ended: the spool stays near the cap while the server is out of reach.
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 400));
        const now = await status();
        expect(now.unacknowledged_bytes).toBeLessThanOrEqual(18 * 1048576);
        // Unacknowledged frames, plus what was acknowledged in the segment being written.
        expect(folderBytes(path.join(runner.stateDir, 'spool'))).toBeLessThanOrEqual(27 * 1048576);
      }
      expect(runner.logs()).toMatch(/output paused: \d+ MiB not acknowledged .*DJANGOCOMMAND_SPOOL_MAX_MB is 16/);
      // The command waits on its write.
      expect((await status()).executions.map((x: { id: string }) => x.id)).toContain(e.id);
      proxy.restore();
      const final = await finished(e.id, 90_000);
      expect(final.status).toBe('succeeded');
      expect(final.output_bytes).toBe(60_000_000);
      expect(sha(await storedOutput(e.id, 'stdout'))).toBe(sha(cold.stdout.toString('utf8')));
      expect(runner.logs()).toMatch(/output resumed/);
    } finally {
      proxy.restore();
      await runner.stop();
      runner = await startRunner(runnerEnv(runnerUrl, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }), [], runner.stateDir);
    }
  });

  it('slows a command down while the disk refuses its spool, and loses nothing', async () => {
    // A file size limit makes every spool segment fail a few MiB in, as a full disk would.
    const runnerUrl = `http://127.0.0.1:${proxy.port}`;
    await runner.stop();
    runner = await startRunner(runnerEnv(runnerUrl, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }), [], runner.stateDir, ['prlimit', `--fsize=${3 * 1048576}`, '--']);
    try {
      const args = ['--bytes', '20000000'];
      const cold = example.manage(['spew', ...args]);
      const e = await create('spew', args);
      const final = await ended(e.id, 60_000);
      expect(final.status).toBe('succeeded');
      expect(final.output_bytes).toBe(20_000_000);
      expect(sha(await storedOutput(e.id, 'stdout'))).toBe(sha(cold.stdout.toString('utf8')));
      expect(runner.logs()).toMatch(/cannot write the output spool .*EFBIG/);
      expect(runner.logs()).toMatch(/the output spool is written again/);
    } finally {
      await runner.stop();
      runner = await startRunner(runnerEnv(runnerUrl, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }), [], runner.stateDir);
    }
  });

  it('pushes a cancel: SIGINT first, so the command may clean up', async () => {
    const e = await create('slow', ['--steps', '100', '--delay', '0.1']);
    await waitFor('running', async () => (await execution(e.id)).status === 'running');
    expect((await runCli(['cancel', e.id], cli)).code).toBe(0);
    const final = await ended(e.id);
    expect(final.status).toBe('cancelled');
    expect(final.exit_code).toBe(130);
    expect(await storedOutput(e.id, 'stderr')).toContain('interrupted at step');
  });

  it('force-kills a command that ignores the polite signals', async () => {
    const e = await create('sleep_forever');
    await waitFor('running', async () => (await execution(e.id)).status === 'running');
    await api(`/api/v1/executions/${e.id}/cancel`, { method: 'POST', body: JSON.stringify({ force: true }) });
    const final = await ended(e.id);
    expect(final).toMatchObject({ status: 'cancelled', exit_code: -9 });
  });

  it('times out a command with SIGINT, SIGTERM, then SIGKILL: timed_out', async () => {
    const res = await runCli(['run', '--timeout', '1', 'sleep_forever'], cli);
    expect(res.code).toBe(124);
  });

  it('closes stdin: a command that asks for input fails instead of hanging', async () => {
    const res = await runCli(['run', 'ask'], cli);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('no input available');
  });

  it('shows status, stops gracefully letting a command finish, and refuses a second runner', async () => {
    const status = JSON.parse((await runnerCli(['status', '--json'], {}, runner.stateDir)).stdout);
    expect(status).toMatchObject({ running: true, pid: runner.process.pid, connection: 'connected', server: `http://127.0.0.1:${proxy.port}` });
    const second = await runnerCli(['start'], runnerEnv(server.url, key, example.env), runner.stateDir);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/already running for this project \(pid \d+\)/);
    const e = await create('slow', ['--steps', '10', '--delay', '0.1']);
    await waitFor('running', async () => (await execution(e.id)).status === 'running');
    const stop = await runnerCli(['stop'], {}, runner.stateDir);
    expect(stop.code).toBe(0);
    expect((await ended(e.id)).status).toBe('succeeded');
    const after = JSON.parse((await runnerCli(['status', '--json'], {}, runner.stateDir)).stdout);
    expect(after).toMatchObject({ running: false, pid: null });
    runner = await startRunner(runnerEnv(`http://127.0.0.1:${proxy.port}`, key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }), [], runner.stateDir);
  });

  it('makes the execution lost when the runner is killed mid-command, and does not re-run it', async () => {
    const { result } = spawnCli(['run', 'sleep_forever'], cli);
    await waitFor('running', async () => /sleep_forever .*started/.test(runner.logs()));
    await runner.stop('SIGKILL');
    const res = await result;
    expect(res.code).toBe(75);
    runner = await startRunner(runnerEnv(`http://127.0.0.1:${proxy.port}`, key, example.env), [], runner.stateDir);
    await new Promise((r) => setTimeout(r, 1000));
    expect(runner.logs()).not.toMatch(/sleep_forever .*started/);
  });
});

describe('runner start-up checks', () => {
  const dir = tempDir('dc-runner-bad-');
  const env = (extra: Record<string, string>) => ({ EXAMPLE_DB_PATH: `${dir}/db.sqlite3`, DJANGOCOMMAND_API_KEY: 'dc_x', DJANGOCOMMAND_SERVER_URL: 'http://127.0.0.1:9', ...extra });
  it.each([
    [{ DJANGOCOMMAND_API_KEY: '' }, [], /DJANGOCOMMAND_API_KEY is not set/],
    [{ DJANGOCOMMAND_API_KEY: 'abc123' }, [], /DJANGOCOMMAND_API_KEY must start with "dc_"/],
    [{ EXAMPLE_MISTAKE: 'plain_http', DJANGOCOMMAND_SERVER_URL: '' }, ['--settings', 'exampleproject.settings_misconfigured'], /plain http to "djangocommand\.example\.com".*DJANGOCOMMAND_ALLOW_HTTP_HOSTS/],
    [{ EXAMPLE_MISTAKE: 'short_heartbeat' }, ['--settings', 'exampleproject.settings_misconfigured'], /DJANGOCOMMAND_HEARTBEAT_INTERVAL is 2; the minimum is 5/],
    [{ EXAMPLE_MISTAKE: 'string_not_tuple' }, ['--settings', 'exampleproject.settings_misconfigured'], /DJANGOCOMMAND_ALLOWED_COMMANDS is a string \("migrate"\); it must be a tuple/],
  ])('refuses %j with one clear line', async (extra, args, message) => {
    const res = await runnerCli(['start', '-d', ...args], env(extra as Record<string, string>), dir);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(message);
  });
});
