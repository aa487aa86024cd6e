/** `run check --project shop`: which words after the command name are options of `run` itself. */
import { describe, expect, it } from 'vitest';
import { correctedCommandLine, misplacedOptions, type OurOption } from '../../src/cli/misplacedOptions.js';

const OURS: OurOption[] = [
  { name: '--project', takesValue: true },
  { name: '--timeout', takesValue: true },
  { name: '--detach', takesValue: false },
  { name: '--json', takesValue: false },
  { name: '--token', takesValue: true },
];
/** An argparse schema as bootstrap.py reports it: only what misplacedOptions reads. */
const schema = (...options: string[][]) => ({
  arguments: [{ dest: 'x', option_strings: [], kind: 'store' }, ...options.map((o) => ({ dest: o[0].replace(/^-+/, ''), option_strings: o, kind: 'store' }))],
  groups: [],
  subcommands: null,
});
const words = (args: string[], s: unknown) => misplacedOptions(args, OURS, s).map((m) => m.words);

describe('misplacedOptions', () => {
  it('finds ours, with their values, when the command has no schema', () => {
    expect(words(['--project', 'shop', '--deploy', '--json', '--timeout=5'], null)).toEqual([['--project', 'shop'], ['--json'], ['--timeout=5']]);
    expect(words(['--deploy', '--stepz', '3', 'shop'], null)).toEqual([]);
  });

  it("leaves the command's own option of the same name alone, and one argparse would take as an abbreviation", () => {
    const own = schema(['--timeout', '-t'], ['--project-name'], ['--verbosity', '-v']);
    expect(words(['--timeout', '5', '--project', 'p', '--json'], own)).toEqual([['--json']]);
    // A subcommand's option counts too.
    const nested = { ...schema(), subcommands: { dest: 'cmd', required: true, choices: { add: schema(['--json']) } } };
    expect(words(['add', '--json', '--detach'], nested)).toEqual([['--detach']]);
  });

  it('stops at --: what follows is the command\'s whatever it looks like', () => {
    expect(words(['--deploy', '--', '--project', 'shop'], null)).toEqual([]);
  });

  it('a schema that is not a parser is no schema', () => {
    expect(words(['--json'], { what: 'else' })).toEqual([['--json']]);
  });
});

describe('correctedCommandLine', () => {
  it('moves ours before the command name, keeps the rest in order, and never echoes a token', () => {
    const args = ['--deploy', '--project', 'my shop', '--token', 'dct_secret', '-v', '2'];
    const line = correctedCommandLine('check', args, misplacedOptions(args, OURS, null));
    expect(line).toBe("djangocommand run --project 'my shop' --token TOKEN check --deploy -v 2");
  });
});
