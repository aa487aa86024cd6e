/**
 * `djangocommand retention show PROJECT` and `retention set PROJECT --days N --max-output-bytes B`:
 * a project's own retention limits, through the REST API ("default" goes back to the server's,
 * 0 keeps everything).
 */
import type { Command } from 'commander';
import { ApiClient, type ClientOptions } from './apiClient.js';
import { UserError } from '../shared/errors.js';

type Flags = ClientOptions & { json?: boolean; days?: string; maxOutputBytes?: string };
interface RetentionView {
  project: string;
  days: number | null;
  max_output_bytes: number | null;
  effective: { days: number; max_output_bytes: number };
  defaults: { days: number; max_output_bytes: number };
}

const out = (line = ''): void => void process.stdout.write(line + '\n');

function client(cmd: Command): Command {
  return cmd.option('--url <url>', 'server address (env DJANGOCOMMAND_URL)').option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)').option('--json', 'print JSON');
}

/** "default" (the server's), or a whole number; "30d" style suffixes are refused rather than guessed. */
function limit(option: string, value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === 'default') return null;
  if (!/^\d{1,16}$/.test(value)) throw new UserError('DC_VALIDATION', `${option} must be a whole number (0: no limit) or "default", not "${value}".`, undefined, { exitCode: 2 });
  return Number(value);
}

function show(r: RetentionView): void {
  const days = (n: number) => (n === 0 ? 'kept forever' : `${n} day(s)`);
  const bytes = (n: number) => (n === 0 ? 'no limit' : `${n} bytes (${(n / 1024 ** 3).toFixed(2)} GiB)`);
  out(`Retention of ${r.project}:`);
  out(`  age:    ${days(r.effective.days)}${r.days === null ? ' (server default)' : ' (set for this project)'}`);
  out(`  output: ${bytes(r.effective.max_output_bytes)}${r.max_output_bytes === null ? ' (server default)' : ' (set for this project)'}`);
}

export function registerRetentionCommands(program: Command): void {
  const retention = program.command('retention').description('How long finished executions and their output are kept, per project.');

  client(retention.command('show <project>'))
    .description("Show a project's retention limits and where they come from.")
    .action(async (project: string, flags: Flags) => {
      const r = await new ApiClient(flags).request<RetentionView>('GET', `/api/v1/projects/${encodeURIComponent(project)}/retention`);
      if (flags.json) out(JSON.stringify(r));
      else show(r);
    });

  client(retention.command('set <project>'))
    .description('Set limits of a project (admins): finished executions older than --days, and the oldest beyond --max-output-bytes of output, are purged.')
    .option('--days <n>', 'days after finishing (0: forever; "default": the server default)')
    .option('--max-output-bytes <n>', 'output bytes the project keeps (0: no limit; "default": the server default)')
    .action(async (project: string, flags: Flags) => {
      const body: Record<string, number | null> = {};
      const days = limit('--days', flags.days);
      const bytes = limit('--max-output-bytes', flags.maxOutputBytes);
      if (days !== undefined) body.days = days;
      if (bytes !== undefined) body.max_output_bytes = bytes;
      if (Object.keys(body).length === 0) throw new UserError('DC_VALIDATION', 'Give --days and/or --max-output-bytes.', undefined, { exitCode: 2 });
      const r = await new ApiClient(flags).request<RetentionView>('PUT', `/api/v1/projects/${encodeURIComponent(project)}/retention`, body);
      if (flags.json) out(JSON.stringify(r));
      else show(r);
    });
}
