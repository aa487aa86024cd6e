/** The CLI's client commands: they talk to a server's REST API with a personal API token. */
import type { Command } from 'commander';
import { ApiClient, lineBuffers, type ClientOptions } from './apiClient.js';
import { OutputChunkReader } from './outputChunk.js';
import { correctedCommandLine, misplacedOptions, type OurOption } from './misplacedOptions.js';
import type { AuditEventView, CommandView, ExecutionView, OutputChunkView, PageView, ProjectView, RunnerView } from '../shared/api.js';
import { cliExitCode, isTerminal } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';
import { approvalNotice, awaitingApprovalLine } from './approvalCommands.js';

type Flags = ClientOptions & { json?: boolean; project?: string };

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server address (env DJANGOCOMMAND_URL)')
    .option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)')
    .option('--json', 'print JSON');
}

const out = (line: string): void => void process.stdout.write(line + '\n');
const enc = encodeURIComponent;

async function write(stream: NodeJS.WriteStream, text: string | Buffer): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', resolve));
}

/**
 * Writes the command's output from output chunks (an SSE event's data or a JSON line, megabytes
 * each) as bytes: OutputChunkReader copies the text's bytes once into a buffer it reuses, where
 * decoding, parsing and encoding made three fresh copies (JSON.parse stays for anything else).
 * The next chunk waits until the stream has taken the last one, as the buffer is then reused.
 */
function outputWriter(allToStderr = false): (json: Buffer) => Promise<void> {
  const reader = new OutputChunkReader();
  return async (json) => {
    let chunk = reader.read(json);
    if (!chunk) {
      const c = JSON.parse(json.toString('utf8')) as OutputChunkView;
      chunk = { stream: c.stream, data: Buffer.from(c.data, 'utf8') };
    }
    const stream = chunk.stream === 'stderr' || allToStderr ? process.stderr : process.stdout;
    const bytes = chunk.data;
    await new Promise<void>((resolve, reject) => stream.write(bytes, (err) => (err ? reject(err) : resolve())));
  };
}

/** An SSE event's data or a JSON line, parsed. */
const json = <T>(bytes: Buffer): T => JSON.parse(bytes.toString('utf8')) as T;

/** Picks the project: --project, or the only one the server has. */
async function projectName(api: ApiClient, flag: string | undefined): Promise<string> {
  return flag ?? (await projectView(api, undefined)).name;
}

/** The project of --project, or the only one the server has, with its runners online. */
async function projectView(api: ApiClient, flag: string | undefined): Promise<ProjectView> {
  if (flag) return api.request<ProjectView>('GET', `/api/v1/projects/${enc(flag)}`);
  const { items } = await api.request<{ items: ProjectView[] }>('GET', '/api/v1/projects');
  if (items.length === 1) return items[0];
  if (items.length === 0) throw new UserError('DC_UNKNOWN_PROJECT', 'The server has no project yet.', undefined, { exitCode: 2 });
  throw new UserError('DC_VALIDATION', `Name a project with --project: there are ${items.length} (${items.map((p) => p.name).join(', ')}).`, undefined, { exitCode: 2 });
}

/** Whole seconds from 1 to 7 days, as the server takes them; a wrong value is refused before anything runs. */
function seconds(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1 || n > MAX_SECONDS) {
    throw new UserError('DC_VALIDATION', `${option} must be a whole number of seconds from 1 to ${MAX_SECONDS} (7 days), not "${value}".`, undefined, { exitCode: 2 });
  }
  return n;
}
const MAX_SECONDS = 604_800;

/**
 * Streams an execution's output until it ends (stdout to stdout, stderr to stderr; both to
 * stderr with `allToStderr`, when stdout carries JSON); returns the final view.
 */
async function follow(api: ApiClient, id: string, onStatus?: (e: ExecutionView) => void, allToStderr = false): Promise<ExecutionView> {
  let final: ExecutionView | undefined;
  const writeOutput = outputWriter(allToStderr);
  await api.events(`/api/v1/executions/${id}/events`, async (name, data) => {
    if (name === 'output') {
      await writeOutput(data);
    } else if (name === 'status') {
      onStatus?.(json<ExecutionView>(data));
    } else if (name === 'end') {
      final = json<ExecutionView>(data);
      return 'stop';
    }
  });
  return final!;
}

/** The lines printed to stderr when an execution did not simply succeed. */
function endLines(e: ExecutionView): string {
  const lines = e.status === 'succeeded' ? [] : [reasonLine(e)];
  if (e.output_incomplete) {
    lines.push(`djangocommand: the output of ${e.command} is incomplete: ${e.output_missing_chunks} chunk(s) never reached the server (the runner could not send them); what was printed above is not all of it`);
  }
  if (e.late_status) lines.push(`djangocommand: its runner reported later that it ended ${e.late_status}${e.late_exit_code === null ? '' : ` (exit code ${e.late_exit_code})`}; it stays lost`);
  return lines.map((l) => l + '\n').join('');
}

function reasonLine(e: ExecutionView): string {
  const why = e.status_reason ? `: ${e.status_reason}` : '';
  switch (e.status) {
    case 'failed':
      return `djangocommand: ${e.command} failed with exit code ${e.exit_code}${why}${e.read_only ? ' (it ran in read-only database mode: writes are refused)' : ''}`;
    case 'timed_out':
      return `djangocommand: ${e.command} timed out after ${e.timeout} s${why}`;
    case 'expired':
      return (
        `djangocommand: ${e.command} expired: ${e.status_reason ?? 'no runner started it before its start deadline; it will never start'}. ` +
        `Check the runners of ${e.project} (djangocommand runners --project ${e.project}), then run it again (--start-timeout gives it longer)`
      );
    default:
      return `djangocommand: ${e.command} ${e.status}${why}`;
  }
}

/** "Nobody will run it yet": said at once, with how long it waits. */
function noRunnerLine(e: ExecutionView): string {
  const deadline = e.start_deadline ? Date.parse(e.start_deadline) : NaN;
  const wait = Number.isNaN(deadline)
    ? 'it waits for one'
    : `it waits for one until ${new Date(deadline).toLocaleTimeString()} (${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s; --start-timeout sets it), then ends expired`;
  return `djangocommand: no runner of ${e.project} is online: ${wait}\n`;
}

/** `run`'s own long options, as commander knows them. */
function ourOptions(cmd: Command): OurOption[] {
  return cmd.options.filter((o) => o.long).map((o) => ({ name: o.long!, takesValue: o.required || o.optional }));
}

/**
 * `run check --project shop`: `--project` went to Django, whose "unrecognized arguments" does
 * not say what happened. Refused before anything runs, with the command line that works. Only
 * when a word looks like one of our options is the command's schema fetched (the check costs
 * a normal run nothing), and an option of the command's own (its `--timeout`) is left alone.
 */
async function refuseMisplacedOptions(api: ApiClient, project: string, command: string, args: string[], ours: OurOption[]): Promise<void> {
  let schema: unknown = null;
  try {
    schema = (await api.request<CommandView>('GET', `/api/v1/projects/${enc(project)}/commands/${enc(command)}`)).schema;
  } catch (err) {
    if (err instanceof UserError && err.code === 'DC_UNKNOWN_COMMAND') return; // creating it says so, with suggestions
    throw err;
  }
  const misplaced = misplacedOptions(args, ours, schema);
  if (misplaced.length === 0) return;
  const names = [...new Set(misplaced.map((m) => m.option.name))];
  throw new UserError(
    'DC_VALIDATION',
    `${names.join(', ')} ${names.length > 1 ? 'are options' : 'is an option'} of djangocommand run, not of ${command}: ours go before the command name, e.g.\n  ${correctedCommandLine(command, args, misplaced)}\n` +
      `(to pass ${names.length > 1 ? 'them' : 'it'} to ${command} itself, put -- before its arguments: djangocommand run ${command} -- ...)`, undefined, { exitCode: 2 },
  );
}

/** How long `run` waits, after SIGTERM or SIGHUP, for the server to take the cancel before it exits anyway. */
const CANCEL_ACK_MS = 10_000;
const SIGNAL_EXIT = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
type CancelSignal = keyof typeof SIGNAL_EXIT;

/**
 * SIGINT, SIGTERM and SIGHUP cancel the execution: nothing is left running on the host when a
 * user presses Ctrl-C, a CI job times out or a terminal closes. The first asks for a graceful
 * cancel, a second one force-kills. After SIGINT the output keeps streaming until the command
 * ends; after SIGTERM or SIGHUP `run` exits as soon as the server has taken the cancel (bounded):
 * whoever sent it wants this process gone. A signal that arrives before the execution exists
 * is acted on as soon as it does.
 */
function cancelOnSignals(api: ApiClient): { exitIfSignalled(): void; created(id: string): void; stop(): void } {
  let id: string | undefined;
  const pending: CancelSignal[] = [];
  let signals = 0;
  const act = (signal: CancelSignal) => {
    const force = ++signals > 1;
    const leave = signal !== 'SIGINT';
    if (signal === 'SIGHUP') {
      // The terminal is gone: writing to it fails, and that must not stop the cancel.
      process.stdout.on('error', () => undefined);
      process.stderr.on('error', () => undefined);
    }
    process.stderr.write(
      `\ndjangocommand: ${signal}: ${force ? 'force-killing' : 'cancelling'} ${id}…${force || leave ? '' : ' (Ctrl-C again to kill)'}\n`,
    );
    const request = api.request<ExecutionView>('POST', `/api/v1/executions/${id}/cancel`, { force }, AbortSignal.timeout(CANCEL_ACK_MS)).catch((err: Error) => {
      // Already ended: nothing is left to cancel.
      if (err instanceof UserError && err.code === 'DC_INVALID_TRANSITION') return undefined;
      throw err;
    });
    request.then(
      (e) => {
        if (!leave) return; // after SIGINT the stream shows how it ends
        const what = e && isTerminal(e.status) ? `it is ${e.status}` : `its runner stops the command (SIGINT, SIGTERM, then SIGKILL)`;
        process.stderr.write(`djangocommand: the server has the cancel of ${id}: ${what}; exiting (djangocommand logs ${id} shows the rest)\n`);
        process.exit(SIGNAL_EXIT[signal]);
      },
      (err: Error) => {
        process.stderr.write(`djangocommand: could not cancel ${id}: ${err.name === 'TimeoutError' ? `no answer from the server in ${CANCEL_ACK_MS / 1000} s` : err.message}\n`);
        if (leave) process.exit(SIGNAL_EXIT[signal]);
      },
    );
  };
  const handlers = (Object.keys(SIGNAL_EXIT) as CancelSignal[]).map((signal) => {
    const handler = () => {
      if (id === undefined) {
        pending.push(signal);
        process.stderr.write(`\ndjangocommand: ${signal}: cancelling as soon as the execution exists\n`);
      } else act(signal);
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  return {
    exitIfSignalled() {
      // Signalled before anything was created: nothing to cancel, so create nothing.
      const signal = pending[0];
      if (signal === undefined) return;
      process.stderr.write(`djangocommand: ${signal}: stopped before creating the execution; nothing runs\n`);
      process.exit(SIGNAL_EXIT[signal]);
    },
    created(created) {
      id = created;
      for (const signal of pending.splice(0)) act(signal);
    },
    stop() {
      for (const off of handlers) off();
    },
  };
}

export function registerClientCommands(program: Command): void {
  clientOptions(program.command('run'))
    .description("Run a management command on a project and stream its output; exits with the command's exit code.")
    .argument('<command>', 'management command, e.g. migrate')
    .argument('[args...]', 'its arguments (put -- before them if they start with -)')
    .option('--project <name>', 'project (default: the only one)')
    .option('--timeout <seconds>', 'stop the command after this many seconds')
    .option('--start-timeout <seconds>', "give up when no runner has started it after this many seconds: it ends expired, exit 69 (default: the server's DJANGOCOMMAND_START_TIMEOUT, 600)")
    .option('--detach', 'return at once, printing the execution id')
    .option('--wait', 'wait for the command to finish (the default)')
    .option('--read-only', 'read-only database mode: every write to the database is refused and the command fails (needs the TypeScript runner)')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Our options go before the command name: everything after it is the command's own.

Output: the command's stdout to stdout, its stderr to stderr. With --json, stdout carries
exactly one JSON document, the final execution (with --detach: the created one), and all
of the command's output goes to stderr.

Signals: SIGINT (Ctrl-C) cancels the execution gracefully and keeps showing its output until
it ends; SIGTERM and SIGHUP cancel it the same way and exit as soon as the server has the
cancel (at most 10 s). A second signal force-kills it. The runner stops a cancelled command
with SIGINT, then SIGTERM, then SIGKILL after its grace period (DJANGOCOMMAND_KILL_GRACE).

Exit codes: the command's own, 124 timed out, 130 cancelled, 126 refused by the runner's
policy or denied approval (or its approval expired), 75 lost, 69 expired (no runner started it before its start deadline), 74 output
incomplete; 128 + the signal when SIGTERM (143) or SIGHUP (129) made it exit early.`,
    )
    .action(async (command: string, args: string[], flags: Flags & { timeout?: string; startTimeout?: string; detach?: boolean; readOnly?: boolean }, cmd: Command) => {
      // `run migrate -- --fake` (as the help advises for arguments starting with -): the `--`
      // only ends our options; Django must not see it (it would make every later word positional).
      const explicit = args[0] === '--';
      if (explicit) args = args.slice(1);
      const timeout = seconds('--timeout', flags.timeout);
      const startTimeout = seconds('--start-timeout', flags.startTimeout);
      const api = new ApiClient(flags);
      // Installed before the request that creates it: a CI job's timeout may come at any moment.
      const cancel = flags.detach ? undefined : cancelOnSignals(api);
      try {
        const create = (name: string) => {
          cancel?.exitIfSignalled();
          return api.request<ExecutionView>('POST', `/api/v1/projects/${enc(name)}/executions`, {
            command,
            argv: args,
            ...(timeout ? { timeout } : {}),
            ...(startTimeout ? { start_timeout: startTimeout } : {}),
            ...(flags.readOnly ? { read_only: true } : {}),
          });
        };
        const ours = ourOptions(cmd);
        const check = !explicit && misplacedOptions(args, ours, null).length > 0;
        let project: ProjectView;
        let e: ExecutionView;
        if (flags.project && !check) {
          // Both at once: the project's view only tells whether a runner is online.
          [project, e] = await Promise.all([projectView(api, flags.project), create(flags.project)]);
        } else {
          project = await projectView(api, flags.project);
          if (check) await refuseMisplacedOptions(api, project.name, command, args, ours);
          e = await create(project.name);
        }
        // Four-eyes: it waits for another member's approval; say so, and where to give it.
        const awaiting = e.status === 'awaiting_approval';
        if (flags.detach) {
          out(flags.json ? JSON.stringify(e) : e.id);
          if (awaiting) process.stderr.write(awaitingApprovalLine(api.base, e));
          if (project.runners_online === 0) process.stderr.write(noRunnerLine(e));
          return;
        }
        process.stderr.write(awaiting ? awaitingApprovalLine(api.base, e) : `djangocommand: ${command} queued on ${project.name} as ${e.id}${e.read_only ? ' (read-only database mode)' : ''}\n`);
        if (project.runners_online === 0) process.stderr.write(noRunnerLine(e));
        cancel!.created(e.id);
        const final = await follow(api, e.id, awaiting ? approvalNotice() : undefined, flags.json);
        if (flags.json) out(JSON.stringify(final));
        process.stderr.write(endLines(final));
        process.exitCode = cliExitCode(final.status, final.exit_code, final.output_incomplete);
      } finally {
        cancel?.stop();
      }
    });

  clientOptions(program.command('logs'))
    .description('Print the full output of an execution, as the command wrote it (stdout and stderr to each).')
    .argument('<id>', 'execution id')
    .option('--follow', 'keep printing until the execution ends')
    .action(async (id: string, flags: Flags & { follow?: boolean }) => {
      const api = new ApiClient(flags);
      if (flags.follow) {
        const final = await follow(api, id);
        process.stderr.write(endLines(final));
        process.exitCode = cliExitCode(final.status, final.exit_code, final.output_incomplete);
        return;
      }
      const res = await api.fetch('GET', `/api/v1/executions/${enc(id)}/output?format=jsonl`);
      if (!res.ok) await api.request('GET', `/api/v1/executions/${enc(id)}`); // throws the API's error
      if (flags.json) {
        for await (const piece of res.body) await write(process.stdout, piece);
        return;
      }
      const writeOutput = outputWriter();
      for await (const line of lineBuffers(res.body)) if (line.length > 0) await writeOutput(line);
    });

  clientOptions(program.command('cancel'))
    .description('Cancel an execution: SIGINT, then SIGTERM and SIGKILL after the grace period; --force kills at once.')
    .argument('<id>', 'execution id')
    .option('--force', 'kill at once')
    .action(async (id: string, flags: Flags & { force?: boolean }) => {
      const api = new ApiClient(flags);
      const e = await api.request<ExecutionView>('POST', `/api/v1/executions/${enc(id)}/cancel`, { force: !!flags.force });
      out(flags.json ? JSON.stringify(e) : isTerminal(e.status) ? `${e.id} ${e.status}` : `${e.id}: cancel${flags.force ? ' (force)' : ''} requested`);
    });

  clientOptions(program.command('executions'))
    .description('List executions, newest first.')
    .option('--project <name>', 'only this project')
    .option('--command <name>', 'only this command')
    .option('--status <status>', 'only these statuses (comma-separated)')
    .option('--limit <n>', 'how many', '50')
    .action(async (flags: Flags & { command?: string; status?: string; limit: string }) => {
      const api = new ApiClient(flags);
      const q = new URLSearchParams({ limit: flags.limit });
      if (flags.project) q.set('project', flags.project);
      if (flags.command) q.set('command', flags.command);
      if (flags.status) q.set('status', flags.status);
      const page = await api.request<PageView<ExecutionView>>('GET', `/api/v1/executions?${q}`);
      if (flags.json) return out(JSON.stringify(page));
      for (const e of page.items) {
        const dur = e.duration_ms === null ? '' : ` ${(e.duration_ms / 1000).toFixed(1)}s`;
        out(`${e.id}  ${e.created_at}  ${e.project}  ${e.status.padEnd(10)} ${e.exit_code ?? ''}${dur}  ${e.command} ${e.args}  (${e.created_by})${e.read_only ? '  read-only' : ''}`);
      }
    });

  clientOptions(program.command('commands'))
    .description("List a project's commands, as its runner reported them.")
    .option('--project <name>', 'project (default: the only one)')
    .action(async (flags: Flags) => {
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      const { items } = await api.request<{ items: CommandView[] }>('GET', `/api/v1/projects/${enc(project)}/commands`);
      if (items.length === 0) {
        process.stderr.write(`djangocommand: no runner has reported commands for project ${project} yet: start a runner with its API key (djangocommand start in the Django project folder, DJANGOCOMMAND_API_KEY in its settings)\n`);
      }
      if (flags.json) return out(JSON.stringify(items));
      for (const c of items) out(`${c.name.padEnd(28)} ${c.app_label}${c.read_only ? '  (read-only)' : ''}`);
    });

  clientOptions(program.command('command'))
    .description("Show a command's settings on the server, or change them (admins): --read-only makes every run of it read-only.")
    .argument('<name>', 'management command, e.g. migrate')
    .option('--project <name>', 'project (default: the only one)')
    .option('--read-only', 'every run of this command is in read-only database mode, whatever is asked')
    .option('--writable', 'runs are read-only only when asked for (or listed in DJANGOCOMMAND_READONLY_COMMANDS)')
    .action(async (name: string, flags: Flags & { readOnly?: boolean; writable?: boolean }) => {
      if (flags.readOnly && flags.writable) throw new UserError('DC_VALIDATION', 'Give --read-only or --writable, not both.', undefined, { exitCode: 2 });
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      const path = `/api/v1/projects/${enc(project)}/commands/${enc(name)}`;
      const c =
        flags.readOnly || flags.writable
          ? await api.request<CommandView>('PATCH', path, { read_only_default: flags.readOnly === true })
          : await api.request<CommandView>('GET', path);
      if (flags.json) return out(JSON.stringify(c));
      out(`${c.name} (${c.app_label}) in ${project}`);
      out(`  read-only by default: ${c.read_only ? 'yes' : 'no'} (server setting: ${c.read_only_default ? 'yes' : 'no'}; DJANGOCOMMAND_READONLY_COMMANDS: ${c.django_read_only ? 'yes' : 'no'})`);
      out(`  at most ${c.max_concurrency} at a time`);
    });

  clientOptions(program.command('projects'))
    .description('List projects with their online runners and active executions.')
    .action(async (flags: Flags) => {
      const api = new ApiClient(flags);
      const { items } = await api.request<{ items: ProjectView[] }>('GET', '/api/v1/projects');
      if (flags.json) return out(JSON.stringify(items));
      for (const p of items) out(`${p.name.padEnd(24)} runners online: ${p.runners_online}  active executions: ${p.active_executions}`);
    });

  clientOptions(program.command('runners'))
    .description("List a project's runners (online/offline, versions).")
    .option('--project <name>', 'project (default: the only one)')
    .action(async (flags: Flags) => {
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      const { items } = await api.request<{ items: RunnerView[] }>('GET', `/api/v1/projects/${enc(project)}/runners`);
      if (flags.json) return out(JSON.stringify(items));
      for (const r of items) {
        out(`${r.online ? 'online ' : 'offline'}  ${r.address}  protocol ${r.protocol}  runner ${r.runner_version}  python ${r.python_version}  django ${r.django_version}  last seen ${r.last_seen_at}`);
      }
    });

  clientOptions(program.command('audit'))
    .description('List audit events, newest first.')
    .option('--project <name>', 'only this project')
    .option('--execution <id>', 'only this execution')
    .option('--action <action>', 'only this action, e.g. execution.create')
    .option('--actor-type <type>', 'user, token, runner or system')
    .option('--since <time>', 'ISO 8601 time')
    .option('--limit <n>', 'how many', '50')
    .action(async (flags: Flags & { execution?: string; action?: string; actorType?: string; since?: string; limit: string }) => {
      const api = new ApiClient(flags);
      const q = new URLSearchParams({ limit: flags.limit });
      if (flags.project) q.set('project', flags.project);
      if (flags.execution) q.set('execution', flags.execution);
      if (flags.action) q.set('action', flags.action);
      if (flags.actorType) q.set('actor_type', flags.actorType);
      if (flags.since) q.set('since', flags.since);
      const page = await api.request<PageView<AuditEventView>>('GET', `/api/v1/audit?${q}`);
      if (flags.json) return out(JSON.stringify(page));
      for (const a of page.items) {
        out(`${a.at}  ${a.outcome.padEnd(6)} ${a.action.padEnd(22)} ${a.actor}${a.address ? ` from ${a.address}` : ''}  ${JSON.stringify(a.details)}`);
      }
    });
}
