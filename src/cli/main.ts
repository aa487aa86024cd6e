#!/usr/bin/env node
/**
 * The `djangocommand` command for every role: `server` and `admin ...` on the server host,
 * `run`, `logs`, `cancel`, `executions`, `commands`, `audit` ... from a laptop or CI.
 * Errors a user can fix print as one line "error: ..." and exit non-zero; bugs print a stack.
 */
import { Command } from 'commander';
import { isUserError } from '../shared/errors.js';
import { VERSION } from '../version.js';
import { registerServerCommands } from './serverCommands.js';
import { registerClientCommands } from './clientCommands.js';
import { registerRunnerCommands } from './runnerCommands.js';

const program = new Command();
program
  .name('djangocommand')
  .description('Run, schedule and audit Django management commands on production without SSH.')
  .version(VERSION)
  .showHelpAfterError()
  .enablePositionalOptions()
  .configureOutput({ outputError: (str, write) => write(str) });

registerServerCommands(program);
registerClientCommands(program);
registerRunnerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isUserError(err)) {
    process.stderr.write(`error: ${err.message}${err.code ? ` [${err.code}]` : ''}\n`);
    process.exitCode = err.status >= 1 && err.status <= 255 ? (err.status >= 100 ? 1 : err.status) : 1;
    return;
  }
  process.stderr.write(`djangocommand: unexpected error (a bug; please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
