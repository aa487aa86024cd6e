/** The CLI's client commands: they talk to a server's REST API with a personal API token. */
import type { Command } from 'commander';
import { ApiClient, type ClientOptions } from './apiClient.js';
import type { AuditEventView, CommandView, ExecutionView, OutputChunkView, PageView, ProjectView, RunnerView } from '../shared/api.js';
import { cliExitCode, isTerminal } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';

type Flags = ClientOptions & { json?: boolean; project?: string };

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server address (env DJANGOCOMMAND_URL)')
    .option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)')
    .option('--json', 'print JSON');
}

const out = (line: string): void => void process.stdout.write(line + '\n');
const enc = encodeURIComponent;

async function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', resolve));
}

/** Picks the project: --project, or the only one the server has. */
async function projectName(api: ApiClient, flag: string | undefined): Promise<string> {
  if (flag) return flag;
  const { items } = await api.request<{ items: ProjectView[] }>('GET', '/api/v1/projects');
  if (items.length === 1) return items[0].name;
  if (items.length === 0) throw new UserError('DC_UNKNOWN_PROJECT', 'The server has no project yet.', 2);
  throw new UserError('DC_VALIDATION', `Name a project with --project: there are ${items.length} (${items.map((p) => p.name).join(', ')}).`, 2);
}

/** Streams an execution's output (stdout to stdout, stderr to stderr) until it ends; returns the final view. */
async function follow(api: ApiClient, id: string, onStatus?: (e: ExecutionView) => void): Promise<ExecutionView> {
  let final: ExecutionView | undefined;
  await api.events(`/api/v1/executions/${id}/events`, async (name, data) => {
    if (name === 'output') {
      const c = data as OutputChunkView;
      await write(c.stream === 'stderr' ? process.stderr : process.stdout, c.data);
    } else if (name === 'status') {
      onStatus?.(data as ExecutionView);
    } else if (name === 'end') {
      final = data as ExecutionView;
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
      return `djangocommand: ${e.command} failed with exit code ${e.exit_code}${why}`;
    case 'timed_out':
      return `djangocommand: ${e.command} timed out after ${e.timeout} s${why}`;
    default:
      return `djangocommand: ${e.command} ${e.status}${why}`;
  }
}

export function registerClientCommands(program: Command): void {
  clientOptions(program.command('run'))
    .description('Run a management command on a project and stream its output; exits with the command\'s exit code.')
    .argument('<command>', 'management command, e.g. migrate')
    .argument('[args...]', 'its arguments (put -- before them if they start with -)')
    .option('--project <name>', 'project (default: the only one)')
    .option('--timeout <seconds>', 'stop the command after this many seconds')
    .option('--detach', 'return at once, printing the execution id')
    .option('--wait', 'wait for the command to finish (the default)')
    .passThroughOptions()
    .action(async (command: string, args: string[], flags: Flags & { timeout?: string; detach?: boolean }) => {
      // `run migrate -- --fake` (as the help advises for arguments starting with -): the `--`
      // only ends our options; Django must not see it (it would make every later word positional).
      if (args[0] === '--') args = args.slice(1);
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      const timeout = flags.timeout === undefined ? undefined : Number(flags.timeout);
      if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1)) throw new UserError('DC_VALIDATION', '--timeout must be a whole number of seconds.', 2);
      const e = await api.request<ExecutionView>('POST', `/api/v1/projects/${enc(project)}/executions`, { command, argv: args, ...(timeout ? { timeout } : {}) });
      if (flags.detach) {
        out(flags.json ? JSON.stringify(e) : e.id);
        return;
      }
      process.stderr.write(`djangocommand: ${command} queued on ${project} as ${e.id}\n`);
      let interrupts = 0;
      const onInterrupt = () => {
        interrupts++;
        const force = interrupts > 1;
        process.stderr.write(force ? '\ndjangocommand: force-killing…\n' : '\ndjangocommand: cancelling… (Ctrl-C again to kill)\n');
        api.request('POST', `/api/v1/executions/${e.id}/cancel`, { force }).catch((err: Error) => process.stderr.write(`djangocommand: ${err.message}\n`));
      };
      process.on('SIGINT', onInterrupt);
      const final = await follow(api, e.id);
      process.off('SIGINT', onInterrupt);
      if (flags.json) out(JSON.stringify(final));
      process.stderr.write(endLines(final));
      process.exitCode = cliExitCode(final.status, final.exit_code, final.output_incomplete);
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
        for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) await write(process.stdout, Buffer.from(piece).toString('utf8'));
        return;
      }
      let buffer = '';
      const decoder = new TextDecoder();
      for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(piece, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const c = JSON.parse(buffer.slice(0, nl)) as OutputChunkView;
          buffer = buffer.slice(nl + 1);
          await write(c.stream === 'stderr' ? process.stderr : process.stdout, c.data);
        }
      }
    });

  clientOptions(program.command('cancel'))
    .description('Cancel an execution: SIGTERM, then SIGKILL after a grace period; --force kills at once.')
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
        out(`${e.id}  ${e.created_at}  ${e.project}  ${e.status.padEnd(10)} ${e.exit_code ?? ''}${dur}  ${e.command} ${e.args}  (${e.created_by})`);
      }
    });

  clientOptions(program.command('commands'))
    .description("List a project's commands, as its runner reported them.")
    .option('--project <name>', 'project (default: the only one)')
    .action(async (flags: Flags) => {
      const api = new ApiClient(flags);
      const project = await projectName(api, flags.project);
      const { items } = await api.request<{ items: CommandView[] }>('GET', `/api/v1/projects/${enc(project)}/commands`);
      if (flags.json) return out(JSON.stringify(items));
      for (const c of items) out(`${c.name.padEnd(28)} ${c.app_label}`);
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
