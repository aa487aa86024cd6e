#!/usr/bin/env node
/**
 * The `djangocommand` command for every role: `server` and `admin ...` on the server host,
 * `run`, `logs`, `cancel`, `executions`, `commands`, `audit` ... from a laptop or CI.
 * Errors a user can fix print as one line "error: ..." and exit non-zero; bugs print a stack.
 */
import { VERSION } from '../version.js';
import { groupsFor, versionOnly } from './commandGroups.js';

const args = process.argv.slice(2);

/**
 * Loads commander, the error type and the group of the command named, all at once, and only
 * those: `run` must not load the server nor the runner.
 */
async function main(): Promise<void> {
  const groups = groupsFor(args);
  const [{ Command }, ...registers] = await Promise.all([import('commander'), ...groups.map((g) => g.load())]);
  const program = new Command();
  program
    .name('djangocommand')
    .description('Run, schedule and audit Django management commands on production without SSH.')
    .version(VERSION)
    .showHelpAfterError()
    .enablePositionalOptions()
    .configureOutput({ outputError: (str, write) => write(str) });
  for (const register of registers) register(program); // in order: help lists them as before
  await program.parseAsync(process.argv).catch(fail);
  if (groups.every((g) => g.exitWhenDone)) await exitWhenFlushed();
}

/** Exits once what was written to stdout and stderr has been handed to the OS (a pipe may be asynchronous). */
async function exitWhenFlushed(): Promise<never> {
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  process.exit();
}

async function fail(err: unknown): Promise<void> {
  (await import('./printError.js')).printError(err);
}

// `--version` answers before anything else is loaded, as commander would print it.
if (versionOnly(args)) process.stdout.write(`${VERSION}\n`);
else main().catch(fail);
