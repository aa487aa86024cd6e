/** How the CLI ends on an error: one line for what a user can fix, the stack for a bug. */
import { isUserError } from '../shared/errors.js';

export function printError(err: unknown): void {
  if (isUserError(err)) {
    process.stderr.write(`error: ${err.message}${err.code ? ` [${err.code}]` : ''}\n`);
    process.exitCode = err.exitCode;
    return;
  }
  process.stderr.write(`djangocommand: unexpected error (a bug; please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
}
