/**
 * The runner's verbs, as the Python runner has them: `djangocommand start [-d]`, `stop [--force]`,
 * `status [--json]`, `restart [-d]`, run in (or pointed at) the Django project folder. `start`
 * remembers its interpreter and state folder for the folder (startRecord.ts), so the others
 * need neither --python nor --state-dir.
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { ERROR_CODES, UserError, type ErrorCode } from '../shared/errors.js';
import { VERSION } from '../version.js';
import { checkProject, discoverCatalogue, readDjangoSettings, type PythonProject } from '../runner/bootstrap.js';
import { resolveRunnerSettings, stateDirFor, type RunnerFlags } from '../runner/settings.js';
import { Runner } from '../runner/runner.js';
import { WarmProcess } from '../runner/warmProcess.js';
import { consoleLog, logFile, rotatingFileLog } from '../runner/runnerLog.js';
import { alive, claimPidFile, readPid, readStatus, startDetached, stopRunner, waitForFirstConnection } from '../runner/daemon.js';
import { cleanUpLeftovers } from '../runner/leftovers.js';
import { readStartRecord, startRecordFile, writeStartRecord } from '../runner/startRecord.js';

interface Flags extends RunnerFlags {
  projectDir?: string;
  python?: string;
  settings?: string;
  detach?: boolean;
  detachedChild?: boolean;
  force?: boolean;
  json?: boolean;
  grace?: string;
}

const out = (line: string): void => void process.stdout.write(line + '\n');

function projectOptions(cmd: Command): Command {
  return cmd
    .option('--project-dir <dir>', 'the Django project folder, holding manage.py (default: this folder)')
    .option('--python <path>', "the project's Python interpreter (env DJANGOCOMMAND_PYTHON, default python3)")
    .option('--settings <module>', 'DJANGO_SETTINGS_MODULE (default: what manage.py sets)')
    .option('--state-dir <dir>', 'folder for the pid file, log and spool (env DJANGOCOMMAND_STATE_DIR; default <tmp>/djangocommand-<hash of BASE_DIR>)');
}

function project(flags: Flags): PythonProject {
  const env = { ...process.env };
  if (flags.settings) env.DJANGO_SETTINGS_MODULE = flags.settings;
  const p = { python: flags.python ?? process.env.DJANGOCOMMAND_PYTHON ?? 'python3', projectDir: path.resolve(flags.projectDir ?? '.'), env };
  checkProject(p);
  return p;
}

/**
 * The state folder, without validating the rest of the settings (status and stop need only
 * this): --state-dir, else what `start` recorded for this project folder (no Python needed),
 * else derived from BASE_DIR with the interpreter given (--python, DJANGOCOMMAND_PYTHON).
 * Undefined when no runner was ever started here and no interpreter was named.
 */
async function stateDir(flags: Flags): Promise<string | undefined> {
  const explicit = flags.stateDir ?? process.env.DJANGOCOMMAND_STATE_DIR;
  if (explicit) return path.resolve(explicit);
  const p = project(flags);
  const record = readStartRecord(p.projectDir);
  if (record) return record.state_dir;
  if (!flags.python && !process.env.DJANGOCOMMAND_PYTHON && !flags.settings) return undefined;
  return stateDirFor((await readDjangoSettings(p)).base_dir);
}

/** What `start` remembers for `status`, `stop` and `restart` in this folder. */
function rememberStart(p: PythonProject, flags: Flags, dir: string, log: (level: 'info' | 'warn' | 'error', message: string) => void): void {
  try {
    writeStartRecord({ project_dir: p.projectDir, python: p.python, settings: flags.settings ?? null, state_dir: dir });
  } catch (err) {
    log('warn', `cannot write ${startRecordFile(p.projectDir)} (${(err as Error).message}): status and stop will need --state-dir ${dir}`);
  }
}

/**
 * After a detached start: waits for the first connection and says how it went. A refused key
 * stops the runner and fails with the server's words; a server not reached in time is only
 * reported (the runner keeps trying: a server may well come up after its runners).
 */
async function reportFirstConnection(dir: string, pid: number): Promise<void> {
  const log = logFile(dir);
  const server = readStatus(dir)?.server ?? 'the server';
  const first = await waitForFirstConnection(dir, pid, START_CONNECT_WAIT_MS);
  switch (first.outcome) {
    case 'connected':
      out(`runner started (pid ${pid}), connected to ${server}; log: ${log}`);
      return;
    case 'refused': {
      await stopRunner(dir, false, 15_000);
      const code: ErrorCode = first.code && Object.hasOwn(ERROR_CODES, first.code) ? (first.code as ErrorCode) : 'DC_UNAUTHENTICATED';
      throw new UserError(code, `${server} refused the runner: ${first.message} The runner was stopped (log: ${log}).`, undefined, { exitCode: 1 });
    }
    case 'unreached':
      process.stderr.write(`runner started (pid ${pid}), but it has not reached ${server} in ${START_CONNECT_WAIT_MS / 1000} s${first.error ? ` (${first.error})` : ''}; it keeps trying. Check DJANGOCOMMAND_SERVER_URL and the network; \`djangocommand status\` tells when it connects. Log: ${log}\n`);
      return;
    case 'exited':
      throw new UserError('DC_CONFIG', `The runner stopped right after it started; see its log: ${log}`, undefined, { exitCode: 1 });
  }
}

/** How long `start -d` waits for the first connection to the server. */
const START_CONNECT_WAIT_MS = 15_000;

async function runForeground(flags: Flags): Promise<void> {
  const p = project(flags);
  const report = await readDjangoSettings(p);
  const settings = resolveRunnerSettings({ ...flags, stateDir: flags.stateDir ?? process.env.DJANGOCOMMAND_STATE_DIR }, process.env, report);
  const release = claimPidFile(settings.stateDir);
  const log = flags.detachedChild ? rotatingFileLog(settings.stateDir) : consoleLog();
  try {
    log('info', `djangocommand runner ${VERSION}: project ${p.projectDir}, Python ${report.python_version}, Django ${report.django_version}, server ${settings.serverUrl}`);
    // How many, never which: the values stay in memory.
    log('info', `output is scrubbed of ${settings.redaction.secrets.length} secret setting value(s) and ${settings.redaction.patterns.length} DJANGOCOMMAND_REDACT_PATTERNS pattern(s) before it leaves this host`);
    rememberStart(p, flags, settings.stateDir, log);
    // Holding the pid file: what the state folder lists as running is a dead runner's.
    await cleanUpLeftovers(settings.stateDir, log, settings.killGraceMs);
    const { commands, schedules } = await discoverCatalogue(p);
    const warm = settings.warmStart ? new WarmProcess(p, settings.stateDir, log) : undefined;
    const runner = new Runner({ settings, project: p, commands, schedules, version: VERSION, log, warm });
    runner.start();
    void warm?.start();
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (force: boolean, why: string) => {
        if (stopping && !force) return;
        stopping = true;
        log('info', `${why}: stopping${force ? ' now, killing running commands' : '; running commands may finish'}`);
        runner.stop({ force, graceMs: Number(flags.grace ?? 30) * 1000 }).then(resolve, resolve);
      };
      process.on('SIGTERM', () => stop(false, 'SIGTERM'));
      process.on('SIGINT', () => stop(stopping, 'Ctrl-C'));
      process.on('SIGUSR2', () => stop(true, 'stop --force'));
    });
    log('info', 'runner stopped');
  } finally {
    release();
  }
  // Sockets of killed commands may linger a moment; the runner is done.
  setImmediate(() => process.exit(process.exitCode ?? 0));
}

export function registerRunnerCommands(program: Command): void {
  projectOptions(program.command('start'))
    .description("Start the runner for the Django project here: connects out to the server and runs what it is sent, within this project's policy.")
    .option('-d, --detach', 'run in the background (pid file and rotating log in the state folder)')
    .option('--server-url <url>', 'override DJANGOCOMMAND_SERVER_URL')
    .option('--max-concurrency <n>', 'commands run at once (env DJANGOCOMMAND_MAX_CONCURRENCY, default 4)')
    .option('--no-warm', 'start every command cold (env DJANGOCOMMAND_WARM_START=false)')
    .option('--grace <seconds>', 'on stop, how long running commands may finish', '30')
    .addOption(new Option('--detached-child').hideHelp())
    .action(async (flags: Flags & { warm?: boolean }) => {
      if (!flags.detach) return runForeground(flags);
      const p = project(flags);
      const report = await readDjangoSettings(p);
      // Validate here, so a wrong setting fails `start -d` with its message, not in a log.
      const settings = resolveRunnerSettings({ ...flags, stateDir: flags.stateDir ?? process.env.DJANGOCOMMAND_STATE_DIR }, process.env, report);
      const args = process.argv.slice(process.argv.indexOf('start') + 1).filter((a) => a !== '-d' && a !== '--detach');
      const pid = await startDetached(settings.stateDir, args);
      await reportFirstConnection(settings.stateDir, pid);
    });

  projectOptions(program.command('stop'))
    .description('Stop the runner: no new work, running commands may finish (--grace of its start), then are cancelled.')
    .option('--force', 'kill running commands at once')
    .action(async (flags: Flags) => {
      const dir = await stateDir(flags);
      const result = dir ? await stopRunner(dir, !!flags.force, flags.force ? 15_000 : 120_000) : undefined;
      if (!result) throw new UserError('DC_CONFIG', 'No runner is running for this project.', undefined, { exitCode: 1 });
      out(result.killed ? `runner ${result.pid} did not stop in time and was killed` : `runner ${result.pid} stopped`);
    });

  projectOptions(program.command('status'))
    .description('Tell whether the runner is running: pid, uptime, server, connection, executions in flight.')
    .option('--json', 'print JSON')
    .action(async (flags: Flags) => {
      const dir = await stateDir(flags);
      const pid = dir ? readPid(dir) : undefined;
      const status = dir && pid ? readStatus(dir) : undefined;
      const running = !!pid && alive(pid);
      const uptime = status ? Math.round((Date.now() - Date.parse(status.started_at)) / 1000) : null;
      const view = {
        running,
        pid: running ? pid : null,
        uptime_seconds: running ? uptime : null,
        server: status?.server ?? null,
        connection: running ? (status?.connection ?? 'starting') : null,
        last_error: status?.last_error ?? null,
        executions: running ? (status?.executions ?? []) : [],
        unacknowledged_bytes: running ? (status?.unacknowledged_bytes ?? 0) : 0,
        output_paused: running ? (status?.output_paused ?? false) : false,
        state_dir: dir ?? null,
      };
      if (flags.json) out(JSON.stringify(view));
      else if (!running) out(dir ? `not running (state folder ${dir})` : `not running (no runner was started for ${path.resolve(flags.projectDir ?? '.')})`);
      else {
        out(`running, pid ${pid}, up ${uptime ?? '?'} s, server ${view.server}, connection ${view.connection}${view.last_error && view.connection !== 'connected' ? ` (${view.last_error})` : ''}`);
        for (const e of view.executions) out(`  ${e.id}  ${e.command}  pid ${e.pid}  since ${e.started_at}`);
        if (view.output_paused) out(`  output paused: ${(view.unacknowledged_bytes / 1048576).toFixed(0)} MiB not acknowledged by the server yet (DJANGOCOMMAND_SPOOL_MAX_MB)`);
      }
      if (!running) process.exitCode = 3;
    });

  projectOptions(program.command('restart'))
    .description('Stop the runner if it runs, then start it.')
    .option('-d, --detach', 'run in the background')
    .option('--force', 'kill running commands at once when stopping')
    .action(async (flags: Flags) => {
      // Started again as it was started: its interpreter, settings module and state folder.
      const p = project(flags);
      const record = readStartRecord(p.projectDir);
      flags.python ??= record?.python;
      flags.settings ??= record?.settings ?? undefined;
      if (!process.env.DJANGOCOMMAND_STATE_DIR) flags.stateDir ??= record?.state_dir;
      const dir = (await stateDir(flags)) ?? stateDirFor((await readDjangoSettings(project(flags))).base_dir);
      const stopped = await stopRunner(dir, !!flags.force, flags.force ? 15_000 : 120_000);
      if (stopped) out(`runner ${stopped.pid} stopped`);
      if (!flags.detach) return runForeground(flags);
      const args = ['--project-dir', p.projectDir, '--state-dir', dir, ...(flags.python ? ['--python', flags.python] : []), ...(flags.settings ? ['--settings', flags.settings] : [])];
      const pid = await startDetached(dir, args);
      await reportFirstConnection(dir, pid);
    });
}
