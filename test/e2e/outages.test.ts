/**
 * What a bad network and a crashing server must not do, with real processes:
 *  - output from the Python runner's way of sending (everything buffered for 1.5 s, one chunk
 *    per flush however large, a segment per line), at the server's default settings: a 1 GB
 *    command arrives whole (SHA-256), with the server's memory flat; a hole in chunk numbers is
 *    shown as incomplete output, with a non-zero CLI exit;
 *  - the server down for longer than offline + grace while a command runs: the execution ends
 *    with its true status and `run` exits with the command's code;
 *  - a runner cut off for as long: `lost`, final, never re-run, and the command stopped on the host.
 * HARDENING_OUTPUT_MB sets the size of the big output (default 384, so the suite stays short; 1024 for a longer run).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../support/databases.js';
import { EXAMPLE_DIR, PYTHON, runCli, setUpProject, spawnCli, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { tcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { V1Runner } from '../support/v1Runner.js';
import { V1Client } from '../support/v1Client.js';

const OUTPUT_MB = Number(process.env.HARDENING_OUTPUT_MB ?? 384);

/** SHA-256 of what a cold `manage.py` prints on stdout, streamed (never held in memory). */
function coldStdoutSha(example: ExampleProject, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['manage.py', ...args], { cwd: EXAMPLE_DIR, env: { ...process.env, ...example.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const hash = createHash('sha256');
    child.stdout.on('data', (d: Buffer) => hash.update(d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(hash.digest('hex')) : reject(new Error(`manage.py exited ${code}`))));
  });
}

/** Peak resident memory of a process so far, in MB (Linux VmHWM). */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe('output from the Python runner, at default settings', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let runner: V1Runner;
  let cli: Record<string, string>;
  let key: string;
  let token: string;

  const api = async (path: string) => (await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<any>;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    // Default body limits and timeouts: what a user who changed nothing has.
    server = await startServer(db);
    ({ key, token } = await setUpProject(server));
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    example = exampleProject();
    // The Python runner's own timing: one chunk per 1.5 s flush, however large.
    runner = new V1Runner({ serverUrl: server.url, apiKey: key, projectDir: example.dir, env: example.env, heartbeatIntervalMs: 1000, pollIntervalMs: 200, maxBufferedBytes: Infinity, universalNewlines: false, log: (level, message) => level !== 'debug' && process.env.DEBUG_RUNNER && console.log(level, message) });
    await runner.start();
  });
  afterAll(async () => {
    await runner?.stop().catch(() => undefined);
    await server?.stop();
    await db?.drop();
  });

  it(`keeps a ${OUTPUT_MB} MB command printing as fast as it can whole, whatever the chunk sizes, with the server's memory flat`, async () => {
    const args = ['spew', '--bytes', String(OUTPUT_MB * 1024 * 1024)];
    const want = coldStdoutSha(example, args);
    const before = peakRssMb(server.process.pid!);
    const res = await runCli(['run', '--detach', ...args], cli);
    expect(res.code, res.stderr).toBe(0);
    const id = res.stdout.trim();
    const final = await waitFor('the big output to end', async () => {
      const e = await api(`/api/v1/executions/${id}`);
      return ['succeeded', 'failed', 'lost'].includes(e.status) ? e : undefined;
    }, 600_000, 500);
    expect(final).toMatchObject({ status: 'succeeded', output_bytes: OUTPUT_MB * 1024 * 1024, output_missing_chunks: 0, output_incomplete: false });
    const ingestPeak = peakRssMb(server.process.pid!);
    // The runner's chunks: as large as its 1.5 s of output, past the old 32 MiB refusal.
    const largestChunkMb = runner.stats.largestChunkBytes / 1048576;
    let largest = 0;
    let after = 0;
    for (;;) {
      const page = await api(`/api/v1/executions/${id}/output/chunks?after=${after}&limit=8`);
      for (const c of page.items as Array<{ seq: number; data: string }>) largest = Math.max(largest, Buffer.byteLength(c.data));
      if (!page.next_cursor) break;
      after = Number(page.next_cursor);
    }
    console.log(JSON.stringify({ output_mb: OUTPUT_MB, runner_chunks: runner.stats.chunksSent, largest_runner_chunk_mb: Math.round(largestChunkMb), stored_parts: final.output_last_seq, largest_part_mb: +(largest / 1048576).toFixed(1), server_rss_before_mb: Math.round(before), server_peak_rss_ingest_mb: Math.round(ingestPeak) }));
    const download = await fetch(`${server.url}/api/v1/executions/${id}/output`, { headers: { authorization: `Bearer ${token}` } });
    const hash = createHash('sha256');
    for await (const piece of download.body as unknown as AsyncIterable<Uint8Array>) hash.update(piece);
    expect(hash.digest('hex')).toBe(await want);
    // Flat: the server holds a part or two of a chunk, never the body, whatever the total.
    expect(largestChunkMb).toBeGreaterThan(32);
    expect(largest).toBeLessThanOrEqual(16 * 1048576);
    expect(ingestPeak - before).toBeLessThan(300);
  }, 900_000);

  it('shows a hole in the chunk numbers as incomplete output: API, audit and a non-zero CLI exit with the reason', async () => {
    // A runner whose chunk 2 never arrived (the Python runner drops a chunk it cannot send).
    await runner.stop();
    const v1 = new V1Client({ serverUrl: server.url, apiKey: key });
    const e = JSON.parse((await runCli(['run', '--detach', '--json', 'check'], cli)).stdout);
    await v1.start(e.id);
    await v1.output(e.id, { chunk_number: 1, is_stderr: false, segments: [{ timestamp: Date.now() / 1000, content: 'first\n' }] });
    await v1.output(e.id, { chunk_number: 3, is_stderr: false, segments: [{ timestamp: Date.now() / 1000, content: 'third\n' }] });
    await v1.complete(e.id, { exit_code: 0, status: 'success' });
    const follow = await runCli(['logs', '--follow', e.id], cli);
    expect(follow.code).toBe(74);
    expect(follow.stdout).toBe('first\nthird\n');
    expect(follow.stderr).toMatch(/output of check is incomplete: 1 chunk\(s\) never reached the server/);
    expect(await api(`/api/v1/executions/${e.id}`)).toMatchObject({ status: 'succeeded', output_incomplete: true, output_missing_chunks: 1 });
    runner = new V1Runner({ serverUrl: server.url, apiKey: key, projectDir: example.dir, env: example.env, heartbeatIntervalMs: 1000, pollIntervalMs: 200, maxBufferedBytes: Infinity, universalNewlines: false, log: (level, message) => level !== 'debug' && process.env.DEBUG_RUNNER && console.log(level, message) });
    await runner.start();
  });
});

describe('outages, with our runner', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let example: ExampleProject;
  let proxy: TcpProxy;
  let runner: RunnerHandle;
  let cli: Record<string, string>;
  let token: string;
  // After a server start, runners get offline + grace to come back before anything is declared
  // lost. That must be longer than the runner's longest reconnect wait (0.25 s doubling, capped at
  // 30 s): an attempt that fails just before the restart is followed by one up to 30 s later.
  const OFFLINE_S = 20;
  const GRACE_S = 20;

  const api = async (path: string) => (await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<any>;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    server = await startServer(db, { DJANGOCOMMAND_RUNNER_OFFLINE_AFTER: String(OFFLINE_S), DJANGOCOMMAND_LOST_GRACE: String(GRACE_S), DJANGOCOMMAND_SWEEP_INTERVAL: '0.2' });
    const creds = await setUpProject(server);
    token = creds.token;
    cli = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    example = exampleProject();
    proxy = await tcpProxy(server.port);
    runner = await startRunner(runnerEnv(`http://127.0.0.1:${proxy.port}`, creds.key, example.env, { DJANGOCOMMAND_KILL_GRACE: '1' }));
  });
  afterAll(async () => {
    await runner?.stop();
    await proxy?.close();
    await server?.stop();
    await db?.drop();
  });

  it('the server down for longer than offline + grace: the command ends with its true status and run exits with its code', async () => {
    const slow = ['slow', '--steps', '30', '--delay', '0.3'];
    const cold = example.manage(slow);
    const { child, result } = spawnCli(['run', ...slow], cli);
    let printed = '';
    child.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
    await waitFor('output', () => printed.length > 0, 30_000);
    await server.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, (OFFLINE_S + GRACE_S) * 1000 + 1000));
    await server.restart();
    const res = await result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(cold.stdout.toString('utf8'));
    const id = /queued on shop as (\S+)/.exec(res.stderr)![1];
    expect(await api(`/api/v1/executions/${id}`)).toMatchObject({ status: 'succeeded', late_status: null });
  }, 120_000);

  it('a runner cut off for longer than offline + grace: lost, final, never re-run, and the command is stopped on the host', async () => {
    const { result } = spawnCli(['run', 'sleep_forever'], cli);
    const id = await waitFor('the start', async () => {
      const started = (await api('/api/v1/audit?action=execution.start&limit=5')).items.find((a: any) => a.details.command === 'sleep_forever');
      return started?.execution_id as string | undefined;
    });
    const pid = (await api(`/api/v1/audit?execution=${id}&action=execution.start`)).items[0].details.pid as number;
    expect(() => process.kill(pid, 0)).not.toThrow();
    proxy.cut();
    const res = await result;
    expect(res.code).toBe(75);
    expect(res.stderr).toMatch(/lost/);
    proxy.restore();
    // Back online, the runner says it still runs it; the server says stop, and it is stopped.
    await waitFor('the command to be stopped on the host', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 30_000, 100);
    await waitFor('the runner to report how it ended', async () => (await api(`/api/v1/executions/${id}`)).late_status !== null, 15_000);
    const e = await api(`/api/v1/executions/${id}`);
    expect(e.status).toBe('lost');
    expect(['cancelled', 'failed']).toContain(e.late_status);
    // Never re-run: no second start.
    expect((await api(`/api/v1/audit?execution=${id}&action=execution.start`)).items).toHaveLength(1);
  }, 120_000);
});
