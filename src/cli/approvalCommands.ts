/**
 * Four-eyes approvals and command settings from the CLI, through the REST API:
 *   djangocommand approve ID [--comment C]      djangocommand deny ID [--comment C]
 *   djangocommand approvals [--project P]        (requests waiting for a decision)
 *   djangocommand command-settings PROJECT COMMAND [--metadata-only on|off] [--timeout 30m]
 *     [--max-concurrency N] [--read-only on|off] [--requires-approval on|off]
 *     [--approval-pattern REGEX] [--approver-role operator|admin] [--approval-expiry 24h]
 * `run` waits for approval itself (awaitingApprovalLine says what it waits for, and where).
 */
import type { Command } from 'commander';
import { ApiClient, type ClientOptions } from './apiClient.js';
import type { ExecutionView } from '../shared/api.js';
import type { ApprovalView, CommandSettingsView, UpdateCommandSettingsRequest } from '../shared/commandSettingsApi.js';
import { parseDuration } from '../domain/tokenRules.js';
import { UserError } from '../shared/errors.js';

type Flags = ClientOptions & { json?: boolean };
const out = (line = ''): void => void process.stdout.write(line + '\n');
const enc = encodeURIComponent;

function client(cmd: Command): Command {
  return cmd.option('--url <url>', 'server address (env DJANGOCOMMAND_URL)').option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)').option('--json', 'print JSON');
}

/** What `run` prints when its execution waits for approval: what, who may decide, where. */
export function awaitingApprovalLine(base: string, e: Pick<ExecutionView, 'id' | 'command' | 'args' | 'project'>): string {
  return (
    `djangocommand: ${e.command}${e.args ? ` ${e.args}` : ''} on ${e.project} needs approval by another member before it runs (four-eyes); waiting.\n` +
    `djangocommand:   approve or deny it at ${base}/#/executions/${e.id}\n` +
    `djangocommand:   or: djangocommand approve ${e.id} [--comment ...]   (Ctrl-C withdraws the request)\n`
  );
}

/** `run`'s status callback while it waits: says once when the request was approved. */
export function approvalNotice(): (e: ExecutionView) => void {
  let said = false;
  return (e) => {
    if (said || e.status === 'awaiting_approval') return;
    said = true;
    if (e.status === 'queued' || e.status === 'dispatched' || e.status === 'running') process.stderr.write(`djangocommand: approved; ${e.command} is ${e.status}\n`);
  };
}

function onOff(option: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'on' || value === 'true') return true;
  if (value === 'off' || value === 'false') return false;
  throw new UserError('DC_VALIDATION', `${option} takes on or off, not "${value}".`, undefined, { exitCode: 2 });
}

/** "30m", "2h", "1d" or a number of seconds; "default" (null) goes back to the server's. */
function duration(option: string, value: string | undefined, allowDefault: boolean): number | null | undefined {
  if (value === undefined) return undefined;
  if (allowDefault && value === 'default') return null;
  if (/^\d{1,9}s?$/.test(value)) return Number(value.replace(/s$/, ''));
  const ms = parseDuration(value);
  if (ms === undefined) throw new UserError('DC_VALIDATION', `${option} takes a duration like 90s, 30m, 2h or 1d${allowDefault ? ', or "default"' : ''}, not "${value}".`, undefined, { exitCode: 2 });
  return ms / 1000;
}

function showSettings(s: CommandSettingsView): void {
  const secs = (n: number) => (n % 3600 === 0 ? `${n / 3600} h` : n % 60 === 0 ? `${n / 60} min` : `${n} s`);
  out(`${s.project} ${s.command}:`);
  out(`  metadata-only:     ${s.metadata_only ? 'on' : 'off'}`);
  out(`  default timeout:   ${s.default_timeout_seconds === null ? "server's default" : secs(s.default_timeout_seconds)}`);
  out(`  max concurrency:   ${s.max_concurrency === null ? "server's default" : s.max_concurrency}`);
  out(`  read-only:         ${s.read_only_default ? 'on' : 'off'}`);
  out(`  requires approval: ${s.requires_approval ? (s.approval_pattern ? `when the arguments match /${s.approval_pattern}/` : 'on') : 'off'}`);
  if (s.requires_approval) out(`  approver role:     ${s.approver_role} (requests expire after ${secs(s.approval_expiry_seconds)})`);
  if (s.updated_by) out(`  last changed by ${s.updated_by} at ${s.updated_at}`);
}

export function registerApprovalCommands(program: Command): void {
  for (const verb of ['approve', 'deny'] as const) {
    client(program.command(verb))
      .description(verb === 'approve' ? 'Approve an execution that waits for approval (not one you asked for).' : 'Deny an execution that waits for approval: it ends rejected.')
      .argument('<id>', 'execution id')
      .option('--comment <text>', 'why (kept in the audit log)')
      .action(async (id: string, flags: Flags & { comment?: string }) => {
        const e = await new ApiClient(flags).request<ExecutionView>('POST', `/api/v1/executions/${enc(id)}/${verb}`, flags.comment !== undefined ? { comment: flags.comment } : {});
        out(flags.json ? JSON.stringify(e) : `${e.id} ${verb === 'approve' ? 'approved' : 'denied'}: ${e.command} is ${e.status}`);
      });
  }

  client(program.command('approvals'))
    .description('List the executions waiting for approval, oldest first.')
    .option('--project <name>', 'only this project')
    .action(async (flags: Flags & { project?: string }) => {
      const { items } = await new ApiClient(flags).request<{ items: ApprovalView[] }>('GET', `/api/v1/approvals${flags.project ? `?project=${enc(flags.project)}` : ''}`);
      if (flags.json) return out(JSON.stringify(items));
      if (items.length === 0) return out('Nothing waits for approval.');
      for (const a of items) out(`${a.execution_id}  ${a.project}  ${a.command}${a.args ? ` ${a.args}` : ''}  asked by ${a.requested_by} at ${a.requested_at}, expires ${a.expires_at}`);
    });

  client(program.command('command-settings'))
    .description("Show or change a command's settings (changing needs the admin role in the project; every change is audited).")
    .argument('<project>', 'project')
    .argument('<command>', 'management command')
    .option('--metadata-only <on|off>', 'keep no output of its runs')
    .option('--timeout <duration>', 'default timeout of a run that names none: 90s, 30m, 2h, or "default"')
    .option('--max-concurrency <n>', 'runs active at once, or "default"')
    .option('--read-only <on|off>', 'every run in read-only database mode')
    .option('--requires-approval <on|off>', 'runs wait until another member approves (four-eyes)')
    .option('--approval-pattern <regex>', 'only runs whose arguments (joined as shell words) match need approval; "" for every run')
    .option('--approver-role <role>', 'least role that may approve: operator or admin')
    .option('--approval-expiry <duration>', 'an unanswered request is rejected after this (default 24h)')
    .action(async (project: string, command: string, flags: Flags & Record<string, string | undefined>) => {
      const body: UpdateCommandSettingsRequest = {};
      const metadataOnly = onOff('--metadata-only', flags.metadataOnly);
      const readOnly = onOff('--read-only', flags.readOnly);
      const approval = onOff('--requires-approval', flags.requiresApproval);
      const timeout = duration('--timeout', flags.timeout, true);
      const expiry = duration('--approval-expiry', flags.approvalExpiry, false);
      if (metadataOnly !== undefined) body.metadata_only = metadataOnly;
      if (readOnly !== undefined) body.read_only_default = readOnly;
      if (approval !== undefined) body.requires_approval = approval;
      if (timeout !== undefined) body.default_timeout_seconds = timeout;
      if (expiry !== undefined && expiry !== null) body.approval_expiry_seconds = expiry;
      if (flags.maxConcurrency !== undefined) {
        if (flags.maxConcurrency !== 'default' && !/^\d{1,4}$/.test(flags.maxConcurrency)) throw new UserError('DC_VALIDATION', `--max-concurrency takes a whole number or "default", not "${flags.maxConcurrency}".`, undefined, { exitCode: 2 });
        body.max_concurrency = flags.maxConcurrency === 'default' ? null : Number(flags.maxConcurrency);
      }
      if (flags.approvalPattern !== undefined) body.approval_pattern = flags.approvalPattern === '' ? null : flags.approvalPattern;
      if (flags.approverRole !== undefined) body.approver_role = flags.approverRole as 'operator' | 'admin';
      const api = new ApiClient(flags);
      const path = `/api/v1/projects/${enc(project)}/commands/${enc(command)}/settings`;
      const s = await api.request<CommandSettingsView>(Object.keys(body).length > 0 ? 'PUT' : 'GET', path, Object.keys(body).length > 0 ? body : undefined);
      if (flags.json) out(JSON.stringify(s));
      else showSettings(s);
    });
}
