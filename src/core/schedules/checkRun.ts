/**
 * The checks a run of a command gets (unknown command, the runner's policy, argparse, timeouts),
 * made without running anything: a schedule is refused when it is saved, with the same codes and
 * words as `createExecution` would use when it fires.
 */
import type { Command, Project } from '../../domain/model.js';
import { validateArgv } from '../../domain/argvValidation.js';
import { joinShellWords, splitShellWords } from '../../domain/shellWords.js';
import { closestNames } from '../../domain/suggest.js';
import { UserError } from '../../shared/errors.js';
import type { Core } from '../context.js';
import { MAX_TIMEOUT_SECONDS } from '../executions.js';

export interface RunToCheck {
  command: string;
  argv?: string[];
  args?: string;
  timeoutSeconds?: number | null;
  startTimeoutSeconds?: number;
}

export interface CheckedRun {
  command: Command;
  argv: string[];
  args: string;
}

const MAX_ARGV_ITEMS = 1000;
const MAX_ARGS_CHARS = 64 * 1024;

export async function checkRun(core: Core, project: Project, run: RunToCheck): Promise<CheckedRun> {
  const command = await core.store.getCommand(project.id, run.command);
  if (!command) {
    const known = (await core.store.listCommands(project.id)).map((c) => c.name);
    const close = closestNames(run.command, known);
    const hint =
      known.length === 0
        ? ' No runner has reported commands for this project yet: start a runner with its API key.'
        : close.length > 0
          ? ` Did you mean ${close.map((n) => `"${n}"`).join(' or ')}?`
          : ` Known commands: ${known.slice(0, 30).join(', ')}${known.length > 30 ? ', …' : ''}.`;
    throw new UserError('DC_UNKNOWN_COMMAND', `Project "${project.name}" has no command "${run.command}".${hint}`, 404, close.length > 0 ? { did_you_mean: close } : undefined);
  }
  if (command.refused) {
    throw new UserError('DC_COMMAND_NOT_ALLOWED', `The runners of "${project.name}" refuse "${command.name}": ${command.refused}`, 403);
  }
  const { argv, args } = argumentsOf(run);
  const problem = validateArgv(command.schema, argv);
  if (problem) throw new UserError('DC_BAD_ARGS', `${command.name}: ${problem.message}`, 400, { field: problem.field });
  seconds('timeout', run.timeoutSeconds ?? undefined);
  seconds('start_timeout', run.startTimeoutSeconds);
  return { command, argv, args };
}

function seconds(field: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_SECONDS) {
    throw new UserError('DC_VALIDATION', `${field} must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}.`, 400, { field });
  }
}

function argumentsOf(run: RunToCheck): { argv: string[]; args: string } {
  if (run.argv !== undefined && run.args !== undefined) {
    throw new UserError('DC_VALIDATION', 'Give either argv (a list) or args (one string), not both.', 400, { field: 'argv' });
  }
  if (run.argv !== undefined) {
    if (run.argv.length > MAX_ARGV_ITEMS) throw new UserError('DC_VALIDATION', `argv may hold at most ${MAX_ARGV_ITEMS} items.`, 400, { field: 'argv' });
    if (run.argv.some((a) => a.includes('\0'))) throw new UserError('DC_VALIDATION', 'argv items may not contain NUL characters.', 400, { field: 'argv' });
    const args = joinShellWords(run.argv);
    if (args.length > MAX_ARGS_CHARS) throw new UserError('DC_VALIDATION', `Arguments may be at most ${MAX_ARGS_CHARS} characters long.`, 400, { field: 'argv' });
    return { argv: [...run.argv], args };
  }
  const text = run.args ?? '';
  if (text.length > MAX_ARGS_CHARS) throw new UserError('DC_VALIDATION', `Arguments may be at most ${MAX_ARGS_CHARS} characters long.`, 400, { field: 'args' });
  if (text.includes('\0')) throw new UserError('DC_VALIDATION', 'Arguments may not contain NUL characters.', 400, { field: 'args' });
  const argv = splitShellWords(text);
  return { argv, args: joinShellWords(argv) };
}
