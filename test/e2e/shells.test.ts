/**
 * Audited shells, end to end on SQLite: a real server, our runner next to the example Django
 * project (its `demo.Note` model), the CLI driven through a real pseudo-terminal (tmux), a raw
 * attach WebSocket for the 10 MB paste and the reattach, and a real webhook receiver.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import pg from 'pg';
import { freshDatabase, tempDir, type FreshDatabase } from '../support/databases.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { CLI, EXAMPLE_DIR, PYTHON, runCli, setUpProject, startServer, waitFor, type ServerHandle } from '../support/serverProcess.js';
import { runnerEnv, startRunner, type RunnerHandle } from '../support/runnerProcess.js';
import { httpReceiver, type HttpReceiver } from '../support/receivers.js';
import { tcpProxy } from '../support/tcpProxy.js';

const TMUX = `dc-shells-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', TMUX, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('audited shells (sqlite)', () => {
  let db: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let example: ExampleProject;
  let hook: HttpReceiver;
  let token: string;
  let env: Record<string, string>;

  const api = async <T = Record<string, unknown>>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(server.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const cli = (args: string[]) => runCli(args, env);
  const notes = () => Number(example.manage(['shell', '-c', 'from demo.models import Note; print(Note.objects.count())']).stdout.toString().trim());
  const audit = async (action: string) => (await api<{ items: Array<{ action: string; outcome: string; details: Record<string, unknown> }> }>('GET', `/api/v1/audit?action=${action}&limit=50`)).body.items;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
    example = exampleProject();
    hook = await httpReceiver();
    server = await startServer(db, { DJANGOCOMMAND_PUBLIC_URL: 'https://dc.example.com', DJANGOCOMMAND_NOTIFY_RETRY_BASE: '1' });
    const project = await setUpProject(server);
    token = project.token;
    env = { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token };
    const ch = await cli(['channel', 'create', '--project', 'shop', '--kind', 'webhook', '--url', hook.url + '/hook', '--on', 'shell', '--json']);
    expect(ch.code, ch.stderr).toBe(0);
    const on = await cli(['shells', '--project', 'shop', '--enable']);
    expect(on.stdout).toMatch(/Shells on shop: on; idle shells close after 900 s/);
    runner = await startRunner(runnerEnv(server.url, project.key, example.env), ['--no-warm']);
  }, 90_000);

  afterAll(async () => {
    if (process.env.SHELLS_DEBUG) console.log(server?.logs(), runner?.logs());
    try {
      tmux('kill-server');
    } catch {
      // no tmux server was started
    }
    await runner?.stop();
    await server?.stop();
    await hook?.close();
    await db?.drop();
  });

  it('refuses with one audited line and starts nothing: shells off, empty reason, no runner, forbidden on the Django side', async () => {
    expect((await server.admin(['create-project', 'empty', '--json'])).code).toBe(0);
    const off = await cli(['shell', '--project', 'empty']);
    expect(off.code).not.toBe(0);
    expect(off.stderr.trim().split('\n')).toHaveLength(1);
    expect(off.stderr).toMatch(/Shells are off for project "empty".*\[DC_SHELLS_OFF\]/);

    const noReason = await api('POST', '/api/v1/projects/shop/shells', { write: true, reason: '   ' });
    expect(noReason).toMatchObject({ status: 400, body: { code: 'DC_SHELL_REASON' } });
    const cliNoReason = await cli(['shell', '--project', 'shop', '--write', '--reason', ' ']);
    expect(cliNoReason.stderr).toMatch(/\[DC_SHELL_REASON\]/);

    await cli(['shells', '--project', 'empty', '--enable']);
    const noRunner = await cli(['shell', '--project', 'empty']);
    expect(noRunner.stderr).toMatch(/No runner of project "empty" is connected.*\[DC_NO_RUNNER\]/);

    // A project whose Django settings say DJANGOCOMMAND_ALLOW_SHELL = False: its runner refuses.
    const locked = JSON.parse((await server.admin(['create-project', 'locked', '--json'])).stdout) as { key: string };
    await cli(['shells', '--project', 'locked', '--enable']);
    const lockedRunner = await startRunner(runnerEnv(server.url, locked.key, { ...example.env, EXAMPLE_ALLOW_SHELL: '0' }), ['--no-warm']);
    try {
      const forbidden = await cli(['shell', '--project', 'locked']);
      expect(forbidden.stderr).toMatch(/DJANGOCOMMAND_ALLOW_SHELL = False.*\[DC_SHELL_REFUSED\]/);
    } finally {
      await lockedRunner.stop();
    }

    const refused = (await audit('shell.open')).filter((e) => e.outcome === 'denied').map((e) => e.details.code);
    expect(refused).toEqual(expect.arrayContaining(['DC_SHELLS_OFF', 'DC_SHELL_REASON', 'DC_NO_RUNNER', 'DC_SHELL_REFUSED']));
    // Nothing started: no session where the server refused; the runner's refusal is kept as `refused`.
    expect((await api<{ items: unknown[] }>('GET', '/api/v1/projects/empty/shells')).body.items).toHaveLength(0);
    expect((await api<{ items: Array<{ status: string }> }>('GET', '/api/v1/projects/locked/shells')).body.items.map((s) => s.status)).toEqual(['refused']);
  }, 90_000);

  it('a CLI shell in a real terminal: read-only, writable("reason") audited and announced, reattached after a drop, recorded without the password', async () => {
    const before = notes();
    const script = path.join(tempDir('dc-shell-tty-'), 'run.sh');
    // Through a TCP proxy the test cuts, to drop the CLI's connection midway.
    const proxy = await tcpProxy(server.port);
    fs.writeFileSync(script, `#!/bin/sh\nexport DJANGOCOMMAND_URL='http://127.0.0.1:${proxy.port}' DJANGOCOMMAND_TOKEN='${token}'\n'${process.execPath}' '${CLI}' shell --project shop\necho "EXIT=$?"\necho "TTY=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' ')"\nsleep 120\n`, { mode: 0o755 });
    tmux('new-session', '-d', '-s', 'cli', '-x', '150', '-y', '50', script);
    const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-3000', '-t', 'cli');
    const type = (text: string) => {
      tmux('send-keys', '-t', 'cli', '-l', text);
      tmux('send-keys', '-t', 'cli', 'Enter');
    };
    const seen = (what: RegExp, ms = 20_000) =>
      waitFor(`${what} on the terminal`, () => what.test(screen()), ms).catch((err: Error) => {
        throw new Error(`${err.message}; the terminal shows:\n${screen()}`);
      });

    await seen(/READ-ONLY[\s\S]*>>> $/m);
    // The terminal's size, then a resize, reach the shell.
    type("import shutil; print('size', tuple(shutil.get_terminal_size()))");
    await seen(/size \(150, 50\)/);
    tmux('resize-window', '-t', 'cli', '-x', '100', '-y', '30');
    await new Promise((r) => setTimeout(r, 500));
    type("print('resized', tuple(shutil.get_terminal_size()))");
    await seen(/resized \(100, 30\)/);
    type('from demo.models import Note');
    type("Note.objects.create(text='read-only try')");
    await seen(/ReadOnlyError: read-only mode: this shell may not write[\s\S]*writable\("reason"\)/);
    expect(notes()).toBe(before);

    type("writable('fix the stuck note 42')");
    await seen(/Type yes to confirm: $/m);
    type('yes');
    await seen(/this shell is now WRITABLE \(fix the stuck note 42\)/);
    type("Note.objects.create(text='written'); print('created-' + 'ok')");
    await seen(/created-ok/);
    expect(notes()).toBe(before + 1);

    // A password typed with echo off (getpass) is not recorded.
    type("import getpass; pw = getpass.getpass('Password: ')");
    await seen(/Password: $/m);
    type('hunter2-very-secret');
    // getpass flushes what was typed ahead when it restores the terminal: wait for the prompt.
    await seen(/Password: \n>>> $/m);
    type("print('len', len(pw))");
    await seen(/len 19/);
    // A short drop: the CLI reattaches to the same shell by itself.
    type('kept = 41');
    await new Promise((r) => setTimeout(r, 300));
    proxy.cut();
    await seen(/connection lost; reattaching/);
    proxy.restore();
    await seen(/\[djangocommand\] reattached/);
    type("print('kept', kept + 1)");
    await seen(/kept 42/);
    // Ctrl-C interrupts what runs in the shell, not the CLI; Ctrl-D ends the shell.
    type('import time; time.sleep(60)');
    await new Promise((r) => setTimeout(r, 500));
    tmux('send-keys', '-t', 'cli', 'C-c');
    await seen(/KeyboardInterrupt\n>>> $/m);
    tmux('send-keys', '-t', 'cli', 'C-d');
    await seen(/EXIT=0/);
    // The CLI gave the terminal back as it found it (line mode, echo).
    await seen(/TTY=icanon echo $/m);
    await proxy.close();

    const writable = await audit('shell.writable');
    expect(writable[0]).toMatchObject({ outcome: 'ok', details: { reason: 'fix the stuck note 42', via: 'shell' } });
    const sessionId = String(writable[0].details.session_id);
    const sent = await waitFor('the writable notification at the webhook', () => hook.received.find((r) => r.body.includes('fix the stuck note 42')));
    expect(sent.body).toContain(`https://dc.example.com/#/shells/${sessionId}`);

    const list = JSON.parse((await cli(['shells', '--project', 'shop', '--json'])).stdout) as Array<{ id: string; became_writable: boolean; status: string; duration_ms: number }>;
    expect(list[0]).toMatchObject({ id: sessionId, became_writable: true, status: 'ended' });
    expect(list[0].duration_ms).toBeGreaterThan(0);

    const cast = await fetch(`${server.url}/api/v1/shells/${sessionId}/recording`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text());
    const [header, ...events] = cast.trim().split('\n').map((l) => JSON.parse(l));
    expect(header).toMatchObject({ version: 2, width: 150, height: 50 });
    const typed = events.filter((e) => e[1] === 'i').map((e) => e[2]).join('');
    const printed = events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    expect(typed).toContain("Note.objects.create(text='written')");
    expect(printed).toContain('created-ok');
    expect(printed).toContain('ReadOnlyError');
    expect(cast).not.toContain('hunter2');
    expect(events.some((e) => e[1] === 'm' && String(e[2]).includes('writable'))).toBe(true);
  }, 90_000);

  it('a 10 MB paste reaches the shell intact, and a dropped client reattaches to the same shell', async () => {
    const opened = await api<{ id: string; attach_path: string }>('POST', '/api/v1/projects/shop/shells', { cols: 100, rows: 30 });
    expect(opened.status).toBe(201);
    const url = server.url.replace(/^http/, 'ws') + opened.body.attach_path;
    let output = '';
    let received = 0;
    const attach = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${url}?from=${received}`, { headers: { authorization: `Bearer ${token}` } });
        ws.on('message', (d, binary) => {
          if (!binary) return;
          received += (d as Buffer).length;
          output += d.toString();
        });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    let ws = await attach();
    const until = (what: RegExp, ms = 60_000) => waitFor(`${what} from the shell`, () => what.test(output), ms, 100);
    await until(/>>> $/);

    const line = 'x'.repeat(99) + '\n';
    const paste = line.repeat(Math.ceil((10 * 1024 * 1024) / line.length));
    const { createHash } = await import('node:crypto');
    const expected = createHash('sha256').update(paste).digest('hex');
    ws.send(Buffer.from(`import sys, hashlib; d = sys.stdin.read(${paste.length}); print('sha', hashlib.sha256(d.encode()).hexdigest())\r`), { binary: true });
    await new Promise((r) => setTimeout(r, 300));
    ws.send(Buffer.from(paste), { binary: true });
    await until(new RegExp(`sha ${expected}`));
    // The terminal echoed every line back: a 10 MB flood of output, whole and in order.
    expect(output.match(/x{99}\r\n/g)?.length).toBe(paste.length / line.length);

    ws.send(Buffer.from('kept = 41\r'), { binary: true });
    await new Promise((r) => setTimeout(r, 300));
    ws.terminate();
    await new Promise((r) => setTimeout(r, 500));
    output = '';
    ws = await attach();
    ws.send(Buffer.from("print('after', kept + 1)\r"), { binary: true });
    await until(/after 42/);
    // It got what followed what it had, not the screen again.
    expect(output).not.toContain('sha ');
    ws.send(JSON.stringify({ type: 'close' }));
    await waitFor('the session to end', async () => (await api<{ status: string }>('GET', `/api/v1/shells/${opened.body.id}`)).body.status === 'ended');
  }, 120_000);

  it('an output flood to a person who reads slowly pauses the shell instead of growing memory, and arrives whole and in order', async () => {
    const opened = await api<{ id: string; attach_path: string }>('POST', '/api/v1/projects/shop/shells', {});
    const sh = await attachShell(server.url, token, opened.body.attach_path);
    await sh.until(/>>> $/);
    const lines = 40_000;
    sh.type(`import sys\nfor i in range(${lines}): sys.stdout.write('%07d' % i + 'z' * 992 + '\\n')\n`);
    // This person stops reading: TCP fills up, the server's buffer passes its cap, the runner pauses the shell.
    (sh.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    await waitFor('the runner to pause the shell', () => /output paused: the server is behind/.test(runner.logs()), 30_000, 100);
    (sh.ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await waitFor('the runner to resume', () => /output resumed/.test(runner.logs()), 30_000, 100);
    await sh.until(new RegExp(`${String(lines - 1).padStart(7, '0')}z{992}\\r\\n`), 60_000);
    const numbers = [...sh.output().matchAll(/(\d{7})z{992}\r\n/g)].map((m) => Number(m[1]));
    expect(numbers).toEqual(Array.from({ length: lines }, (_, i) => i));
    sh.ws.send(JSON.stringify({ type: 'close' }));
  }, 120_000);

  it('closes an idle shell after a warning, and a runner that stops ends its shell and says so', async () => {
    await cli(['shells', '--project', 'shop', '--idle-timeout', '3']);
    const idle = await api<{ id: string; attach_path: string }>('POST', '/api/v1/projects/shop/shells', {});
    let text = '';
    const ws = new WebSocket(server.url.replace(/^http/, 'ws') + idle.body.attach_path, { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (d) => (text += d.toString()));
    await waitFor('the idle warning', () => /idle: this shell closes in \d+ s/.test(text), 15_000);
    await waitFor('the idle end', () => /shell ended: idle for 3 s/.test(text), 15_000);
    await cli(['shells', '--project', 'shop', '--idle-timeout', '900']);

    const open = await api<{ id: string }>('POST', '/api/v1/projects/shop/shells', {});
    expect(open.status).toBe(201);
    await runner.stop();
    const ended = await waitFor('the session to end', async () => {
      const s = (await api<{ status: string; end_reason: string }>('GET', `/api/v1/shells/${open.body.id}`)).body;
      return s.status === 'ended' && s;
    });
    expect(ended.end_reason).toMatch(/runner/);
    const gone = await api('POST', '/api/v1/projects/shop/shells', {});
    expect(gone).toMatchObject({ status: 409, body: { code: 'DC_NO_RUNNER' } });
  }, 60_000);
});

/** A shell attached over the WebSocket directly, as the dashboard's terminal is. */
async function attachShell(serverUrl: string, token: string, attachPath: string) {
  let output = '';
  const events: Array<{ type: string; [k: string]: unknown }> = [];
  const ws = new WebSocket(serverUrl.replace(/^http/, 'ws') + attachPath, { headers: { authorization: `Bearer ${token}` } });
  ws.on('message', (d, binary) => {
    if (binary) output += d.toString();
    else events.push(JSON.parse(d.toString()));
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return {
    ws,
    events,
    output: () => output,
    type: (text: string) => ws.send(Buffer.from(text + '\r'), { binary: true }),
    until: (what: RegExp, ms = 20_000) =>
      waitFor(`${what} from the shell`, () => what.test(output), ms, 50).catch((err: Error) => {
        throw new Error(`${err.message}; the shell printed:\n${output.slice(-3000)}`);
      }),
  };
}

describe('audited shells (postgres: server store and the Django database)', () => {
  let serverDb: FreshDatabase;
  let djangoDb: FreshDatabase;
  let server: ServerHandle;
  let runner: RunnerHandle;
  let token: string;
  const notes = async (): Promise<number> => {
    const client = new pg.Client({ connectionString: djangoDb.databaseUrl });
    await client.connect();
    try {
      return Number((await client.query('SELECT count(*) AS n FROM demo_note')).rows[0].n);
    } finally {
      await client.end();
    }
  };
  const api = async <T = Record<string, unknown>>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(server.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };

  beforeAll(async () => {
    [serverDb, djangoDb] = await Promise.all([freshDatabase('postgres'), freshDatabase('postgres')]);
    const exampleEnv = { DJANGOCOMMAND_EXAMPLE_DATABASE_URL: djangoDb.databaseUrl!, PYTHONUNBUFFERED: '1' };
    execFileSync(PYTHON, ['manage.py', 'migrate', '-v', '0'], { cwd: EXAMPLE_DIR, env: { ...process.env, ...exampleEnv } });
    server = await startServer(serverDb);
    const project = await setUpProject(server);
    token = project.token;
    expect((await runCli(['shells', '--project', 'shop', '--enable'], { DJANGOCOMMAND_URL: server.url, DJANGOCOMMAND_TOKEN: token })).code).toBe(0);
    runner = await startRunner(runnerEnv(server.url, project.key, exampleEnv), ['--no-warm']);
  }, 90_000);

  afterAll(async () => {
    await runner?.stop();
    await server?.stop();
    await serverDb?.drop();
    await djangoDb?.drop();
  });

  it('every kind of write fails read-only and leaves the table as it was; after the dashboard-style "writable" they succeed', async () => {
    const before = await notes();
    const opened = await api<{ id: string; attach_path: string }>('POST', '/api/v1/projects/shop/shells', { cols: 200, rows: 50 });
    expect(opened.status).toBe(201);
    const sh = await attachShell(server.url, token, opened.body.attach_path);
    await sh.until(/>>> $/);
    sh.type('from demo.models import Note; from django.db import connection');
    const writes = [
      "Note.objects.create(text='a')",
      "Note.objects.update(text='b')",
      'Note.objects.all().delete()',
      "Note.objects.bulk_create([Note(text='c')])",
      "connection.cursor().execute(\"INSERT INTO demo_note (text, created_at) VALUES ('raw', now())\")",
    ];
    for (const [i, w] of writes.entries()) {
      sh.type(`try:\n    ${w}\nexcept Exception as e:\n    print('refused-${i}', type(e).__name__, 'read-only' in str(e))\n`);
      await sh.until(new RegExp(`refused-${i} (ReadOnlyError|InternalError|ReadOnlySqlTransaction)\\w* True`));
    }
    expect(await notes()).toBe(before);

    // The dashboard's button: a control message with the reason; an empty one is refused.
    sh.ws.send(JSON.stringify({ type: 'writable', reason: '  ' }));
    await waitFor('the refusal notice', () => sh.events.find((e) => e.type === 'notice' && e.code === 'DC_SHELL_REASON'));
    sh.ws.send(JSON.stringify({ type: 'writable', reason: 'load the missing notes' }));
    await waitFor('the writable status', () => sh.events.find((e) => e.type === 'status' && e.read_only === false));
    sh.type("Note.objects.create(text='now'); print('count', Note.objects.count())");
    await sh.until(new RegExp(`count ${before + 1}`));
    expect(await notes()).toBe(before + 1);

    // Back to read-only at any time: audited, and writes fail again.
    sh.ws.send(JSON.stringify({ type: 'readonly' }));
    await waitFor('the read-only status', () => sh.events.filter((e) => e.type === 'status').at(-1)?.read_only === true);
    sh.type("try:\n    Note.objects.create(text='again')\nexcept Exception as e:\n    print('refused-again', type(e).__name__)\n");
    await sh.until(/refused-again ReadOnlyError/);
    sh.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor('the session to end', async () => (await api<{ status: string }>('GET', `/api/v1/shells/${opened.body.id}`)).body.status === 'ended');
    expect(await notes()).toBe(before + 1);

    const actions = (await api<{ items: Array<{ action: string; outcome: string; details: Record<string, unknown> }> }>('GET', '/api/v1/audit?limit=100')).body.items
      .filter((e) => e.details.session_id === opened.body.id)
      .map((e) => `${e.action} ${e.outcome}`);
    expect(actions).toEqual(['shell.end ok', 'shell.read_only ok', 'shell.writable ok', 'shell.writable denied', 'shell.open ok']);
    const cast = await fetch(`${server.url}/api/v1/shells/${opened.body.id}/recording`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text());
    expect(cast).toContain('refused-4');
    expect(cast).toContain('load the missing notes');
  }, 90_000);
});
