/**
 * The structural check of reported argparse schemas: it accepts every shape bootstrap.py writes
 * (read from the real bootstrap.py, on odd parsers and the example project's commands), refuses
 * anything validateArgv or the dashboard could not read, with the path of the bad field, and
 * survives any depth. validateArgv never throws on a malformed schema.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkArgparseSchema, MAX_PARSER_DEPTH } from '../../src/domain/argparseSchema.js';
import { validateArgv } from '../../src/domain/argvValidation.js';
import { EXAMPLE_DIR, PYTHON, REPO } from '../support/serverProcess.js';
import { tempDir } from '../support/databases.js';

/** Schemas bootstrap.py writes for parsers with every oddity its own tests use, and a tree deeper than it describes. */
function oddSchemas(): Record<string, unknown> {
  const code = `
import argparse, importlib.util, json, sys
spec = importlib.util.spec_from_file_location('dc_bootstrap', sys.argv[1])
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)

class Odd(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)

class Exploding(argparse.Action):
    @property
    def choices(self):
        raise RuntimeError('boom')
    @choices.setter
    def choices(self, value):
        pass
    def __call__(self, parser, namespace, values, option_string=None):
        pass

class OnlyContains:
    def __contains__(self, item):
        return True

p = argparse.ArgumentParser(prog='manage.py x', description='desc', epilog='epi')
p.add_argument('name')
p.add_argument('rest', nargs=argparse.REMAINDER)
p.add_argument('--n', type=int, default=3, help='n (default %(default)s)')
p.add_argument('--f', type=float, default=float('nan'))
p.add_argument('--flag', action='store_true')
p.add_argument('--no-thing', dest='thing', action='store_false')
p.add_argument('--c', action='store_const', const={'a': [1, {'b': None}]})
p.add_argument('--tag', action='append', choices=['a', 'b'])
p.add_argument('--ac', action='append_const', const=5)
p.add_argument('-v', action='count', default=0)
p.add_argument('--ext', action='extend', nargs='+', type=str)
p.add_argument('--out', type=argparse.FileType('w'))
p.add_argument('--custom', type=lambda s: s.upper(), action=Odd, metavar=('A', 'B'), nargs=2)
p.add_argument('--hidden', help=argparse.SUPPRESS, default=argparse.SUPPRESS)
p.add_argument('--big', type=int, choices=range(5000))
p.add_argument('--weird', choices=OnlyContains(), metavar='W')
p.add_argument('--path', default=object())
p.add_argument('--set', default=frozenset(['b', 'a']))
p.add_argument('--x', action=Exploding, metavar='X')
p.add_argument('--名前', dest='名前', default='値')
loop = []
loop.append(loop)
p.add_argument('--loop', default=loop)
group = p.add_mutually_exclusive_group(required=True)
group.add_argument('--one', action='store_true')
group.add_argument('--two', action='store_true')
if hasattr(argparse, 'BooleanOptionalAction'):
    p.add_argument('--color', action=argparse.BooleanOptionalAction, default=True)
sub = p.add_subparsers(dest='action', metavar=('A', 'B'))
add = sub.add_parser('add', help='add it', aliases=['plus'])
add.add_argument('name')
deep = argparse.ArgumentParser(prog='deep')
level = deep
for i in range(12):
    level = level.add_subparsers(dest='d%d' % i, required=True).add_parser('l%d' % i)
    level.add_argument('--at-%d' % i, type=int)
print(json.dumps({'odd': bootstrap.parser_schema(p), 'deep': bootstrap.parser_schema(deep)}, allow_nan=False))
`;
  return JSON.parse(execFileSync(PYTHON, ['-c', code, `${REPO}/src/runner/python/bootstrap.py`]).toString());
}

function exampleSchemas(): Array<{ name: string; schema: unknown }> {
  const env = { ...process.env, EXAMPLE_DB_PATH: `${tempDir()}/db.sqlite3`, COLUMNS: '80' };
  const out = execFileSync(PYTHON, [`${REPO}/src/runner/python/bootstrap.py`, 'commands'], { cwd: EXAMPLE_DIR, env, maxBuffer: 64 << 20 });
  return JSON.parse(out.toString()).commands;
}

const nested = (levels: number, leaf: unknown = null): unknown => {
  let schema: unknown = leaf;
  for (let i = 0; i < levels; i++) schema = { arguments: [], groups: [], subcommands: { dest: 'x', required: false, choices: { x: schema } } };
  return schema;
};

describe('argparse schema check', () => {
  it('accepts every shape bootstrap.py writes, odd parsers and the example project alike', () => {
    const odd = oddSchemas();
    expect(checkArgparseSchema(odd.odd)).toBeUndefined();
    expect(checkArgparseSchema(odd.deep)).toBeUndefined();
    // bootstrap.py stops describing subparsers at some depth (null): still readable.
    expect(JSON.stringify(odd.deep)).toMatch(/"l\d+":null/);
    expect(validateArgv(odd.deep, ['l0', 'l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7', 'l8', 'l9', 'l10'])).toBeUndefined();
    const commands = exampleSchemas();
    expect(commands.length).toBeGreaterThan(10);
    for (const c of commands) expect([c.name, checkArgparseSchema(c.schema)]).toEqual([c.name, undefined]);
  });

  it.each([
    [{ arguments: [null], groups: [] }, 'schema.arguments[0]', /object/],
    [{ arguments: [{ dest: 'a', option_strings: [null], kind: 'store', nargs: null, type: 'str', choices: null, required: false }], groups: [] }, 'schema.arguments[0].option_strings', /must be/],
    [{ arguments: [{ dest: 'a', option_strings: [], kind: 'store', nargs: {}, type: 'str', choices: null, required: false }], groups: [] }, 'schema.arguments[0].nargs', /whole number/],
    [{ arguments: [{ dest: 'a', option_strings: [], kind: 'store', type: 'str', choices: null, required: false }], groups: [] }, 'schema.arguments[0].nargs', /missing/],
    [{ arguments: [{ dest: 'a', option_strings: [], kind: 'teleport', nargs: null, type: 'str', choices: null, required: false }], groups: [] }, 'schema.arguments[0].kind', /one of/],
    [{ arguments: [], groups: [{ required: true, dests: 'ab' }] }, 'schema.groups[0].dests', /list/],
    [{ arguments: [], groups: [null] }, 'schema.groups[0]', /object/],
    [{ arguments: [], groups: [], subcommands: { dest: 'x', required: false, choices: { add: 5 } } }, 'schema.subcommands.choices["add"]', /object/],
    [{ arguments: [], groups: [], subcommands: { dest: 'x', required: 'no', choices: {} } }, 'schema.subcommands.required', /true or false/],
    [{ arguments: {}, groups: [] }, 'schema.arguments', /list/],
    [{ groups: [] }, 'schema.arguments', /missing/],
    [[], 'schema', /object/],
    ['schema', 'schema', /object/],
  ])('refuses %j at %s', (schema, path, message) => {
    const problem = checkArgparseSchema(schema);
    expect(problem?.path).toBe(path);
    expect(problem?.message).toMatch(message);
  });

  it('refuses a tree deeper than any parser, and a value nested too deep, without recursion', () => {
    expect(checkArgparseSchema(nested(MAX_PARSER_DEPTH))).toBeUndefined();
    expect(checkArgparseSchema(nested(MAX_PARSER_DEPTH + 1))?.message).toMatch(/nested more than/);
    // 100,000 levels: built and checked without a stack overflow.
    const deep = JSON.parse('{"arguments":[],"groups":[],"subcommands":{"dest":"a","required":false,"choices":{"x":'.repeat(100_000) + 'null' + '}}}'.repeat(100_000));
    expect(checkArgparseSchema(deep)?.message).toMatch(/nested more than/);
    const deepDefault = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    const arg = { dest: 'a', option_strings: ['--a'], kind: 'store', nargs: null, type: 'str', choices: null, required: false, default: deepDefault };
    expect(checkArgparseSchema({ arguments: [arg], groups: [] })).toMatchObject({ path: expect.stringMatching(/^schema\.arguments\[0\]\.default(\[0\])+$/), message: expect.stringMatching(/nested more than/) });
  });

  it('lets validateArgv judge nothing rather than throw on a malformed schema', () => {
    const malformed: unknown[] = [
      { arguments: [null] },
      { arguments: [{}], groups: [] },
      { arguments: [{ dest: 'a', option_strings: 'x', kind: 'store' }], groups: [] },
      { arguments: [], groups: [null] },
      { arguments: [], groups: [], subcommands: { dest: 'x', required: true, choices: null } },
      { arguments: [], groups: [], subcommands: { dest: 'x', required: true, choices: { add: null } } },
      nested(100_000 / 100),
      { arguments: [{ dest: 'a', option_strings: ['--a'], kind: 'store', nargs: null, type: 'int', choices: [{}, [], null], required: true }], groups: [{ required: true, dests: [null] }] },
    ];
    for (const schema of malformed) {
      for (const argv of [[], ['add'], ['--a', '1'], ['add', '--x'], ['-h']]) expect(() => validateArgv(schema, argv)).not.toThrow();
    }
  });
});
