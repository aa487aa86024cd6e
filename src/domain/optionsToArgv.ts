/**
 * django-middle-management's calls: `call_command(command, **options)` with the options of a JSON
 * body, keyed by argparse `dest`. Turned here into the argv a runner runs, through the command's
 * argparse schema: positionals in order, `--flag` for booleans, repeated options for lists.
 * Without a schema (a v1 runner reports none), `dest` becomes `--dest-with-dashes`. Pure.
 */
import type { ArgSchema, ParserSchema } from './argvValidation.js';

export type OptionsProblem = { field: string; message: string };

type Scalar = string | number | boolean;

export function optionsToArgv(schema: unknown, options: Record<string, unknown>): { argv: string[] } | { problem: OptionsProblem } {
  const parser = isParser(schema) ? schema : undefined;
  const byDest = new Map<string, ArgSchema>();
  for (const a of parser?.arguments ?? []) if (a.dest && !byDest.has(a.dest)) byDest.set(a.dest, a);
  const flags: string[] = [];
  const positionals = new Map<string, string[]>();
  for (const [dest, value] of Object.entries(options)) {
    const values = Array.isArray(value) ? value : [value];
    if (!values.every((v): v is Scalar => ['string', 'number', 'boolean'].includes(typeof v))) {
      return { problem: { field: dest, message: `${dest}: give a string, a number, true/false or a list of them.` } };
    }
    const arg = byDest.get(dest);
    if (parser && !arg) {
      const known = [...byDest.keys()].filter((d) => d !== 'help').sort();
      return { problem: { field: dest, message: `unknown option "${dest}" (known: ${known.join(', ') || 'none'}).` } };
    }
    if (arg && arg.option_strings.length === 0) {
      positionals.set(dest, values.map(String));
      continue;
    }
    const flag = arg ? (arg.option_strings.find((o) => o.startsWith('--')) ?? arg.option_strings[0]) : `--${dest.replace(/_/g, '-')}`;
    const kind = arg?.kind ?? (typeof value === 'boolean' ? 'store_true' : 'store');
    if (kind === 'store_true' || kind === 'store_false' || kind === 'store_const' || kind === 'append_const') {
      // call_command(fake=True): the flag is given when the value is what the flag stores.
      const on = kind === 'store_false' ? value === false : value === true || (kind !== 'store_true' && value !== false);
      if (typeof value !== 'boolean' && kind === 'store_true') return { problem: { field: dest, message: `${dest} is a flag: give true or false.` } };
      if (on) flags.push(flag);
      continue;
    }
    if (kind === 'count') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 100) return { problem: { field: dest, message: `${dest} counts: give a whole number.` } };
      for (let i = 0; i < n; i++) flags.push(flag);
      continue;
    }
    if (kind === 'boolean_optional') {
      if (typeof value !== 'boolean') return { problem: { field: dest, message: `${dest}: give true or false.` } };
      flags.push(value ? flag : flag.replace(/^--/, '--no-'));
      continue;
    }
    const repeats = kind === 'append' || kind === 'extend';
    const many = arg && (arg.nargs === '*' || arg.nargs === '+' || typeof arg.nargs === 'number');
    if (repeats && !many) for (const v of values) flags.push(flag, String(v));
    else flags.push(flag, ...values.map(String));
  }
  // Positionals in the order the parser declares them; options after, with `--` never needed.
  const ordered = (parser?.arguments ?? []).filter((a) => a.option_strings.length === 0).flatMap((a) => positionals.get(a.dest) ?? []);
  return { argv: [...ordered, ...flags] };
}

function isParser(s: unknown): s is ParserSchema {
  return typeof s === 'object' && s !== null && Array.isArray((s as ParserSchema).arguments);
}
