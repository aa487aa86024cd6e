/** `djangocommand server` and `djangocommand admin ...`: run on the server host, straight on its database. */
import type { Command } from 'commander';
import { resolveServerConfig, type ServerSettingKey } from '../config/serverConfig.js';
import { serve } from '../server/serve.js';
import { openStore } from '../store/openStore.js';
import type { Core } from '../core/context.js';
import { LocalNotifier } from '../core/notifier.js';
import { hostActor } from '../core/audit.js';
import { registerAuditAdminCommands } from './auditCommands.js';
import { registerKeyAdminCommands } from './keyCommands.js';
import { assertKeyUnused } from '../core/keyRotation.js';
import { createProject, createRunnerKey, resolveProject, revokeRunnerKey } from '../core/projects.js';
import { createToken, createUser, normaliseEmail } from '../core/accounts.js';
import { hostPrincipal } from '../core/access.js';
import { removeMember, setMember, setOwner, setUserDisabled } from '../core/members.js';
import { parseDuration } from '../domain/tokenRules.js';
import { newPassword } from '../core/secrets.js';
import { UserError } from '../shared/errors.js';
import { runnerKeyView } from '../shared/views.js';

interface DbFlags {
  dataDir?: string;
  databaseUrl?: string;
  json?: boolean;
}

function dbOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data folder holding the SQLite database (env DJANGOCOMMAND_DATA_DIR)')
    .option('--database-url <url>', 'postgres://... to use PostgreSQL (env DATABASE_URL)');
}

async function withCore<T>(flags: DbFlags, fn: (core: Core) => Promise<T>): Promise<T> {
  const config = resolveServerConfig({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl });
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    return await fn({ store, notifier: new LocalNotifier(), now: Date.now, settings: config.core });
  } finally {
    await store.close();
  }
}

const out = (line: string): void => void process.stdout.write(line + '\n');

export function registerServerCommands(program: Command): void {
  dbOptions(program.command('server'))
    .description('Start the server: REST API, runner endpoints, scheduler of timeouts and lost runners.')
    .option('--host <host>', 'address to listen on (env DJANGOCOMMAND_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (env DJANGOCOMMAND_PORT, default 8600)')
    .action(async (flags: DbFlags & { host?: string; port?: string }) => {
      const config = resolveServerConfig({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl, host: flags.host, port: flags.port } as Partial<
        Record<ServerSettingKey, string>
      >);
      const server = await serve(config, out);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        out(`received ${signal}, stopping`);
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });

  const admin = program.command('admin').description('Administer the server, straight on its database (run where the server runs).');
  registerAuditAdminCommands(admin);
  registerKeyAdminCommands(admin);

  dbOptions(admin.command('create-project <name>'))
    .description("Create a project and print its runner API key (shown once; put it in the Django settings' DJANGOCOMMAND_API_KEY).")
    .option('--json', 'print JSON')
    .action((name: string, flags: DbFlags) =>
      withCore(flags, async (core) => {
        const { project, key, secret } = await createProject(core, hostActor(), name);
        if (flags.json) out(JSON.stringify({ project: { id: project.id, name: project.name }, key: secret, key_id: key.id, key_prefix: key.prefix }));
        else {
          out(`Created project "${project.name}".`);
          out(`Runner API key (shown once, store it now): ${secret}`);
          out(`In the Django settings: DJANGOCOMMAND_API_KEY = "${secret}"`);
        }
      }),
    );

  dbOptions(admin.command('create-key <project>'))
    .description('Create another runner API key for a project (e.g. to rotate keys).')
    .option('--name <name>', 'a label for the key', 'cli')
    .option('--json', 'print JSON')
    .action((projectName: string, flags: DbFlags & { name: string }) =>
      withCore(flags, async (core) => {
        const project = await resolveProject(core, projectName);
        const { key, secret } = await createRunnerKey(core, hostActor(), project, flags.name);
        if (flags.json) out(JSON.stringify({ project: project.name, key: secret, key_id: key.id, key_prefix: key.prefix }));
        else out(`Runner API key for "${project.name}" (shown once): ${secret}`);
      }),
    );

  dbOptions(admin.command('revoke-key <key>'))
    .description('Revoke a runner API key, given as the key, its prefix (dc_xxxxxxxx) or its id.')
    .option('--if-unused', 'refuse while a runner is connected with the key (after a rotate-key)')
    .option('--json', 'print JSON')
    .action((ref: string, flags: DbFlags & { ifUnused?: boolean }) =>
      withCore(flags, async (core) => {
        if (flags.ifUnused) await assertKeyUnused(core, ref);
        const key = await revokeRunnerKey(core, hostActor(), ref);
        if (flags.json) out(JSON.stringify(runnerKeyView(key)));
        else out(`Revoked runner key ${key.prefix}… (${key.id}).`);
      }),
    );

  dbOptions(admin.command('list-projects'))
    .description('List projects with their runner keys (prefixes only) and runners.')
    .option('--json', 'print JSON')
    .action((flags: DbFlags) =>
      withCore(flags, async (core) => {
        const rows = [];
        for (const p of await core.store.listProjects()) {
          const keys = (await core.store.listRunnerKeys(p.id)).map(runnerKeyView);
          const runners = await core.store.listRunners(p.id);
          rows.push({ id: p.id, name: p.name, created_at: new Date(p.createdAt).toISOString(), keys, runners: runners.length });
        }
        if (flags.json) return out(JSON.stringify(rows));
        if (rows.length === 0) return out('No projects. Create one with `djangocommand admin create-project NAME`.');
        for (const r of rows) {
          out(`${r.name}  (${r.id}, ${r.runners} runner(s) seen)`);
          for (const k of r.keys) out(`  key ${k.prefix}…  ${k.name}  created ${k.created_at}${k.revoked_at ? `  REVOKED ${k.revoked_at}` : ''}`);
        }
      }),
    );

  dbOptions(admin.command('create-token'))
    .description('Create a personal API token for the CLI or CI (for the first owner unless --user is given).')
    .option('--user <email>', 'the user the token acts as')
    .option('--name <name>', 'a label for the token', 'cli')
    .option('--project <name>', 'limit it to this project (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--read-only', 'it may only read')
    .option('--expires <duration>', 'it stops working after this long: 30d, 12h, 2w')
    .option('--json', 'print JSON')
    .action((flags: DbFlags & { user?: string; name: string; project?: string[]; readOnly?: boolean; expires?: string }) =>
      withCore(flags, async (core) => {
        const users = await core.store.listUsers();
        const user = flags.user ? await core.store.findUserByEmail(normaliseEmail(flags.user)) : users.find((u) => u.isAdmin);
        if (!user || user.removedAt !== null) {
          throw new UserError(
            'DC_UNKNOWN_USER',
            flags.user ? `No user ${flags.user}.` : 'No owner exists yet: start the server once (it creates the first owner).', undefined, { exitCode: 2 },
          );
        }
        const ms = flags.expires === undefined ? undefined : parseDuration(flags.expires);
        if (ms === 0 || (flags.expires !== undefined && ms === undefined)) throw new UserError('DC_VALIDATION', `--expires takes a duration like 30d, 12h or 2w, not "${flags.expires}".`, undefined, { exitCode: 2 });
        const { token, secret } = await createToken(core, hostActor(), user, flags.name, {
          projects: flags.project,
          readOnly: flags.readOnly,
          expiresAt: ms === undefined ? null : core.now() + ms,
        });
        if (flags.json) out(JSON.stringify({ token: secret, id: token.id, user: user.email, prefix: token.prefix }));
        else {
          out(`API token for ${user.email} (shown once): ${secret}`);
          out(`Use it with: export DJANGOCOMMAND_TOKEN=${secret}`);
        }
      }),
    );

  dbOptions(admin.command('set-member <project> <email>'))
    .description("Make a user a member of a project, or change their role (viewer, operator, admin).")
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .action((projectName: string, email: string, flags: DbFlags & { role: string }) =>
      withCore(flags, async (core) => {
        const project = await resolveProject(core, projectName);
        const r = await setMember(core, hostPrincipal(hostActor()), project, email, flags.role);
        out(`${r.user.email} is ${r.role} of ${project.name}.`);
      }),
    );

  dbOptions(admin.command('remove-member <project> <email>'))
    .description('Remove a user from a project.')
    .action((projectName: string, email: string, flags: DbFlags) =>
      withCore(flags, async (core) => {
        const project = await resolveProject(core, projectName);
        await removeMember(core, hostPrincipal(hostActor()), project, email);
        out(`${email} is no longer a member of ${project.name}.`);
      }),
    );

  for (const [verb, disabled] of [
    ['disable-user', true],
    ['enable-user', false],
  ] as const) {
    dbOptions(admin.command(`${verb} <email>`))
      .description(disabled ? 'Disable a user: their sessions, tokens and live streams end at once.' : 'Enable a disabled user.')
      .action((email: string, flags: DbFlags) =>
        withCore(flags, async (core) => {
          const user = await setUserDisabled(core, hostPrincipal(hostActor()), email, disabled);
          out(`${user.email} is ${disabled ? 'disabled' : 'enabled'}.`);
        }),
      );
  }

  dbOptions(admin.command('set-owner <email>'))
    .description('Make a user a server-wide owner (or not, with --revoke): the way back in when no owner can sign in.')
    .option('--revoke', 'take the owner role away instead')
    .action((email: string, flags: DbFlags & { revoke?: boolean }) =>
      withCore(flags, async (core) => {
        const user = await setOwner(core, hostPrincipal(hostActor()), email, !flags.revoke);
        out(`${user.email} is ${user.isAdmin ? 'an owner' : 'no longer an owner'}.`);
      }),
    );

  dbOptions(admin.command('create-user <email>'))
    .description('Create a user; prints a generated password once (or reads DJANGOCOMMAND_NEW_USER_PASSWORD).')
    .option('--owner', 'make the user a server-wide owner')
    .option('--admin', 'the same as --owner (earlier versions)')
    .option('--json', 'print JSON')
    .action((email: string, flags: DbFlags & { admin?: boolean; owner?: boolean }) =>
      withCore(flags, async (core) => {
        const given = process.env.DJANGOCOMMAND_NEW_USER_PASSWORD;
        const password = given || newPassword();
        // A generated password is one-time: the first sign-in sets the person's own.
        const user = await createUser(core, hostActor(), { email, password, isAdmin: !!(flags.owner || flags.admin), oneTimePassword: !given });
        if (flags.json) out(JSON.stringify({ id: user.id, email: user.email, owner: user.isAdmin, is_admin: user.isAdmin, ...(given ? {} : { password }) }));
        else out(`Created ${user.isAdmin ? 'owner' : 'user'} ${user.email}.${given ? '' : ` One-time password (shown once): ${password}`}`);
      }),
    );
}
