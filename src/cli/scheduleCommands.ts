/**
 * `djangocommand schedule ...`: create, list, show, edit, pause, resume, delete, run now, and
 * preview (worked out here, with no server, by the same code the server uses). Each takes
 * `--json`; without it, times are shown in the schedule's zone and in UTC, daylight-saving days
 * marked with what happens to the run.
 */
import { Command, Option } from 'commander';
import { ApiClient, type ClientOptions } from './apiClient.js';
import { UserError } from '../shared/errors.js';
import type { OccurrenceView, PreviewRunView, PreviewView, RunNowView, ScheduleView } from '../shared/schedulesApi.js';
import { MISFIRE_POLICIES, OVERLAP_POLICIES } from '../domain/schedule.js';

type Flags = ClientOptions & { json?: boolean };
interface ScheduleFlags extends Flags {
  project?: string;
  readOnly?: boolean;
  writable?: boolean;
  cron?: string;
  timezone?: string;
  name?: string;
  overlap?: string;
  misfire?: string;
  timeout?: string;
  startTimeout?: string;
  healthEvery?: string;
  catchUp?: string;
  paused?: boolean;
  command?: string;
  clearArgs?: boolean;
}

const out = (line = ''): void => void process.stdout.write(line + '\n');
const enc = encodeURIComponent;
const MAX_SECONDS = 604_800;

function client(cmd: Command): Command {
  return cmd.option('--url <url>', 'server address (env DJANGOCOMMAND_URL)').option('--token <token>', 'personal API token (env DJANGOCOMMAND_TOKEN)').option('--json', 'print JSON');
}

function whole(option: string, value: string | undefined, min: number, max: number, unit: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new UserError('DC_VALIDATION', `${option} must be a whole number of ${unit} from ${min} to ${max}, not "${value}".`, undefined, { exitCode: 2 });
  return n;
}

/** The timing and policy options create and edit share. */
function timingOptions(cmd: Command, creating: boolean): Command {
  return cmd
    .option('--timezone <tz>', 'IANA time zone, e.g. Europe/Amsterdam' + (creating ? ' (default UTC)' : ''))
    .option('--name <name>', 'a name to tell it apart')
    .addOption(new Option('--overlap <policy>', 'while the previous run is active: skip it (default) or queue behind it').choices([...OVERLAP_POLICIES]))
    .addOption(new Option('--misfire <policy>', 'after the servers were down: run_once (default) or skip').choices([...MISFIRE_POLICIES]))
    .option('--timeout <seconds>', 'stop a run after this long (default: the server default)')
    .option('--start-timeout <seconds>', 'a runner must start a run within this long, else the occurrence is missed (default 600)')
    .option('--catch-up <seconds>', 'misfires older than this are recorded as missed, never run (default 3600)')
    .option('--health-every <minutes>', 'expect a success at least this often, else notify')
    .option('--read-only', 'runs are in read-only database mode: every write to the database is refused');
}

function body(flags: ScheduleFlags): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (flags.cron !== undefined) b.cron = flags.cron;
  if (flags.timezone !== undefined) b.timezone = flags.timezone;
  if (flags.name !== undefined) b.name = flags.name;
  if (flags.overlap !== undefined) b.overlap = flags.overlap;
  if (flags.misfire !== undefined) b.misfire = flags.misfire;
  if (flags.timeout !== undefined) b.timeout = whole('--timeout', flags.timeout, 1, MAX_SECONDS, 'seconds');
  if (flags.startTimeout !== undefined) b.start_timeout = whole('--start-timeout', flags.startTimeout, 1, MAX_SECONDS, 'seconds');
  if (flags.catchUp !== undefined) b.catch_up_window = whole('--catch-up', flags.catchUp, 0, MAX_SECONDS, 'seconds');
  if (flags.healthEvery !== undefined) b.health_every = whole('--health-every', flags.healthEvery, 1, 527_040, 'minutes');
  if (flags.readOnly && flags.writable) throw new UserError('DC_VALIDATION', 'Give --read-only or --writable, not both.', undefined, { exitCode: 2 });
  if (flags.readOnly) b.read_only = true;
  if (flags.writable) b.read_only = false;
  return b;
}

function utc(iso: string): string {
  return iso.replace('T', ' ').slice(0, 16) + ' UTC';
}

function runLine(r: PreviewRunView): string {
  return `  ${r.weekday} ${r.local} ${r.offset}   = ${utc(r.at)}${r.dst ? `   ⚠ ${r.dst.kind === 'spring_forward' ? 'clocks go forward' : 'clocks go back'}: ${r.dst.note}` : ''}`;
}

function describe(s: ScheduleView): string {
  return `${s.name ? `"${s.name}" ` : ''}${s.command}${s.args ? ' ' + s.args : ''} in ${s.project}, cron "${s.cron}" ${s.timezone}${s.read_only ? ' (read-only)' : ''}${s.paused ? ' (paused)' : ''}`;
}

function occurrenceLine(o: OccurrenceView): string {
  const many = o.count > 1 ? ` ×${o.count} until ${utc(o.last_due_at)}` : '';
  const late = o.late_ms !== null ? ` (+${(o.late_ms / 1000).toFixed(1)} s)` : '';
  const exec = o.execution_id ? `  execution ${o.execution_id}${o.exit_code !== null ? ` exit ${o.exit_code}` : ''}` : '';
  return `  ${utc(o.due_at)}${many}  ${o.trigger === 'cron' ? '' : o.trigger + ' '}${o.result.padEnd(10)}${late}${exec}${o.reason ? `  — ${o.reason}` : ''}`;
}

function printSchedule(s: ScheduleView): void {
  out(`schedule ${s.id}: ${describe(s)}`);
  out(`  overlap ${s.overlap}, misfire ${s.misfire} (catch-up ${s.catch_up_window} s), start timeout ${s.start_timeout} s, timeout ${s.timeout ?? 'server default'}${s.health_every ? `, expects a success every ${s.health_every} min` : ''}`);
  if (s.next_runs && s.next_runs.length > 0) {
    out('next runs:');
    for (const r of s.next_runs) out(runLine(r));
  } else out(s.paused ? 'next runs: none while paused' : 'next runs: none');
}

type PreviewFlags = { cron: string; timezone?: string; count?: string; from?: string; json?: boolean };

async function previewLocal(flags: PreviewFlags): Promise<void> {
  // Loaded here: the preview is the only schedule command that needs the cron library.
  const { checkCron, isTimeZone, previewRuns } = await import('../domain/scheduleCron.js');
  const timezone = flags.timezone ?? 'UTC';
  const checked = checkCron(flags.cron);
  if ('problem' in checked) throw new UserError('DC_BAD_CRON', `--cron: ${checked.problem.message}`, undefined, { exitCode: 2 });
  if (!isTimeZone(timezone)) throw new UserError('DC_UNKNOWN_TIMEZONE', `--timezone: "${timezone}" is not a known IANA time zone (like Europe/Amsterdam or UTC).`, undefined, { exitCode: 2 });
  const count = whole('--count', flags.count, 1, 1000, 'runs') ?? 10;
  const from = flags.from === undefined ? Date.now() : Date.parse(flags.from);
  if (Number.isNaN(from)) throw new UserError('DC_VALIDATION', `--from must be an ISO 8601 time, like 2026-03-28T00:00:00Z, not "${flags.from}".`, undefined, { exitCode: 2 });
  const runs = previewRuns(flags.cron, timezone, from, count);
  const view: PreviewView = {
    cron: flags.cron,
    timezone,
    runs: runs.map((r) => ({ at: new Date(r.at).toISOString(), local: r.local, offset: r.offset, weekday: r.weekday, dst: r.dst })),
  };
  if (flags.json) return out(JSON.stringify(view, null, 2));
  if (view.runs.length === 0) return out(`"${flags.cron}" never fires.`);
  out(`next ${view.runs.length} runs of "${flags.cron}" in ${timezone} (and UTC):`);
  for (const r of view.runs) out(runLine(r));
}

export function registerScheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('cron schedules of commands: create, list, show, edit, pause, resume, delete, run-now, preview');

  timingOptions(client(schedule.command('create')), true)
    .description('create a schedule: djangocommand schedule create --project P --cron "0 3 * * *" COMMAND [ARGS...]')
    .option('--project <project>', 'project name (default: the only one)')
    .requiredOption('--cron <expr>', '5 fields (minute hour day-of-month month day-of-week), or @hourly @daily @weekly @monthly @yearly')
    .option('--paused', 'create it paused')
    .argument('<command>', 'the management command')
    .argument('[args...]', "the command's arguments")
    .passThroughOptions()
    .action(async (command: string, args: string[], flags: ScheduleFlags) => {
      const api = new ApiClient(flags);
      const s = await api.request<ScheduleView>('POST', '/api/v1/schedules', {
        ...(flags.project ? { project: flags.project } : {}),
        command,
        argv: args,
        ...body(flags),
        ...(flags.paused ? { paused: true } : {}),
      });
      if (flags.json) return out(JSON.stringify(s, null, 2));
      printSchedule(s);
    });

  client(schedule.command('list'))
    .description('list schedules with their next run and last result')
    .option('--project <project>', 'only this project')
    .action(async (flags: ScheduleFlags) => {
      const api = new ApiClient(flags);
      const { items } = await api.request<{ items: ScheduleView[] }>('GET', `/api/v1/schedules?recent=1${flags.project ? `&project=${enc(flags.project)}` : ''}`);
      if (flags.json) return out(JSON.stringify(items, null, 2));
      if (items.length === 0) return out('No schedules yet: djangocommand schedule create --cron "0 3 * * *" COMMAND');
      for (const s of items) {
        const last = s.recent?.[0];
        out(`${s.id}  ${(s.next_run_at ? utc(s.next_run_at) : s.paused ? 'paused' : '-').padEnd(20)}  last: ${(last?.result ?? '-').padEnd(10)} ${describe(s)}`);
      }
    });

  client(schedule.command('show'))
    .description('a schedule, its next runs and its last runs')
    .argument('<id>')
    .action(async (id: string, flags: Flags) => {
      const s = await new ApiClient(flags).request<ScheduleView>('GET', `/api/v1/schedules/${enc(id)}`);
      if (flags.json) return out(JSON.stringify(s, null, 2));
      printSchedule(s);
      out('last runs (due time, result):');
      if (!s.recent || s.recent.length === 0) out('  none yet');
      for (const o of s.recent ?? []) out(occurrenceLine(o));
    });

  timingOptions(client(schedule.command('edit')), false)
    .description('change a schedule: any option given, and the arguments when given (after --)')
    .option('--cron <expr>', 'a new cron expression')
    .option('--command <command>', 'a new management command')
    .option('--clear-args', 'run the command without arguments')
    .option('--no-health', 'stop expecting a success')
    .option('--writable', 'runs are no longer in read-only database mode')
    .argument('<id>')
    .argument('[args...]', "new arguments for the command (put -- before them)")
    .action(async (id: string, args: string[], flags: ScheduleFlags) => {
      const b = body(flags);
      if (flags.command !== undefined) b.command = flags.command;
      if (args.length > 0) b.argv = args;
      else if (flags.clearArgs) b.argv = [];
      if ((flags as { health?: boolean }).health === false) b.health_every = null;
      if (Object.keys(b).length === 0) throw new UserError('DC_VALIDATION', 'Nothing to change: give --cron, --timezone, --name, ... or new arguments after --.', undefined, { exitCode: 2 });
      const s = await new ApiClient(flags).request<ScheduleView>('PATCH', `/api/v1/schedules/${enc(id)}`, b);
      if (flags.json) return out(JSON.stringify(s, null, 2));
      printSchedule(s);
    });

  for (const [verb, method, path, what] of [
    ['pause', 'POST', '/pause', 'stop firing until resumed (occurrences meanwhile are recorded as missed)'],
    ['resume', 'POST', '/resume', 'fire again, from now'],
    ['delete', 'DELETE', '', 'delete a schedule (its runs stay in the history)'],
  ] as const) {
    client(schedule.command(verb))
      .description(what)
      .argument('<id>')
      .action(async (id: string, flags: Flags) => {
        const s = await new ApiClient(flags).request<ScheduleView>(method, `/api/v1/schedules/${enc(id)}${path}`);
        if (flags.json) return out(JSON.stringify(s, null, 2));
        out(`${verb === 'delete' ? 'deleted' : verb === 'pause' ? 'paused' : 'resumed'}: ${describe(s)}${verb === 'resume' && s.next_run_at ? `; next run ${utc(s.next_run_at)}` : ''}`);
      });
  }

  client(schedule.command('run-now'))
    .description("run the schedule's command now (recorded as one of its runs)")
    .argument('<id>')
    .action(async (id: string, flags: Flags) => {
      const r = await new ApiClient(flags).request<RunNowView>('POST', `/api/v1/schedules/${enc(id)}/run`);
      if (flags.json) return out(JSON.stringify(r, null, 2));
      out(r.execution_id ? `started execution ${r.execution_id} (djangocommand logs ${r.execution_id} --follow)` : `not started: ${r.occurrence.reason}`);
    });

  schedule
    .command('preview')
    .description('the next runs of a cron expression in its zone and UTC, daylight-saving days marked (needs no server)')
    .requiredOption('--cron <expr>', 'cron expression')
    .option('--timezone <tz>', 'IANA time zone (default UTC)')
    .option('--count <n>', 'how many runs (default 10)')
    .option('--from <time>', 'runs after this ISO 8601 time (default now)')
    .option('--json', 'print JSON')
    .action(async (flags: PreviewFlags) => previewLocal(flags));
}
