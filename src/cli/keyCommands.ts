/**
 * `djangocommand admin rotate-key PROJECT`: a new runner key, with the old keys still valid and
 * the runners still using each, so the runners can be moved one by one before the old key is
 * revoked (`admin revoke-key OLD --if-unused` refuses while a runner is connected with it).
 */
import type { Command } from 'commander';
import { resolveServerConfig } from '../config/serverConfig.js';
import { openStore } from '../store/openStore.js';
import { LocalNotifier } from '../core/notifier.js';
import { hostActor } from '../core/audit.js';
import { resolveProject } from '../core/projects.js';
import { rotateRunnerKey } from '../core/keyRotation.js';

interface Flags {
  dataDir?: string;
  databaseUrl?: string;
  json?: boolean;
  name: string;
}

const out = (line: string): void => void process.stdout.write(line + '\n');

export function registerKeyAdminCommands(admin: Command): void {
  admin
    .command('rotate-key <project>')
    .description("Create a new runner key for a project without cutting off its runners: the old keys stay valid until revoked. Lists the runners still using each old key.")
    .option('--data-dir <dir>', 'data folder holding the SQLite database (env DJANGOCOMMAND_DATA_DIR)')
    .option('--database-url <url>', 'postgres://... to use PostgreSQL (env DATABASE_URL)')
    .option('--name <name>', 'a label for the new key', 'rotated')
    .option('--json', 'print JSON')
    .action(async (projectName: string, flags: Flags) => {
      const config = resolveServerConfig({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl });
      const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
      try {
        const core = { store, notifier: new LocalNotifier(), now: Date.now, settings: config.core };
        const project = await resolveProject(core, projectName);
        const { key, secret, previous } = await rotateRunnerKey(core, hostActor(), project, flags.name);
        if (flags.json) {
          out(
            JSON.stringify({
              project: project.name,
              key: secret,
              key_id: key.id,
              key_prefix: key.prefix,
              previous: previous.map((u) => ({
                key_id: u.key.id,
                key_prefix: u.key.prefix,
                name: u.key.name,
                runners: u.runners.map(({ runner, online }) => ({ id: runner.id, hostname: runner.hostname, address: runner.address, protocol: runner.protocol, online, last_seen_at: new Date(runner.lastSeenAt).toISOString() })),
              })),
            }),
          );
          return;
        }
        out(`New runner API key for "${project.name}" (shown once): ${secret}`);
        out('');
        out('The old keys stay valid until you revoke them:');
        for (const u of previous) {
          const online = u.runners.filter((r) => r.online);
          out(`  ${u.key.prefix}…  ${u.key.name}  ${online.length ? `used by ${online.length} online runner(s): ${online.map(({ runner }) => runner.hostname || runner.address).join(', ')}` : 'no online runner'}`);
        }
        out('');
        out('Next: set DJANGOCOMMAND_API_KEY to the new key on each runner host and restart its runner');
        out('(`djangocommand restart`); then revoke each old key with');
        for (const u of previous) out(`  djangocommand admin revoke-key ${u.key.prefix} --if-unused`);
        out('which refuses while a runner is still connected with it.');
      } finally {
        await store.close();
      }
    });
}
