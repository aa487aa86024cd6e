/**
 * The commands hash a v1 runner sends: "sha256:" + sha256 of the command list sorted by
 * name and serialised the way Python's `json.dumps(cmds, sort_keys=True, separators=(',', ':'))`
 * does it (ASCII only: U+007F and everything above escaped as lowercase \uXXXX, astral characters
 * as surrogate pairs). Computing the same bytes lets the server answer `commands_in_sync`
 * honestly.
 */
import { createHash } from 'node:crypto';

export interface HashableCommand {
  name: string;
  app_label: string;
  help_text: string;
}

/** Python-compatible canonical JSON of any JSON value (sorted keys, no spaces, ASCII). */
export function pythonCanonicalJson(value: unknown): string {
  return toAscii(JSON.stringify(sortKeys(value)));
}

export function commandsHash(commands: readonly HashableCommand[]): string {
  const sorted = [...commands]
    .map((c) => ({ name: c.name, app_label: c.app_label, help_text: c.help_text }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return 'sha256:' + createHash('sha256').update(pythonCanonicalJson(sorted), 'utf8').digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

function toAscii(json: string): string {
  // JSON.stringify already escapes control characters and lone surrogates like Python does;
  // Python's ensure_ascii also escapes DEL (U+007F) and every code unit above it.
  return json.replace(/[\u007f-\uffff]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
}
