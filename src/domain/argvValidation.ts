/**
 * Checks an argv list against a command's argparse definition (as bootstrap.py describes it)
 * before anything runs, with argparse's own wording, so a mistake is a clear 400 instead of a
 * failed execution. It is deliberately conservative: whatever it cannot judge for sure (custom
 * types and actions, REMAINDER) it lets through, and argparse on the Django host has the last
 * word. Pure: no I/O.
 */
import { checkArgparseSchema } from './argparseSchema.js';

export interface ArgSchema {
  dest: string;
  option_strings: string[];
  kind: string;
  nargs: null | number | '?' | '*' | '+' | '...' | string;
  type: string;
  choices: unknown[] | null;
  required: boolean;
  metavar?: string | string[] | null;
}

export interface ParserSchema {
  arguments: ArgSchema[];
  groups: Array<{ required: boolean; dests: string[] }>;
  /** A subparser is null when it is nested deeper than bootstrap.py describes. */
  subcommands: null | { dest: string | null; required: boolean; metavar?: string | string[] | null; choices: Record<string, ParserSchema | null> };
}

export interface ArgvProblem {
  /** The argument's dest, for a form to show the message next to its field. */
  field: string | null;
  message: string;
}

const FLAG_KINDS = new Set(['store_true', 'store_false', 'store_const', 'append_const', 'count', 'help', 'version']);

class Stop extends Error {}

/** Never throws on a schema that is not well formed: it cannot judge, so argparse will. */
export function validateArgv(schema: unknown, argv: readonly string[]): ArgvProblem | undefined {
  if (!isParserSchema(schema)) return undefined;
  try {
    return check(schema, [...argv]);
  } catch (err) {
    if (err instanceof Stop) return undefined; // something we do not model: let argparse judge
    throw err;
  }
}

function isParserSchema(s: unknown): s is ParserSchema {
  return typeof s === 'object' && s !== null && checkArgparseSchema(s) === undefined;
}

const KNOWN_NARGS = new Set(['?', '*', '+']);

function check(schema: ParserSchema, argv: string[]): ArgvProblem | undefined {
  const options = new Map<string, ArgSchema>();
  const positionals = schema.arguments.filter((a) => a.option_strings.length === 0);
  for (const a of schema.arguments) for (const o of a.option_strings) options.set(o, a);
  // Help and version end argparse early; custom actions and REMAINDER are beyond this model.
  if (argv.some((t) => t === '-h' || t === '--help' || t === '--version')) throw new Stop();
  if (schema.arguments.some((a) => a.kind === 'other' || a.nargs === '...')) throw new Stop();
  // An nargs argparse itself would not accept (a custom Action's own idea) is beyond this model too.
  if (schema.arguments.some((a) => (typeof a.nargs === 'number' && a.nargs < 0) || (typeof a.nargs === 'string' && !KNOWN_NARGS.has(a.nargs)))) throw new Stop();

  const seen = new Set<string>();
  const loose: string[] = [];
  /** Where each loose token and each unknown option stood: argparse lists leftovers in argv order. */
  const looseAt: number[] = [];
  const unknown: Array<{ at: number; token: string }> = [];
  let i = 0;
  let onlyPositionals = false;
  while (i < argv.length) {
    const token = argv[i++];
    if (!onlyPositionals && token === '--') {
      onlyPositionals = true;
      continue;
    }
    if (onlyPositionals || !looksLikeOption(token, options)) {
      if (schema.subcommands && Object.hasOwn(schema.subcommands.choices, token) && positionals.length === 0) {
        const sub = schema.subcommands.choices[token];
        if (!sub) throw new Stop(); // nested deeper than bootstrap.py describes
        return requiredMissing(schema, seen, loose) ?? check(sub, argv.slice(i));
      }
      loose.push(token);
      looseAt.push(i - 1);
      continue;
    }
    let name = token;
    let attached: string | undefined;
    const eq = token.indexOf('=');
    if (token.startsWith('--') && eq > 0) {
      name = token.slice(0, eq);
      attached = token.slice(eq + 1);
    }
    let arg = options.get(name) ?? longPrefix(name, options);
    if (!arg && !token.startsWith('--') && token.length > 2) {
      // "-v3": a short option with its value attached.
      arg = options.get(token.slice(0, 2));
      if (arg) attached = token.slice(2);
    }
    if (!arg) {
      unknown.push({ at: i - 1, token });
      continue;
    }
    const label = arg.option_strings.join('/');
    for (const g of schema.groups) {
      if (!g.dests.includes(arg.dest)) continue;
      const clash = g.dests.find((d) => d !== arg!.dest && seen.has(d));
      if (clash) {
        const other = schema.arguments.find((a) => a.dest === clash)!;
        return { field: arg.dest, message: `argument ${label}: not allowed with argument ${other.option_strings.join('/') || other.dest}` };
      }
    }
    seen.add(arg.dest);
    if (FLAG_KINDS.has(arg.kind) || arg.nargs === 0) {
      if (attached !== undefined && token.startsWith('--')) return { field: arg.dest, message: `argument ${label}: ignored explicit argument '${attached}'` };
      continue;
    }
    const values: string[] = attached !== undefined ? [attached] : [];
    const want = arg.nargs;
    if (attached === undefined) {
      const take = (n: number) => {
        while (values.length < n && i < argv.length && !looksLikeOption(argv[i], options)) values.push(argv[i++]);
      };
      if (want === null || typeof want === 'number') take(want ?? 1);
      else if (want === '?') take(1);
      else take(Infinity);
    }
    const need = want === null ? 1 : typeof want === 'number' ? want : want === '+' ? 1 : 0;
    if (values.length < need) {
      const what = want === null || want === 1 ? 'expected one argument' : want === '+' ? 'expected at least one argument' : `expected ${want} arguments`;
      return { field: arg.dest, message: `argument ${label}: ${what}` };
    }
    for (const v of values) {
      const problem = checkValue(arg, label, v);
      if (problem) return problem;
    }
  }

  const missing = requiredMissing(schema, seen, loose);
  if (missing) return missing;
  const extra = assignPositionals(positionals, loose);
  if (typeof extra !== 'number') return extra;
  if (schema.subcommands) {
    // Positionals came first; the subcommand is the next loose token.
    const sub = loose[extra];
    const name = typeof schema.subcommands.metavar === 'string' ? schema.subcommands.metavar : `{${Object.keys(schema.subcommands.choices).join(',')}}`;
    if (sub === undefined) {
      if (schema.subcommands.required) return { field: schema.subcommands.dest, message: `the following arguments are required: ${name}` };
    } else if (!Object.hasOwn(schema.subcommands.choices, sub)) {
      return { field: schema.subcommands.dest, message: `argument ${name}: invalid choice: '${sub}' (choose from ${Object.keys(schema.subcommands.choices).map((c) => `'${c}'`).join(', ')})` };
    }
    throw new Stop(); // a subcommand after positionals: argparse's matching is subtle, let it judge
  }
  const leftovers = [...loose.slice(extra).map((token, k) => ({ at: looseAt[extra + k], token })), ...unknown].sort((a, b) => a.at - b.at).map((x) => x.token);
  if (leftovers.length > 0) return { field: null, message: `unrecognized arguments: ${leftovers.join(' ')}` };
  return undefined;
}

function requiredMissing(schema: ParserSchema, seen: Set<string>, loose: string[]): ArgvProblem | undefined {
  const missing = schema.arguments.filter((a) => a.required && a.option_strings.length > 0 && !seen.has(a.dest));
  if (missing.length > 0) return { field: missing[0].dest, message: `the following arguments are required: ${missing.map((a) => a.option_strings.join('/')).join(', ')}` };
  for (const g of schema.groups) {
    if (g.required && !g.dests.some((d) => seen.has(d))) {
      const names = g.dests.map((d) => schema.arguments.find((a) => a.dest === d)?.option_strings.join('/') ?? d);
      return { field: g.dests[0], message: `one of the arguments ${names.join(' ')} is required` };
    }
  }
  void loose;
  return undefined;
}

/** Gives loose tokens to positionals in order; returns how many it used, or a problem. */
function assignPositionals(positionals: ArgSchema[], loose: string[]): number | ArgvProblem {
  let used = 0;
  for (let p = 0; p < positionals.length; p++) {
    const arg = positionals[p];
    const laterMinimum = positionals.slice(p + 1).reduce((n, a) => n + minimumOf(a), 0);
    const available = loose.length - used - laterMinimum;
    let take: number;
    if (arg.nargs === null) take = 1;
    else if (typeof arg.nargs === 'number') take = arg.nargs;
    else if (arg.nargs === '?') take = Math.min(1, Math.max(0, available));
    else if (arg.nargs === '*' || arg.nargs === '+') take = Math.max(0, available);
    else throw new Stop();
    if (take < minimumOf(arg) || used + take > loose.length) {
      // argparse names every positional it did not fill, optional ones too.
      const names = positionals.slice(p).map(displayName);
      return { field: arg.dest, message: `the following arguments are required: ${names.join(', ')}` };
    }
    for (const v of loose.slice(used, used + take)) {
      const problem = checkValue(arg, displayName(arg), v);
      if (problem) return problem;
    }
    used += take;
  }
  return used;
}

function displayName(a: ArgSchema): string {
  return typeof a.metavar === 'string' ? a.metavar : a.dest;
}

function minimumOf(a: ArgSchema): number {
  if (a.nargs === null) return 1;
  if (typeof a.nargs === 'number') return a.nargs;
  return a.nargs === '+' ? 1 : 0;
}

function checkValue(arg: ArgSchema, label: string, value: string): ArgvProblem | undefined {
  let typed: unknown = value;
  if (arg.type === 'int') {
    if (!/^\s*[-+]?\d+\s*$/.test(value.replace(/_/g, ''))) return { field: arg.dest, message: `argument ${label}: invalid int value: '${value}'` };
    typed = Number(value.replace(/_/g, ''));
  } else if (arg.type === 'float') {
    const n = Number(value);
    if (value.trim() === '' || (Number.isNaN(n) && !/^\s*[-+]?(nan|inf(inity)?)\s*$/i.test(value))) return { field: arg.dest, message: `argument ${label}: invalid float value: '${value}'` };
    typed = n;
  } else if (arg.type !== 'str') {
    return undefined; // a custom type: only the host can convert it
  }
  if (arg.choices && !arg.choices.some((c) => c === typed || String(c) === value)) {
    const shown = typeof typed === 'string' ? `'${value}'` : String(typed);
    return { field: arg.dest, message: `argument ${label}: invalid choice: ${shown} (choose from ${arg.choices.map((c) => (typeof c === 'string' ? `'${c}'` : String(c))).join(', ')})` };
  }
  return undefined;
}

/** argparse treats "-5" as a value unless the parser has options that look like numbers. */
function looksLikeOption(token: string, options: Map<string, ArgSchema>): boolean {
  if (!token.startsWith('-') || token === '-') return false;
  if (/^-\d+(\.\d*)?$/.test(token) && ![...options.keys()].some((o) => /^-\d/.test(o))) return false;
  return true;
}

function longPrefix(name: string, options: Map<string, ArgSchema>): ArgSchema | undefined {
  if (!name.startsWith('--')) return undefined;
  const matches = [...options.entries()].filter(([o]) => o.startsWith(name));
  const args = new Set(matches.map(([, a]) => a));
  return args.size === 1 ? matches[0][1] : undefined;
}
