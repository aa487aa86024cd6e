/**
 * The argv check must agree with argparse itself: every case runs through the real parser of
 * the example project's commands, and our verdict is compared with argparse's.
 */
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateArgv } from '../../src/domain/argvValidation.js';
import { EXAMPLE_DIR, PYTHON, REPO } from '../support/serverProcess.js';
import { tempDir } from '../support/databases.js';

const env = { ...process.env, EXAMPLE_DB_PATH: `${tempDir()}/db.sqlite3`, COLUMNS: '80' };
let schemas: Record<string, unknown> = {};
const verdicts = new Map<string, string | null>();
const argparse = (command: string, argv: string[]) => verdicts.get(JSON.stringify([command, argv])) as string | null;

/** argparse's verdicts, one Python process for all cases: null when it accepts, else its error message. */
function argparseAll(cases: Array<[string, string[]]>): Array<string | null> {
  const code = `
import json, sys, io, contextlib, django
django.setup()
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError
def verdict(name, argv):
    cmd = load_command_class(get_commands()[name], name)
    cmd._called_from_command_line = True
    parser = cmd.create_parser('manage.py', name)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(argv)
        return None
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1].split(': error: ', 1)[1]
    except CommandError as e:
        return str(e).replace('Error: ', '', 1)
print(json.dumps([verdict(name, argv) for name, argv in json.load(sys.stdin)]))
`;
  const out = execFileSync(PYTHON, ['-c', code], { cwd: EXAMPLE_DIR, env: { ...env, DJANGO_SETTINGS_MODULE: 'exampleproject.settings' }, input: JSON.stringify(cases) });
  return JSON.parse(out.toString());
}

describe('argv check against argparse', () => {
  const cases: Array<[string, string[]]> = [
    ['rich_args', ['target']],
    ['rich_args', []],
    ['rich_args', ['t', 'x', 'y', '--count', '3', '--ratio', '0.5', '--mode', 'fast', '--dry-run', '--tag', 'a', '--tag=b']],
    ['rich_args', ['t', '--count', 'three']],
    ['rich_args', ['t', '--ratio', 'abc']],
    ['rich_args', ['t', '--mode', 'reckless']],
    ['rich_args', ['t', '--mode']],
    ['rich_args', ['t', '--verbose-output', '--quiet-output']],
    ['rich_args', ['t', '--nope']],
    ['rich_args', ['t', '--cou', '2']],
    ['rich_args', ['t', '-v', '2']],
    ['rich_args', ['t', '-v', '7']],
    ['rich_args', ['t', '--dry-run=yes']],
    ['rich_args', ['--', '-t']],
    ['rich_args', ['-5']],
    ['spew', ['--lines', '10', '--bytes', '5']],
    ['spew', ['--lines', '-3']],
    ['subcmds', []],
    ['subcmds', ['add', 'x']],
    ['subcmds', ['remove', 'x', '--force']],
    ['subcmds', ['add']],
    ['subcmds', ['explode']],
    ['subcmds', ['add', 'x', '--force']],
    ['check', ['--deploy', '--tag', 'models']],
    ['migrate', ['demo', '0001', '--plan']],
    ['migrate', ['--database']],
  ];
  beforeAll(() => {
    const out = execFileSync(PYTHON, [`${REPO}/src/runner/python/bootstrap.py`, 'commands'], { cwd: EXAMPLE_DIR, env, maxBuffer: 64 << 20 });
    schemas = Object.fromEntries((JSON.parse(out.toString()).commands as Array<{ name: string; schema: unknown }>).map((c) => [c.name, c.schema]));
    argparseAll(cases).forEach((v, i) => verdicts.set(JSON.stringify(cases[i]), v));
  });


  it.each(cases)('%s %j', (command, argv) => {
    const ours = validateArgv(schemas[command], argv);
    const theirs = argparse(command, argv);
    if (theirs === null) expect(ours).toBeUndefined();
    // Where we speak, we say what argparse says; where we cannot judge, argparse will.
    else if (ours) expect(ours.message).toBe(theirs);
  });

  it('catches the common mistakes itself', () => {
    const caught = cases.filter(([c, a]) => argparse(c, a) !== null && validateArgv(schemas[c], a) !== undefined).length;
    const errors = cases.filter(([c, a]) => argparse(c, a) !== null).length;
    expect(caught).toBeGreaterThanOrEqual(errors - 2);
  });
});

describe('argparse wording of leftovers', () => {
  it('lists unrecognized arguments in the order they were given, as argparse does', async () => {
    const { validateArgv } = await import('../../src/domain/argvValidation.js');
    const schema = { arguments: [{ dest: 'steps', option_strings: ['--steps'], kind: 'store', nargs: null, type: 'int', choices: null, required: false }], groups: [], subcommands: null };
    expect(validateArgv(schema, ['--stepz', '3'])?.message).toBe('unrecognized arguments: --stepz 3');
    expect(validateArgv(schema, ['x', '--nope', 'y'])?.message).toBe('unrecognized arguments: x --nope y');
  });
});
