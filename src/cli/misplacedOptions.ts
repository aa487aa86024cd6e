/**
 * `djangocommand run check --project shop`: our options end where the command name starts (what
 * follows is the command's own), so `--project` went to Django, which refused it with a puzzling
 * "unrecognized arguments". This finds such options before anything runs.
 *
 * A Django command may have an option of the same name (its own `--timeout`): a word is ours
 * only when the command's argparse schema (as its runner reported it) does not know it, exactly
 * or as an abbreviation argparse would accept; with no schema, every one of our option names
 * is ours. Words after a `--` are the command's, whatever they look like. Pure: no I/O.
 */

export interface OurOption {
  /** `--project` */
  name: string;
  /** It takes a value (`--project shop`, `--project=shop`). */
  takesValue: boolean;
}

export interface MisplacedOption {
  option: OurOption;
  /** The words as written: `['--project', 'shop']` or `['--project=shop']`. */
  words: string[];
}

export function misplacedOptions(args: readonly string[], ours: readonly OurOption[], schema: unknown): MisplacedOption[] {
  const known = schemaOptions(schema);
  const found: MisplacedOption[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i];
    if (word === '--') break;
    if (!word.startsWith('--')) continue;
    const eq = word.indexOf('=');
    const name = eq > 0 ? word.slice(0, eq) : word;
    const option = ours.find((o) => o.name === name);
    if (!option || (known && argparseKnows(known, name))) continue;
    const words = option.takesValue && eq < 0 && i + 1 < args.length ? [word, args[++i]] : [word];
    found.push({ option, words });
  }
  return found;
}

/** Every option string of the schema's parser and its subcommands' parsers; undefined when there is no schema to read. */
function schemaOptions(schema: unknown): Set<string> | undefined {
  if (!isParser(schema)) return undefined;
  const options = new Set<string>();
  const parsers: unknown[] = [schema];
  while (parsers.length > 0) {
    const p = parsers.pop();
    if (!isParser(p)) continue;
    for (const a of p.arguments) {
      const strings = (a as { option_strings?: unknown } | null)?.option_strings;
      if (Array.isArray(strings)) for (const o of strings) if (typeof o === 'string') options.add(o);
    }
    const choices = (p.subcommands as { choices?: unknown } | null | undefined)?.choices;
    if (choices && typeof choices === 'object') parsers.push(...Object.values(choices));
  }
  return options;
}

function isParser(s: unknown): s is { arguments: unknown[]; subcommands?: unknown } {
  return typeof s === 'object' && s !== null && Array.isArray((s as { arguments?: unknown }).arguments);
}

/** argparse takes `--proj` for `--project-name` (allow_abbrev, Django's default). */
function argparseKnows(options: Set<string>, name: string): boolean {
  if (options.has(name)) return true;
  for (const o of options) if (o.startsWith('--') && o.startsWith(name)) return true;
  return false;
}

/** `djangocommand run --project shop check --verbosity 2`: the command line the user meant. */
export function correctedCommandLine(command: string, args: readonly string[], misplaced: readonly MisplacedOption[]): string {
  // A token is not echoed back to a terminal (or a CI log).
  const moved = misplaced.flatMap((m) => (m.option.name === '--token' ? ['--token', 'TOKEN'] : m.words));
  const rest = [...args];
  for (const m of misplaced) {
    const at = rest.findIndex((w, i) => m.words.every((x, j) => rest[i + j] === x));
    if (at >= 0) rest.splice(at, m.words.length);
  }
  return ['djangocommand', 'run', ...moved, command, ...rest].map(shellQuote).join(' ');
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
