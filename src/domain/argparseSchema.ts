/**
 * The structural check of a command's argparse schema as a runner reports it (bootstrap.py's
 * `parser_schema`), before it is stored: whatever passes can be read by validateArgv and the
 * dashboard's form without a TypeError. Every field bootstrap.py writes is typed here, including
 * the partial argument it writes when a custom Action blows up (kind "other", only dest and
 * option_strings for sure). Keys it does not write are allowed, as bounded JSON, so a newer
 * runner's extra fields do not get its whole catalogue refused by an older server.
 *
 * The walk is iterative (an explicit stack), and depth-limited twice: subcommands within
 * subcommands (bootstrap.py stops at 8 levels) and plain JSON values such as defaults
 * (bootstrap.py's json_safe stops at 32). A schema nested 100,000 levels deep is one clear
 * error, not a stack overflow. Pure: no I/O.
 */

/** Nested subcommand levels accepted; bootstrap.py describes at most 9 (the top parser and 8 below). */
export const MAX_PARSER_DEPTH = 16;
/** Nesting of a plain JSON value (a default, a const, a choice); bootstrap.py's json_safe stops at 33. */
export const MAX_VALUE_DEPTH = 40;
const MAX_ARGUMENTS = 5_000;
const MAX_LIST = 10_000;

export const ARG_KINDS = [
  'store', 'store_const', 'store_true', 'store_false', 'append', 'append_const', 'count',
  'help', 'version', 'extend', 'boolean_optional', 'other',
] as const;
const KINDS = new Set<string>(ARG_KINDS);

export interface SchemaProblem {
  /** Where: `schema.arguments[0].nargs`, `schema.subcommands.choices["add"].groups`. */
  path: string;
  message: string;
}

type Task = { what: 'parser' | 'argument' | 'group' | 'subcommands' | 'value'; value: unknown; path: string; depth: number };

/** The first problem of a reported schema, or undefined when it is null or well formed. */
export function checkArgparseSchema(schema: unknown): SchemaProblem | undefined {
  if (schema === null) return undefined;
  const stack: Task[] = [{ what: 'parser', value: schema, path: 'schema', depth: 1 }];
  while (stack.length > 0) {
    const task = stack.pop()!;
    const problem = step(task, stack);
    if (problem) return { path: problem.path ?? task.path, message: problem.message };
  }
  return undefined;
}

type Found = { message: string; path?: string } | undefined;

function step(task: Task, stack: Task[]): Found {
  switch (task.what) {
    case 'parser':
      return parser(task, stack);
    case 'argument':
      return argument(task, stack);
    case 'group':
      return group(task, stack);
    case 'subcommands':
      return subcommands(task, stack);
    case 'value':
      return jsonValue(task, stack);
  }
}

function parser({ value, path, depth }: Task, stack: Task[]): Found {
  if (depth > MAX_PARSER_DEPTH) return { message: `subcommands are nested more than ${MAX_PARSER_DEPTH} levels deep` };
  if (!isObject(value)) return { message: 'must be an object with "arguments" and "groups"' };
  const known: Fields = {
    prog: optional(stringOrNull),
    description: optional(stringOrNull),
    epilog: optional(stringOrNull),
    subcommands_error: optional(isString),
    arguments: required(isArray),
    groups: required(isArray),
    subcommands: optional((v) => v === null || isObject(v)),
  };
  const wrong = fields(value, path, known, stack);
  if (wrong) return wrong;
  const args = value.arguments as unknown[];
  const groups = value.groups as unknown[];
  if (args.length > MAX_ARGUMENTS) return { path: `${path}.arguments`, message: `has more than ${MAX_ARGUMENTS} items` };
  if (groups.length > MAX_ARGUMENTS) return { path: `${path}.groups`, message: `has more than ${MAX_ARGUMENTS} items` };
  args.forEach((a, i) => stack.push({ what: 'argument', value: a, path: `${path}.arguments[${i}]`, depth }));
  groups.forEach((g, i) => stack.push({ what: 'group', value: g, path: `${path}.groups[${i}]`, depth }));
  if (isObject(value.subcommands)) stack.push({ what: 'subcommands', value: value.subcommands, path: `${path}.subcommands`, depth });
  return undefined;
}

function argument({ value, path }: Task, stack: Task[]): Found {
  if (!isObject(value)) return { message: 'must be an object describing an argument' };
  // A custom Action whose attributes raise leaves only dest, option_strings and kind for sure.
  const partial = value.kind === 'other';
  const need = (check: Check, expected?: string) => (partial ? optional(check, expected) : required(check, expected));
  const known: Fields = {
    dest: required(stringOrNull),
    option_strings: required((v) => isArray(v) && v.length <= MAX_LIST && v.every(isString)),
    kind: required((v) => typeof v === 'string' && KINDS.has(v), `one of ${ARG_KINDS.join(', ')}`),
    nargs: need((v) => v === null || (typeof v === 'number' && Number.isSafeInteger(v)) || isString(v), 'null, a whole number or a string'),
    type: need(isString),
    choices: need((v) => v === null || (isArray(v) && v.length <= MAX_LIST), 'null or a list'),
    required: need(isBoolean),
    help: optional(stringOrNull),
    metavar: optional(metavar, 'null, a string or a list of strings'),
    default: optional(() => true),
    const: optional(() => true),
    suppressed: optional(isBoolean),
    hidden: optional(isBoolean),
    common: optional(isBoolean),
    choices_truncated: optional(isBoolean),
    choices_repr: optional(isString),
    error: optional(isString),
  };
  const wrong = fields(value, path, known, stack);
  if (wrong) return wrong;
  for (const key of ['default', 'const'] as const) {
    if (Object.hasOwn(value, key)) stack.push({ what: 'value', value: value[key], path: `${path}.${key}`, depth: 1 });
  }
  if (isArray(value.choices)) value.choices.forEach((c, i) => stack.push({ what: 'value', value: c, path: `${path}.choices[${i}]`, depth: 1 }));
  return undefined;
}

function group({ value, path }: Task, stack: Task[]): Found {
  if (!isObject(value)) return { message: 'must be an object with "required" and "dests"' };
  return fields(value, path, {
    required: required(isBoolean),
    dests: required((v) => isArray(v) && v.length <= MAX_LIST && v.every(stringOrNull), 'a list of strings'),
  }, stack);
}

function subcommands({ value, path, depth }: Task, stack: Task[]): Found {
  const sub = value as Record<string, unknown>;
  const wrong = fields(sub, path, {
    dest: required(stringOrNull),
    required: required(isBoolean),
    metavar: optional(metavar, 'null, a string or a list of strings'),
    help: optional(stringOrNull),
    // A subparser deeper than bootstrap.py describes is null.
    choices: required((v) => isObject(v) && Object.keys(v).length <= MAX_LIST, 'an object of parsers'),
    choices_help: optional((v) => isObject(v) && Object.values(v).every(stringOrNull), 'an object of strings'),
    aliases: optional((v) => isObject(v) && Object.values(v).every(isString), 'an object of strings'),
  }, stack);
  if (wrong) return wrong;
  for (const [name, choice] of Object.entries(sub.choices as Record<string, unknown>)) {
    if (choice !== null) stack.push({ what: 'parser', value: choice, path: `${path}.choices[${JSON.stringify(name)}]`, depth: depth + 1 });
  }
  return undefined;
}

/** Any JSON value, nested at most MAX_VALUE_DEPTH levels. */
function jsonValue({ value, path, depth }: Task, stack: Task[]): Found {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { message: 'must be a finite number' };
  if (depth > MAX_VALUE_DEPTH) return { message: `is nested more than ${MAX_VALUE_DEPTH} levels deep` };
  if (isArray(value)) {
    value.forEach((v, i) => stack.push({ what: 'value', value: v, path: `${path}[${i}]`, depth: depth + 1 }));
    return undefined;
  }
  if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) stack.push({ what: 'value', value: v, path: `${path}[${JSON.stringify(k)}]`, depth: depth + 1 });
    return undefined;
  }
  return { message: 'must be JSON' };
}

type Check = (v: unknown) => boolean;
type Field = { required: boolean; check: Check; expected?: string };
type Fields = Record<string, Field>;
const required = (check: Check, expected?: string): Field => ({ required: true, check, expected });
const optional = (check: Check, expected?: string): Field => ({ required: false, check, expected });

/** Checks the known fields of an object; its other fields must be bounded JSON (queued). */
function fields(value: Record<string, unknown>, path: string, known: Fields, stack: Task[]): Found {
  for (const [key, f] of Object.entries(known)) {
    const present = Object.hasOwn(value, key);
    if (!present && f.required) return { path: `${path}.${key}`, message: 'is missing' };
    if (present && !f.check(value[key])) return { path: `${path}.${key}`, message: `must be ${f.expected ?? expectedOf(f.check)}` };
  }
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(known, key)) stack.push({ what: 'value', value: value[key], path: `${path}[${JSON.stringify(key)}]`, depth: 1 });
  }
  return undefined;
}

function expectedOf(check: Check): string {
  if (check === isString) return 'a string';
  if (check === stringOrNull) return 'a string or null';
  if (check === isBoolean) return 'true or false';
  if (check === isArray) return 'a list';
  return 'well formed';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isArray(v: unknown): v is unknown[] {
  return Array.isArray(v);
}
function isString(v: unknown): v is string {
  return typeof v === 'string';
}
function stringOrNull(v: unknown): boolean {
  return v === null || typeof v === 'string';
}
function isBoolean(v: unknown): boolean {
  return typeof v === 'boolean';
}
function metavar(v: unknown): boolean {
  return v === null || typeof v === 'string' || (isArray(v) && v.length <= MAX_LIST && v.every(isString));
}
