/**
 * `djangocommand channel ...`: notification channels over the REST API (create, list, test,
 * deliveries, delete), each with --json. Secrets are shown once, by `create`.
 */
import type { Command } from 'commander';
import { ApiClient, type ClientOptions } from './apiClient.js';
import type { ChannelView, CreatedChannelView, DeliveryView, TestChannelView } from '../shared/notificationsApi.js';
import { UserError } from '../shared/errors.js';

type Flags = ClientOptions & { json?: boolean };

const out = (line: string): void => void process.stdout.write(line + '\n');
const enc = encodeURIComponent;

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server address (env DJANGOCOMMAND_URL)')
    .option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)')
    .option('--json', 'print JSON');
}

function channelLine(c: ChannelView): string {
  const scope = c.project ?? 'all projects';
  const filters = [c.commands ? `commands ${c.commands}` : '', c.slow_after ? `slow after ${c.slow_after} s` : ''].filter(Boolean).join(', ');
  const last = c.last_delivery ? `  last: ${c.last_delivery.status} ${c.last_delivery.at}${c.last_delivery.error ? ` (${c.last_delivery.error})` : ''}` : '';
  return `${c.id}  ${c.kind.padEnd(7)} ${scope.padEnd(14)} ${nameAndTarget(c)}  on ${c.on.join(',')}${filters ? `  (${filters})` : ''}${last}`;
}

function deliveryLines(d: DeliveryView): string[] {
  const next = d.next_attempt_at ? `, next attempt ${d.next_attempt_at}` : '';
  const lines = [`#${d.id}  ${d.status.padEnd(9)} ${d.created_at}  ${d.summary}${next}`];
  for (const a of d.attempts) lines.push(`    ${a.at}  ${a.ok ? 'ok    ' : 'failed'}  ${a.status_code ?? '-'}  ${a.duration_ms} ms${a.error ? `  ${a.error}` : ''}`);
  return lines;
}

function seconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 604_800) {
    throw new UserError('DC_VALIDATION', `--slow-after must be a whole number of seconds from 1 to 604800, not "${value}".`, undefined, { exitCode: 2 });
  }
  return Number(value);
}

export function registerNotificationCommands(program: Command): void {
  const channel = program.command('channel').description('Notification channels: Slack, signed webhooks and email, per project or server-wide.');

  // Here --url is the channel's URL, as people write it; the server address comes from
  // DJANGOCOMMAND_URL or --server-url.
  channel
    .command('create')
    .option('--server-url <url>', 'server address (env DJANGOCOMMAND_URL)')
    .option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)')
    .option('--json', 'print JSON')
    .description('Create a channel (admins). A webhook\u2019s signing secret is printed once.')
    .option('--project <name>', 'the project it hears')
    .option('--all-projects', 'a server-wide channel: it hears every project')
    .requiredOption('--kind <kind>', 'slack, webhook or email')
    .option('--url <url>', 'slack/webhook: the URL to POST to (its secret); email: an smtp:// server of its own')
    .option('--to <addresses>', 'email: comma-separated recipients')
    .option('--secret <secret>', 'webhook: the signing secret (default: generated)')
    .option('--on <events>', 'comma list of failure,success,recovery,slow,runner,missed,health,shell,approval (default: all but success and slow)')
    .option('--commands <glob>', 'only commands matching these comma-separated globs, e.g. "migrate,clear*"')
    .option('--slow-after <seconds>', 'report executions running longer than this (adds "slow")')
    .option('--name <name>', 'a name to tell channels apart')
    .action(async (flags: Flags & { serverUrl?: string; project?: string; allProjects?: boolean; kind: string; to?: string; secret?: string; on?: string; commands?: string; slowAfter?: string; name?: string }) => {
      const channelUrl = flags.url;
      if (!flags.project === !flags.allProjects) {
        throw new UserError('DC_VALIDATION', 'Give --project NAME for one project\u2019s channel, or --all-projects for a server-wide one.', undefined, { exitCode: 2 });
      }
      const api = new ApiClient({ url: flags.serverUrl, token: flags.token });
      const body = {
        project: flags.allProjects ? null : flags.project!,
        kind: flags.kind,
        ...(channelUrl !== undefined ? { url: channelUrl } : {}),
        ...(flags.to !== undefined ? { to: flags.to.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
        ...(flags.secret !== undefined ? { secret: flags.secret } : {}),
        ...(flags.on !== undefined ? { on: flags.on.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
        ...(flags.commands !== undefined ? { commands: flags.commands } : {}),
        ...(flags.slowAfter !== undefined ? { slow_after: seconds(flags.slowAfter) } : {}),
        ...(flags.name !== undefined ? { name: flags.name } : {}),
      };
      const c = await api.request<CreatedChannelView>('POST', '/api/v1/channels', body);
      if (flags.json) return out(JSON.stringify(c));
      out(`Created channel ${c.id}: ${nameAndTarget(c)}, on ${c.on.join(',')}`);
      if (c.secret) out(`Signing secret (shown once, give it to the receiver): ${c.secret}`);
      out(`Try it: djangocommand channel test ${c.id}`);
    });

  clientOptions(channel.command('list'))
    .description('List channels (secrets are never shown).')
    .option('--project <name>', 'only this project\u2019s channels')
    .action(async (flags: Flags & { project?: string }) => {
      const api = new ApiClient(flags);
      const { items } = await api.request<{ items: ChannelView[] }>('GET', `/api/v1/channels${flags.project ? `?project=${enc(flags.project)}` : ''}`);
      if (flags.json) return out(JSON.stringify(items));
      if (items.length === 0) return out('No channel yet: djangocommand channel create --project P --kind slack|webhook|email ...');
      for (const c of items) out(channelLine(c));
    });

  clientOptions(channel.command('test <id>'))
    .description('Send a test message through the channel and wait for the first attempt (exit 1 when it failed).')
    .option('--wait <seconds>', 'how long to wait for the attempt', '20')
    .action(async (id: string, flags: Flags & { wait: string }) => {
      const api = new ApiClient(flags);
      const wait = Number(flags.wait);
      if (!Number.isInteger(wait) || wait < 0 || wait > 60) throw new UserError('DC_VALIDATION', '--wait must be a whole number of seconds from 0 to 60.', undefined, { exitCode: 2 });
      const r = await api.request<TestChannelView>('POST', `/api/v1/channels/${enc(id)}/test`, { wait });
      const last = r.delivery?.attempts.at(-1);
      if (flags.json) out(JSON.stringify(r));
      else if (!r.delivery || !last) out(`Test message queued (event ${r.event_id}); no attempt yet: see djangocommand channel deliveries ${id}`);
      else for (const line of deliveryLines(r.delivery)) out(line);
      if (last && !last.ok) process.exitCode = 1;
    });

  clientOptions(channel.command('deliveries <id>'))
    .description('The channel\u2019s deliveries, newest first, each with its attempts (time, HTTP status, error).')
    .option('--limit <n>', 'how many', '20')
    .action(async (id: string, flags: Flags & { limit: string }) => {
      const api = new ApiClient(flags);
      const { items } = await api.request<{ items: DeliveryView[] }>('GET', `/api/v1/channels/${enc(id)}/deliveries?limit=${enc(flags.limit)}`);
      if (flags.json) return out(JSON.stringify(items));
      if (items.length === 0) return out('No delivery yet.');
      for (const d of items) for (const line of deliveryLines(d)) out(line);
    });

  clientOptions(channel.command('delete <id>'))
    .description('Delete a channel (admins); what it had not sent yet is cancelled.')
    .action(async (id: string, flags: Flags) => {
      const api = new ApiClient(flags);
      const c = await api.request<ChannelView>('DELETE', `/api/v1/channels/${enc(id)}`);
      if (flags.json) return out(JSON.stringify(c));
      out(`Deleted channel ${c.id} (${c.name}).`);
    });
}

/** The default name already says where messages go ("webhook to https://…"): then once is enough. */
function nameAndTarget(c: { name: string; target: string }): string {
  return c.name.includes(c.target) ? c.name : `${c.name} → ${c.target}`;
}
