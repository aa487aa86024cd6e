/**
 * The runner alone, as one executable for Django hosts without Node.js: the entry that
 * scripts/build-runner-binary.mjs bundles into a Node single executable application. It has
 * the runner's verbs and nothing else: `start [-d]`, `stop`, `status`, `restart`, with the same
 * flags, settings, exit codes and error lines as `djangocommand start|stop|status|restart`.
 */
import sea from 'node:sea';
import { Command } from 'commander';
import { printError } from './printError.js';
import { VERSION } from '../version.js';
import { registerRunnerCommands } from './runnerCommands.js';

// `start -d` re-runs this program as `process.execPath process.argv[1] start ...` (daemon.ts).
// In a single executable, argv[1] is the executable itself and Node inserts it once more, so
// the child sees it as a first argument: drop it.
if (sea.isSea() && process.argv[2] === process.execPath) process.argv.splice(2, 1);

const program = new Command();
program
  .name('djangocommand')
  .description('The djangocommand runner, on its own: run it in the Django project folder (start, stop, status, restart).')
  .version(VERSION)
  .showHelpAfterError()
  .enablePositionalOptions()
  .configureOutput({ outputError: (str, write) => write(str) });

registerRunnerCommands(program);

program.parseAsync(process.argv).catch(printError);
