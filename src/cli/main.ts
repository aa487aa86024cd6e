#!/usr/bin/env node
/**
 * The `djangocommand` command for every role: `server` and `admin ...` on the server host,
 * `run`, `logs`, `cancel`, `executions`, `commands`, `audit` ... from a laptop or CI.
 * Errors a user can fix print as one line "error: ..." and exit non-zero; bugs print a stack.
 */
import { Command } from 'commander';
import { isUserError } from '../shared/errors.js';
import { VERSION } from '../version.js';
import { groupsFor } from './commandGroups.js';

const program = new Command();
program
  .name('djangocommand')
  .description('Run, schedule and audit Django management commands on production without SSH.')
  .version(VERSION)
  .showHelpAfterError()
  .enablePositionalOptions()
  .configureOutput({ outputError: (str, write) => write(str) });

// Only the module of the command named: `run` must not load the server nor the runner.
async function main(): Promise<void> {
  const registers = await Promise.all(groupsFor(process.argv.slice(2)).map((g) => g.load()));
  for (const register of registers) register(program); // in order: help lists them as before
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  if (isUserError(err)) {
    process.stderr.write(`error: ${err.message}${err.code ? ` [${err.code}]` : ''}\n`);
    process.exitCode = err.status >= 1 && err.status <= 255 ? (err.status >= 100 ? 1 : err.status) : 1;
    return;
  }
  process.stderr.write(`djangocommand: unexpected error (a bug; please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
