/**
 * Who may do what, from the command line, through the REST API:
 *   members list|add|remove --project P [EMAIL] [--role R]     (project admins)
 *   tokens list|create|revoke [--project P] [--read-only] [--expires 30d]
 *   ci-tokens list|create|revoke --project P [--role R]          (project admins)
 *   users list|create|disable|enable|remove|owner                (owners)
 *   sessions list|revoke [--user EMAIL]
 * The server decides; these print what it answers.
 */
import type { Command } from 'commander';
import { ApiClient, type ClientOptions } from './apiClient.js';
import { UserError } from '../shared/errors.js';
import { parseDuration } from '../domain/tokenRules.js';
import type { CiTokenView, MemberView, SessionView, TokenView, UserView } from '../shared/accessApi.js';

type Flags = ClientOptions & { json?: boolean; project?: string[] | string; role?: string; readOnly?: boolean; expires?: string; name?: string; user?: string; all?: boolean };

const out = (line = ''): void => void process.stdout.write(line + '\n');
const enc = encodeURIComponent;

function client(cmd: Command): Command {
  return cmd.option('--url <url>', 'server address (env DJANGOCOMMAND_URL)').option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)').option('--json', 'print JSON');
}

function usage(message: string): never {
  throw new UserError('DC_VALIDATION', message, undefined, { exitCode: 2 });
}

function projectOf(flags: Flags): string {
  const p = Array.isArray(flags.project) ? flags.project[0] : flags.project;
  if (!p) usage('Name the project: --project NAME.');
  return p;
}

/** "30d", "12h", "2w" → an ISO time that far from now; undefined: no --expires. */
function expiresAt(flags: Flags): string | undefined {
  if (flags.expires === undefined) return undefined;
  const ms = parseDuration(flags.expires);
  if (ms === undefined || ms <= 0) usage(`--expires takes a duration like 30d, 12h, 90m or 2w, not "${flags.expires}".`);
  return new Date(Date.now() + ms).toISOString();
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const when = (iso: string | null) => (iso ? iso.replace('T', ' ').slice(0, 16) : '-');

function table(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) out(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

function print<T>(flags: Flags, value: T, text: (v: T) => void): void {
  if (flags.json) out(JSON.stringify(value));
  else text(value);
}

export function registerAccessCommands(program: Command): void {
  const members = program.command('members').description("A project's members and their roles: viewer, operator, admin.");
  client(members.command('list'))
    .requiredOption('--project <name>', 'the project')
    .description('List the members of a project.')
    .action(async (flags: Flags) => {
      const r = await new ApiClient(flags).request<{ items: MemberView[] }>('GET', `/api/v1/projects/${enc(projectOf(flags))}/members`);
      print(flags, r, () => table([['EMAIL', 'ROLE', 'SINCE', ''], ...r.items.map((m) => [m.email, m.role, when(m.since), m.disabled ? 'disabled' : ''])]));
    });
  client(members.command('add <email>'))
    .requiredOption('--project <name>', 'the project')
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .description("Add a member to a project, or change a member's role (project admins).")
    .action(async (email: string, flags: Flags) => {
      const r = await new ApiClient(flags).request<{ role: string; added: boolean }>('PUT', `/api/v1/projects/${enc(projectOf(flags))}/members`, { email, role: flags.role });
      print(flags, r, () => out(`${email} is ${r.added ? 'now' : 'now, instead,'} ${r.role} of ${projectOf(flags)}.`));
    });
  client(members.command('remove <email>'))
    .requiredOption('--project <name>', 'the project')
    .description('Remove a member from a project; their live streams of it end at once.')
    .action(async (email: string, flags: Flags) => {
      const r = await new ApiClient(flags).request('DELETE', `/api/v1/projects/${enc(projectOf(flags))}/members/${enc(email)}`);
      print(flags, r, () => out(`${email} is no longer a member of ${projectOf(flags)}.`));
    });

  const tokens = program.command('tokens').description('Personal API tokens: they act as you, optionally limited to projects, read-only, expiring.');
  client(tokens.command('list'))
    .option('--all', "every user's tokens (owners)")
    .description('List your tokens (or everyone\'s with --all).')
    .action(async (flags: Flags) => {
      const r = await new ApiClient(flags).request<{ items: TokenView[] }>('GET', `/api/v1/tokens${flags.all ? '?all=true' : ''}`);
      print(flags, r, () =>
        table([
          ['ID', 'NAME', 'PREFIX', 'LIMITS', 'EXPIRES', 'LAST USED', 'STATE'],
          ...r.items.map((t) => [
            t.id,
            t.name,
            t.prefix,
            [t.read_only ? 'read-only' : '', t.project_ids ? `${t.project_ids.length} project(s)` : ''].filter(Boolean).join(', ') || '-',
            when(t.expires_at),
            when(t.last_used_at),
            t.revoked_at ? 'revoked' : t.expires_at && Date.parse(t.expires_at) <= Date.now() ? 'expired' : 'active',
          ]),
        ]),
      );
    });
  client(tokens.command('create'))
    .option('--name <name>', 'a label for the token', 'cli')
    .option('--project <name>', 'limit it to this project (repeat for several)', collect)
    .option('--read-only', 'it may only read (viewer in every project)')
    .option('--expires <duration>', 'it stops working after this long: 30d, 12h, 2w')
    .description('Create a personal API token (shown once).')
    .action(async (flags: Flags) => {
      const projects = Array.isArray(flags.project) ? flags.project : flags.project ? [flags.project] : undefined;
      const r = await new ApiClient(flags).request<TokenView & { token: string }>('POST', '/api/v1/tokens', {
        name: flags.name,
        ...(projects ? { projects } : {}),
        ...(flags.readOnly ? { read_only: true } : {}),
        ...(flags.expires ? { expires_at: expiresAt(flags) } : {}),
      });
      print(flags, r, () => {
        out(`API token ${r.name} (shown once): ${r.token}`);
        out(`Use it with: export DJANGOCOMMAND_TOKEN=${r.token}`);
      });
    });
  client(tokens.command('revoke <id>'))
    .description('Revoke a token (yours, or anyone\'s for an owner); its live streams end at once.')
    .action(async (id: string, flags: Flags) => {
      const r = await new ApiClient(flags).request('POST', `/api/v1/tokens/${enc(id)}/revoke`);
      print(flags, r, () => out(`Revoked token ${id}.`));
    });

  const ci = program.command('ci-tokens').description('Tokens for CI: one role in one project, no person behind them (project admins).');
  client(ci.command('list'))
    .requiredOption('--project <name>', 'the project')
    .description("List a project's CI tokens.")
    .action(async (flags: Flags) => {
      const r = await new ApiClient(flags).request<{ items: CiTokenView[] }>('GET', `/api/v1/projects/${enc(projectOf(flags))}/ci-tokens`);
      print(flags, r, () =>
        table([['ID', 'NAME', 'ROLE', 'PREFIX', 'EXPIRES', 'LAST USED', 'STATE'], ...r.items.map((t) => [t.id, t.name, t.role, t.prefix, when(t.expires_at), when(t.last_used_at), t.revoked_at ? 'revoked' : 'active'])]),
      );
    });
  client(ci.command('create <name>'))
    .requiredOption('--project <name>', 'the project')
    .option('--role <role>', 'viewer, operator or admin', 'operator')
    .option('--expires <duration>', 'it stops working after this long: 90d, 2w')
    .description('Create a CI token (shown once).')
    .action(async (name: string, flags: Flags) => {
      const r = await new ApiClient(flags).request<CiTokenView & { token: string }>('POST', `/api/v1/projects/${enc(projectOf(flags))}/ci-tokens`, {
        name,
        role: flags.role,
        ...(flags.expires ? { expires_at: expiresAt(flags) } : {}),
      });
      print(flags, r, () => {
        out(`CI token ${r.name} (${r.role} of ${projectOf(flags)}, shown once): ${r.token}`);
        out('Store it as a secret of your CI, as DJANGOCOMMAND_TOKEN.');
      });
    });
  client(ci.command('revoke <id>'))
    .requiredOption('--project <name>', 'the project')
    .description('Revoke a CI token.')
    .action(async (id: string, flags: Flags) => {
      const r = await new ApiClient(flags).request('POST', `/api/v1/projects/${enc(projectOf(flags))}/ci-tokens/${enc(id)}/revoke`);
      print(flags, r, () => out(`Revoked CI token ${id}.`));
    });

  const users = program.command('users').description('People on this server (owners).');
  client(users.command('list'))
    .description('List users.')
    .action(async (flags: Flags) => {
      const r = await new ApiClient(flags).request<{ items: UserView[] }>('GET', '/api/v1/users');
      print(flags, r, () =>
        table([['EMAIL', 'OWNER', 'STATE', 'CREATED'], ...r.items.map((u) => [u.email, u.owner ? 'owner' : '', u.disabled ? 'disabled' : u.must_change_password ? 'one-time password' : 'active', when(u.created_at)])]),
      );
    });
  client(users.command('create <email>'))
    .option('--owner', 'a server-wide owner')
    .description('Create a user with a one-time password (read from DJANGOCOMMAND_NEW_USER_PASSWORD, or generated and shown once).')
    .action(async (email: string, flags: Flags & { owner?: boolean }) => {
      const given = process.env.DJANGOCOMMAND_NEW_USER_PASSWORD;
      const password = given || (await import('node:crypto')).randomBytes(18).toString('base64url');
      const r = await new ApiClient(flags).request<UserView>('POST', '/api/v1/users', { email, password, owner: !!flags.owner, one_time_password: true });
      print(flags, given ? r : { ...r, password }, () => out(`Created ${r.owner ? 'owner' : 'user'} ${r.email}.${given ? '' : ` One-time password (shown once): ${password}`}`));
    });
  for (const [verb, body, said] of [
    ['disable', { disabled: true }, 'is disabled: their sessions, tokens and live streams ended'],
    ['enable', { disabled: false }, 'is enabled again'],
  ] as const) {
    client(users.command(`${verb} <email>`))
      .description(verb === 'disable' ? 'Disable a user: sessions, tokens and live streams end at once; history stays attributed.' : 'Enable a disabled user.')
      .action(async (email: string, flags: Flags) => {
        const r = await new ApiClient(flags).request<UserView>('PATCH', `/api/v1/users/${enc(email)}`, body);
        print(flags, r, () => out(`${email} ${said}.`));
      });
  }
  client(users.command('owner <email>'))
    .option('--revoke', 'take the owner role away instead')
    .description('Make a user a server-wide owner (or not, with --revoke).')
    .action(async (email: string, flags: Flags & { revoke?: boolean }) => {
      const r = await new ApiClient(flags).request<UserView>('PATCH', `/api/v1/users/${enc(email)}`, { owner: !flags.revoke });
      print(flags, r, () => out(`${email} is ${r.owner ? 'now an owner' : 'no longer an owner'}.`));
    });
  client(users.command('remove <email>'))
    .description('Remove a user: memberships, tokens and sessions end; their history stays attributed to them.')
    .action(async (email: string, flags: Flags) => {
      const r = await new ApiClient(flags).request('DELETE', `/api/v1/users/${enc(email)}`);
      print(flags, r, () => out(`Removed ${email}.`));
    });

  const sessions = program.command('sessions').description('Signed-in browser sessions.');
  client(sessions.command('list'))
    .requiredOption('--user <email>', 'whose (yours, or anyone\'s for an owner)')
    .description("List a user's browser sessions.")
    .action(async (flags: Flags) => {
      const r = await new ApiClient(flags).request<{ items: SessionView[] }>('GET', `/api/v1/users/${enc(flags.user!)}/sessions`);
      print(flags, r, () => table([['ID', 'ADDRESS', 'SIGNED IN', 'EXPIRES'], ...r.items.map((s) => [s.id.slice(0, 16), s.address ?? '-', when(s.created_at), when(s.expires_at)])]));
    });
  client(sessions.command('revoke <id>'))
    .requiredOption('--user <email>', 'whose')
    .description('End a browser session (the full id from `sessions list --json`, or its first 16 characters).')
    .action(async (id: string, flags: Flags) => {
      const api = new ApiClient(flags);
      const path = `/api/v1/users/${enc(flags.user!)}/sessions`;
      const full = id.length >= 64 ? id : (await api.request<{ items: SessionView[] }>('GET', path)).items.find((s) => s.id.startsWith(id))?.id;
      if (!full) throw new UserError('DC_UNKNOWN_SESSION', `${flags.user} has no session starting with ${id}.`);
      const r = await api.request('DELETE', `${path}/${enc(full)}`);
      print(flags, r, () => out(`Ended session ${id}.`));
    });
}
