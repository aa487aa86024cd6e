/**
 * Schedules as code: the entries of DJANGOCOMMAND_SCHEDULES as a v2 runner reports them, and the
 * digest both sides compute over them so a runner resends its catalogue only when they changed.
 *
 * The runner's `commands_hash` in `hello` is then `<commands hash>;schedules=<digest>` (a v1
 * runner, and a v2 runner without the setting, send the commands hash alone). Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { pythonCanonicalJson } from './commandsHash.js';
import { joinShellWords, splitShellWords } from './shellWords.js';

/** One entry of DJANGOCOMMAND_SCHEDULES, with bootstrap.py's defaults filled in. */
export interface CodeScheduleSpec {
  /** The schedule's key in its project (default: the command's name). */
  name: string;
  command: string;
  /** Arguments as one string, split with POSIX shell rules (default ""). */
  args: string;
  cron: string;
  /** IANA zone (default UTC). */
  timezone: string;
}

const SEPARATOR = ';schedules=';

/** The digest of a set of code schedules, in the form the server stores them (canonical arguments, trimmed cron). */
export function codeSchedulesDigest(specs: readonly CodeScheduleSpec[]): string {
  const canonical = specs
    .map((s) => ({ name: s.name.trim(), command: s.command, args: canonicalArgs(s.args), cron: s.cron.trim(), timezone: s.timezone }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return createHash('sha256').update(pythonCanonicalJson(canonical), 'utf8').digest('hex').slice(0, 32);
}

export function joinCatalogueHash(commandsHash: string, schedulesDigest: string | undefined): string {
  return schedulesDigest === undefined ? commandsHash : commandsHash + SEPARATOR + schedulesDigest;
}

export function splitCatalogueHash(hash: string): { commands: string; schedules?: string } {
  const i = hash.indexOf(SEPARATOR);
  return i < 0 ? { commands: hash } : { commands: hash.slice(0, i), schedules: hash.slice(i + SEPARATOR.length) };
}

function canonicalArgs(args: string): string {
  try {
    return joinShellWords(splitShellWords(args));
  } catch {
    // Unbalanced quotes: the server refuses the entry, so no stored schedule matches it anyway.
    return args;
  }
}
