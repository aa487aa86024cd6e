/**
 * `djangocommand admin audit verify|archive`: on the server host, straight on its database, with
 * the server's secret key (DJANGOCOMMAND_SECRET_KEY or <data dir>/secret.key) for the signed
 * checkpoints and verification records.
 *
 * Exit codes of verify: 0 the chain is whole; 3 it is not (the first bad event is named);
 * 2 a setting or an option is wrong.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { resolveServerConfig } from '../config/serverConfig.js';
import { openStore } from '../store/openStore.js';
import { LocalNotifier } from '../core/notifier.js';
import { hostActor } from '../core/audit.js';
import { archiveAudit, verifyAuditChain, type VerifyReport } from '../core/auditChain.js';
import { loadSecretKey } from '../core/notifications/secretBox.js';
import type { Core } from '../core/context.js';
import { UserError } from '../shared/errors.js';

/** Exit code of `verify` when the chain is not whole. */
export const EXIT_CHAIN_BROKEN = 3;

interface Flags {
  dataDir?: string;
  databaseUrl?: string;
  json?: boolean;
}

const out = (line: string): void => void process.stdout.write(line + '\n');

async function withChain<T>(flags: Flags, fn: (core: Core, serverKey: Buffer) => Promise<T>): Promise<T> {
  const config = resolveServerConfig({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl });
  const serverKey = loadSecretKey(config.notifications.secretKey, config.dataDir);
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    return await fn({ store, notifier: new LocalNotifier(), now: Date.now, settings: config.core }, serverKey);
  } finally {
    await store.close();
  }
}

function withDb(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data folder holding the SQLite database and secret.key (env DJANGOCOMMAND_DATA_DIR)')
    .option('--database-url <url>', 'postgres://... to use PostgreSQL (env DATABASE_URL)')
    .option('--json', 'print JSON');
}

/** "2026-01-31", an ISO 8601 time, or an age such as "90d" / "12w" (before that long ago). */
export function parseBefore(text: string, now: number): number {
  const age = /^(\d{1,5})([dw])$/.exec(text.trim());
  if (age) return now - Number(age[1]) * (age[2] === 'w' ? 7 : 1) * 86_400_000;
  const at = /^\d{4}-\d{2}-\d{2}$/.test(text.trim()) ? Date.parse(`${text.trim()}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T/.test(text.trim()) ? Date.parse(text.trim()) : NaN;
  if (!Number.isFinite(at)) {
    throw new UserError('DC_VALIDATION', `--before "${text}" is not a date: use e.g. 2026-01-31 (UTC midnight), 2026-01-31T12:00:00Z, or an age such as 365d.`, { field: 'before' }, { exitCode: 2 });
  }
  if (at > now) throw new UserError('DC_VALIDATION', `--before ${new Date(at).toISOString()} is in the future: only events already written can be archived.`, { field: 'before' }, { exitCode: 2 });
  return at;
}

function reportJson(r: VerifyReport): Record<string, unknown> {
  return {
    ok: r.ok,
    events: r.events,
    anchor: { seq: r.anchor.seq, hash: r.anchor.hash, checkpoint: r.anchor.checkpoint },
    head: { seq: r.head.seq, hash: r.head.hash },
    problem: r.problem,
    verified_at: new Date(r.verifiedAt).toISOString(),
  };
}

export function registerAuditAdminCommands(admin: Command): void {
  const group = admin.command('audit').description('Check and archive the tamper-evident audit log.');

  withDb(group.command('verify'))
    .description('Check the audit log hash chain from its start (or its last checkpoint) to its newest event; exit 0 only when it is whole, 3 naming the first event changed, removed or inserted.')
    .action((flags: Flags) =>
      withChain(flags, async (core, key) => {
        const r = await verifyAuditChain(core, key);
        if (flags.json) out(JSON.stringify(reportJson(r)));
        else if (r.ok) {
          const from = r.anchor.checkpoint ? `the checkpoint after #${r.anchor.seq}` : 'the start of the log';
          out(`The audit chain is whole: ${r.events} event(s) checked, from ${from} to #${r.head.seq}.`);
          // Kept outside the database (monitoring, a ticket), it proves later what the log held.
          out(`Head: #${r.head.seq} ${r.head.hash}`);
        } else {
          out(`The audit chain is BROKEN${r.problem?.seq !== null && r.problem?.seq !== undefined ? ` at event #${r.problem.seq}` : ''}: ${r.problem?.message}`);
          out(`${r.events} event(s) read; the chain was whole up to #${r.head.seq}.`);
        }
        if (!r.ok) process.exitCode = EXIT_CHAIN_BROKEN;
      }),
    );

  withDb(group.command('archive'))
    .description('Export the oldest audit events (all written before --before) to a JSON lines file, then remove exactly those, leaving a checkpoint signed with the server key so the rest still verifies.')
    .requiredOption('--before <date>', 'archive the events written before this date (2026-01-31, an ISO time, or an age like 365d)')
    .requiredOption('--to <file>', 'the JSON lines file to write (must not exist)')
    .action((flags: Flags & { before: string; to: string }) =>
      withChain(flags, async (core, key) => {
        const before = parseBefore(flags.before, core.now());
        const file = path.resolve(flags.to);
        const r = await archiveAudit(core, hostActor(), key, { before, file });
        if (flags.json) out(JSON.stringify({ events: r.events, first_seq: r.firstSeq, through_seq: r.throughSeq, file: r.file, archive_sha256: r.archiveSha256 }));
        else if (r.events === 0) out(`No audit event was written before ${new Date(before).toISOString()}: nothing archived.`);
        else {
          out(`Archived ${r.events} audit event(s) (#${r.firstSeq}–#${r.throughSeq}) to ${r.file}`);
          out(`SHA-256 of the archive: ${r.archiveSha256} (recorded in the signed checkpoint).`);
        }
      }),
    );
}
