/**
 * Read-only database mode: which executions run with the database refusing writes, and how a
 * runner's DJANGOCOMMAND_READONLY_COMMANDS joins the catalogue hash. Pure: no I/O.
 *
 * An execution runs read-only when it was asked for (`--read-only`, the dashboard's checkbox,
 * `"read_only": true`), when the command is read-only by default on the server, or when the
 * Django settings list it in DJANGOCOMMAND_READONLY_COMMANDS. Nothing makes such a run writable
 * but changing those defaults: a request can only add the mode, never remove it.
 */
import { createHash } from 'node:crypto';
import { pythonCanonicalJson } from './commandsHash.js';

export interface ReadOnlyDefaults {
  readOnlyDefault: boolean;
  djangoReadOnly: boolean;
}

export type ReadOnlySource = 'requested' | 'command default' | 'DJANGOCOMMAND_READONLY_COMMANDS';

/** Whether a run is read-only, and every reason it is (empty when writable). */
export function effectiveReadOnly(requested: boolean, command: ReadOnlyDefaults): { readOnly: boolean; sources: ReadOnlySource[] } {
  const sources: ReadOnlySource[] = [];
  if (requested) sources.push('requested');
  if (command.readOnlyDefault) sources.push('command default');
  if (command.djangoReadOnly) sources.push('DJANGOCOMMAND_READONLY_COMMANDS');
  return { readOnly: sources.length > 0, sources };
}

const SEPARATOR = ';readonly=';

/**
 * What a runner that reports read-only commands appends to its commands hash (before any
 * `;schedules=` part): a change of DJANGOCOMMAND_READONLY_COMMANDS alone then resends the
 * catalogue. '' when none is read-only, so hashes of projects without the setting are unchanged.
 */
export function readOnlyHashSuffix(readOnlyNames: readonly string[]): string {
  if (readOnlyNames.length === 0) return '';
  const sorted = [...new Set(readOnlyNames)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return SEPARATOR + createHash('sha256').update(pythonCanonicalJson(sorted), 'utf8').digest('hex').slice(0, 32);
}
