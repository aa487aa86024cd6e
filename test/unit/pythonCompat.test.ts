/** Our commands hash and shell splitting must match Python byte for byte: checked against the real interpreter. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commandsHash } from '../../src/domain/commandsHash.js';
import { joinShellWords, splitShellWords } from '../../src/domain/shellWords.js';

const PYTHON = '/usr/bin/python3';
const python = (code: string, input: unknown) => JSON.parse(execFileSync(PYTHON, ['-c', code], { input: JSON.stringify(input) }).toString());

describe('commands hash', () => {
  it('equals the Python runner hash for tricky text', () => {
    const commands = [
      { name: 'zeta', app_label: 'demo', help_text: 'usage: zeta\n\t"quoted" \\ back\u0001\u007f' },
      { name: 'alpha', app_label: 'django.core', help_text: 'héllo wörld ✓ 日本語 🎉 \u2028 end' },
      { name: 'mid', app_label: '', help_text: '' },
    ];
    const expected = python(
      `import json,sys,hashlib
cmds = sorted(json.load(sys.stdin), key=lambda c: c['name'])
print(json.dumps('sha256:' + hashlib.sha256(json.dumps(cmds, sort_keys=True, separators=(',', ':')).encode()).hexdigest()))`,
      commands,
    );
    expect(commandsHash(commands)).toBe(expected);
    expect(commandsHash([])).toBe(python(`import json,hashlib; print(json.dumps('sha256:' + hashlib.sha256(b'[]').hexdigest()))`, null));
  });
});

describe('shell words', () => {
  const samples = [
    'app 0003 --plan',
    `--name "two words" --x='single quoted' plain\\ escaped`,
    `"double \\"inner\\" \\\\ \\$HOME" 'it'"'"'s'`,
    '  lots   of\tspace\n',
    `--json '{"a": [1, 2]}' émoji🎉 ""`,
    '',
  ];
  it.each(samples)('splits %j like shlex.split', (s) => {
    expect(splitShellWords(s)).toEqual(python('import json,shlex,sys; print(json.dumps(shlex.split(json.load(sys.stdin))))', s));
  });

  it('joins so that shlex splits back the same words', () => {
    const words = ['migrate', 'app', '', "it's", 'a b', '$HOME', '--x=1;rm -rf /', 'ünï', '"q"', '\\'];
    const joined = joinShellWords(words);
    expect(python('import json,shlex,sys; print(json.dumps(shlex.split(json.load(sys.stdin))))', joined)).toEqual(words);
    expect(splitShellWords(joined)).toEqual(words);
  });

  it('refuses unbalanced quotes with a clear error', () => {
    expect(() => splitShellWords('a "b')).toThrow(/unclosed double quote/);
    expect(() => splitShellWords("a 'b")).toThrow(/unclosed single quote/);
  });
});
