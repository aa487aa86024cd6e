/**
 * `djangocommand shell`: an audited Django shell on a runner, in this terminal (raw mode: keys,
 * Ctrl-C, Ctrl-D, tab and colours go to the shell as they are; resizes follow). A short network
 * drop reattaches by itself; the terminal is restored however it ends.
 * `djangocommand shells`: a project's sessions, and (admins) turning shells on or off.
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import WebSocket from 'ws';
import { ApiClient, type ClientOptions } from './apiClient.js';
import { UserError } from '../shared/errors.js';
import type { ShellClientEvent } from '../shared/shellProtocol.js';
import type { ShellView } from '../shared/shellsApi.js';

type Flags = ClientOptions & { json?: boolean; project?: string };
const enc = encodeURIComponent;
const out = (line: string): void => void process.stdout.write(line + '\n');
/** How long a dropped connection is tried again before giving up (the server keeps the shell for 60 s). */
const REATTACH_FOR_MS = 50_000;

function clientOptions(cmd: Command): Command {
  return cmd.option('--url <url>', 'server address (env DJANGOCOMMAND_URL)').option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)');
}

async function projectName(api: ApiClient, flag: string | undefined): Promise<string> {
  if (flag) return flag;
  const { items } = await api.request<{ items: Array<{ name: string }> }>('GET', '/api/v1/projects');
  if (items.length === 1) return items[0].name;
  if (items.length === 0) throw new UserError('DC_UNKNOWN_PROJECT', 'The server has no project yet.', undefined, { exitCode: 2 });
  throw new UserError('DC_VALIDATION', `Name a project with --project: there are ${items.length} (${items.map((p) => p.name).join(', ')}).`, undefined, { exitCode: 2 });
}

function ask(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => rl.question(question, (a) => (rl.close(), resolve(a))));
}

function duration(ms: number | null): string {
  if (ms === null) return 'running';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function registerShellCommands(program: Command): void {
  clientOptions(program.command('shell'))
    .description('Open an audited Django shell (manage.py shell) on a runner: read-only unless --write with a --reason.')
    .option('--project <project>', 'project name (default: the only one)')
    .option('--write', 'writable from the start (needs --reason; audited and announced to the team)')
    .option('--reason <text>', 'why the shell must write (required with --write)')
    .option('--yes', 'do not ask to confirm --write')
    .action(async (flags: Flags & { write?: boolean; reason?: string; yes?: boolean }) => {
      if (flags.write && !flags.reason?.trim()) throw new UserError('DC_SHELL_REASON', 'A writable shell needs a reason: --write --reason "what you will change and why".', undefined, { exitCode: 2 });
      if (!flags.write && flags.reason) throw new UserError('DC_VALIDATION', '--reason goes with --write (a read-only shell needs none).', undefined, { exitCode: 2 });
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      if (flags.write && !flags.yes) {
        if (!process.stdin.isTTY) throw new UserError('DC_VALIDATION', 'Confirm a writable shell with --yes when not at a terminal.', undefined, { exitCode: 2 });
        const answer = await ask(`Open a WRITABLE shell on ${project}? The reason goes to the audit log and to the team. Type yes: `);
        if (answer.trim().toLowerCase() !== 'yes') throw new UserError('DC_VALIDATION', 'Not confirmed: no shell opened.', undefined, { exitCode: 1 });
      }
      const cols = process.stdout.columns ?? 80;
      const rows = process.stdout.rows ?? 24;
      const shell = await api.request<ShellView>('POST', `/api/v1/projects/${enc(project)}/shells`, { write: flags.write === true, ...(flags.write ? { reason: flags.reason } : {}), cols, rows });
      process.stderr.write(`[djangocommand] shell ${shell.id} on ${project} (${flags.write ? 'WRITABLE' : 'read-only'}); recorded. Exit with exit() or Ctrl-D.\r\n`);
      const token = flags.token ?? process.env.DJANGOCOMMAND_TOKEN!;
      process.exitCode = await runTerminal(api.base.replace(/^http/, 'ws') + shell.attach_path, token);
    });

  clientOptions(program.command('shells'))
    .description("A project's shell sessions (who, when, how long, whether it became writable); --enable/--disable turn shells on or off (admins).")
    .option('--project <project>', 'project name (default: the only one)')
    .option('--json', 'print JSON')
    .option('--enable', 'allow shells on the project')
    .option('--disable', 'forbid shells on the project')
    .option('--idle-timeout <seconds>', 'close shells idle this long (default 900)')
    .option('--limit <n>', 'how many sessions', '50')
    .action(async (flags: Flags & { enable?: boolean; disable?: boolean; idleTimeout?: string; limit: string }) => {
      if (flags.enable && flags.disable) throw new UserError('DC_VALIDATION', 'Give --enable or --disable, not both.', undefined, { exitCode: 2 });
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      if (flags.enable || flags.disable || flags.idleTimeout !== undefined) {
        const idle = flags.idleTimeout === undefined ? undefined : Number(flags.idleTimeout);
        if (idle !== undefined && !Number.isInteger(idle)) throw new UserError('DC_VALIDATION', `--idle-timeout must be a whole number of seconds, not "${flags.idleTimeout}".`, undefined, { exitCode: 2 });
        const s = await api.request<{ enabled: boolean; idle_timeout_seconds: number }>('PUT', `/api/v1/projects/${enc(project)}/shell-settings`, {
          ...(flags.enable || flags.disable ? { enabled: flags.enable === true } : {}),
          ...(idle !== undefined ? { idle_timeout_seconds: idle } : {}),
        });
        if (flags.json) return out(JSON.stringify(s));
        return out(`Shells on ${project}: ${s.enabled ? 'on' : 'off'}; idle shells close after ${s.idle_timeout_seconds} s.`);
      }
      const { items } = await api.request<{ items: ShellView[] }>('GET', `/api/v1/projects/${enc(project)}/shells?limit=${enc(flags.limit)}`);
      if (flags.json) return out(JSON.stringify(items));
      if (items.length === 0) return out(`No shell session on ${project} yet.`);
      for (const s of items) {
        out(`${s.id}  ${s.opened_at}  ${s.user}  ${duration(s.duration_ms)}  ${s.status}${s.became_writable ? '  BECAME WRITABLE' : ''}${s.end_reason ? `  (${s.end_reason})` : ''}`);
      }
    });
}

/**
 * Relays this terminal to the shell until it ends; returns the exit code. Raw mode while it runs,
 * restored on every way out (end, error, signal).
 */
async function runTerminal(url: string, token: string): Promise<number> {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  const restore = () => {
    if (raw && stdin.isRaw) stdin.setRawMode(false);
  };
  process.once('exit', restore);
  if (raw) stdin.setRawMode(true);
  stdin.resume();
  let ws: WebSocket | undefined;
  let ended: { code: number } | undefined;
  /** Output bytes shown so far: a reattach asks for what follows them. */
  const received = { bytes: 0 };
  const onInput = (b: Buffer) => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(b, { binary: true });
  };
  const onResize = () => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }));
  };
  stdin.on('data', onInput);
  process.stdout.on('resize', onResize);
  // Piped input (no terminal): its end is the end of the session, as Ctrl-D would be.
  if (!raw) stdin.once('end', () => ws?.readyState === WebSocket.OPEN && setTimeout(() => ws?.send(JSON.stringify({ type: 'close' })), 500));
  try {
    let lostAt: number | undefined;
    for (;;) {
      const result = await attachOnce(`${url}?from=${received.bytes}`, token, received, (w) => {
        ws = w;
        if (lostAt !== undefined) process.stderr.write('\r\n[djangocommand] reattached\r\n');
        lostAt = undefined;
        onResize();
      });
      if (result.ended) {
        ended = { code: result.exitCode ?? 0 };
        break;
      }
      if (result.refused) throw result.refused;
      lostAt ??= Date.now();
      if (Date.now() - lostAt > REATTACH_FOR_MS) throw new UserError('DC_CONFIG', 'Lost the connection to the server and could not reattach; the shell ends on the server by itself.', undefined, { exitCode: 1 });
      process.stderr.write('\r\n[djangocommand] connection lost; reattaching...\r\n');
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    stdin.off('data', onInput);
    process.stdout.off('resize', onResize);
    stdin.pause();
    restore();
  }
  return ended?.code ?? 0;
}

interface AttachResult {
  ended: boolean;
  exitCode?: number | null;
  refused?: UserError;
}

function attachOnce(url: string, token: string, received: { bytes: number }, onOpen: (ws: WebSocket) => void): Promise<AttachResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    let ended: AttachResult | undefined;
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d.slice(0, 4000)));
      res.on('end', () => {
        let parsed: { error?: string; code?: string } = {};
        try {
          parsed = JSON.parse(body);
        } catch {
          // keep the status
        }
        const status = res.statusCode ?? 0;
        // The shell is gone (ended while we were away) or this credential no longer works: stop.
        if (status >= 400 && status < 500) resolve({ ended: parsed.code === 'DC_SHELL_ENDED', exitCode: null, refused: parsed.code === 'DC_SHELL_ENDED' ? undefined : new UserError((parsed.code as never) ?? 'DC_BAD_REQUEST', parsed.error ?? `HTTP ${status}`, undefined, { exitCode: 1 }) });
        else resolve({ ended: false });
        ws.terminate();
      });
    });
    ws.on('open', () => onOpen(ws));
    ws.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) {
        received.bytes += bytes.length;
        process.stdout.write(bytes);
        return;
      }
      let ev: ShellClientEvent;
      try {
        ev = JSON.parse(bytes.toString('utf8'));
      } catch {
        return;
      }
      if (ev.type === 'notice') process.stderr.write(`\r\n[djangocommand] ${ev.message}${ev.code ? ` [${ev.code}]` : ''}\r\n`);
      else if (ev.type === 'ended') ended = { ended: true, exitCode: ev.exit_code };
    });
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      if (ended) return resolve(ended);
      if (code === 1000) return resolve({ ended: true, exitCode: null });
      if (code === 4401 || code === 4409) return resolve({ ended: false, refused: new UserError('DC_UNAUTHENTICATED', reason.toString() || 'detached by the server', undefined, { exitCode: 1 }) });
      resolve({ ended: false });
    });
  });
}
