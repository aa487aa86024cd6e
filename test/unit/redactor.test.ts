/** The runner's output scrubber (src/runner/redactor.ts): secrets and patterns, however output is split. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LINE_LIMIT, redactionRules, redactText, StreamRedactor, type RedactionRules } from '../../src/runner/redactor.js';
import { OutputChunker, type Chunk } from '../../src/runner/outputChunker.js';
import { resolveRunnerSettings, type DjangoSettingsReport } from '../../src/runner/settings.js';

const SECRET_KEY = 'django-insecure-abc123XYZ';
const DB_PASSWORD = 'hunter2-but-longer';
const rules = redactionRules(
  [
    { name: 'SECRET_KEY', value: SECRET_KEY },
    { name: 'DATABASES.default.PASSWORD', value: DB_PASSWORD },
    { name: 'SHORT_TOKEN', value: 'short' },
  ],
  [],
);

/** Feeds `text` cut at `cuts`, collecting what goes out. */
function piecewise(r: RedactionRules, text: string, cuts: number[]): { out: string; pieces: string[] } {
  const red = new StreamRedactor(r);
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let from = 0;
  for (const c of [...at, text.length]) {
    pieces.push(red.push(text.slice(from, c)));
    from = c;
  }
  pieces.push(red.end());
  return { out: pieces.join(''), pieces };
}

describe('redactor', () => {
  it('replaces secret values with their setting name, and leaves short values alone', () => {
    expect(redactText(rules, `key=${SECRET_KEY}\npw: ${DB_PASSWORD} short\n`)).toBe('key=[redacted:SECRET_KEY]\npw: [redacted:DATABASES.default.PASSWORD] short\n');
  });

  it('finds a secret split across two reads, and holds back only what could start one', () => {
    const red = new StreamRedactor(rules);
    expect(red.push('starting up\nthe key is django-ins')).toBe('starting up\nthe key is ');
    expect(red.push('ecure-abc123XYZ!\n')).toBe('[redacted:SECRET_KEY]!\n');
    // Text that merely starts like a secret goes out as soon as it is seen not to be one.
    expect(red.push('djan')).toBe('');
    expect(red.push('go rocks\n')).toBe('django rocks\n');
    expect(red.push('plain output, nothing waits')).toBe('plain output, nothing waits');
    expect(red.push('hunter2-but')).toBe('');
    expect(red.end()).toBe('hunter2-but');
  });

  it('prefers the longer of two secrets starting at one place', () => {
    const r = redactionRules([{ name: 'A', value: 'abcdefgh' }, { name: 'B', value: 'abcdefghijkl' }], []);
    expect(redactText(r, 'abcdefghijkl abcdefghxx')).toBe('[redacted:B] [redacted:A]xx');
    const red = new StreamRedactor(r);
    expect(red.push('abcdefgh')).toBe('');
    expect(red.push('ij')).toBe('');
    expect(red.push('kl')).toBe('[redacted:B]');
  });

  it('applies DJANGOCOMMAND_REDACT_PATTERNS to whole lines, also split, numbering patterns from 1', () => {
    const r = redactionRules([], ['sk_live_[A-Za-z0-9]{6,}', '(?i)bearer [a-z0-9.]+']);
    expect(redactText(r, 'pay with sk_live_abcDEF123 now\nAuthorization: BEARER ey.J0\n')).toBe('pay with [redacted:pattern 1] now\nAuthorization: [redacted:pattern 2]\n');
    const red = new StreamRedactor(r);
    expect(red.push('token sk_li')).toBe('');
    expect(red.push('ve_abcdef99')).toBe('');
    expect(red.push(' done\nnext')).toBe('token [redacted:pattern 1] done\n');
    expect(red.end()).toBe('next');
  });

  it('refuses a pattern that does not compile or matches empty text, naming it by number', () => {
    expect(() => redactionRules([], ['ok[0-9]+', '(unclosed'])).toThrow(/pattern 2 is not a regular expression/);
    expect(() => redactionRules([], ['a*'])).toThrow(/pattern 1 matches empty text/);
  });

  it('scrubs a line longer than the limit in pieces', () => {
    const r = redactionRules([], ['secret-[0-9]+']);
    const long = 'x'.repeat(LINE_LIMIT + 10) + ' secret-42';
    const red = new StreamRedactor(r);
    expect(red.push(long)).toBe('x'.repeat(LINE_LIMIT));
    expect(red.end()).toBe('x'.repeat(10) + ' [redacted:pattern 1]');
  });

  it('gives the same text however the output is split, and never lets a secret through (property)', () => {
    const alphabet = 'XYZ0123456789';
    const secretArb = fc.array(fc.constantFrom(...alphabet), { minLength: 8, maxLength: 20 }).map((a) => a.join(''));
    fc.assert(
      fc.property(
        fc.uniqueArray(secretArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('\n', 'XY', '01', 'Z9')), { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        (secrets, noise, cuts, withPattern) => {
          const r = redactionRules(secrets.map((value, i) => ({ name: `S${i}`, value })), withPattern ? ['tok_[a-z]{4}'] : []);
          // Secrets woven into the noise, some twice in a row, some back to back.
          const parts: string[] = [];
          noise.forEach((n, i) => parts.push(n, secrets[i % secrets.length]));
          const text = parts.join('') + secrets[0].slice(0, -1);
          const whole = redactText(r, text);
          const { out } = piecewise(r, text, cuts);
          expect(out).toBe(whole);
          for (const s of secrets) expect(out.includes(s)).toBe(false);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('holds back nothing when no secret could start at the end (live output is not delayed)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }).filter((s) => !/[dh]/.test(s)), (text) => {
        const red = new StreamRedactor(rules);
        expect(red.push(text)).toBe(text);
      }),
    );
  });
});

describe('OutputChunker with a redactor', () => {
  it('emits scrubbed chunks, a secret split across writes and flushes included', async () => {
    const chunks: Chunk[] = [];
    const chunker = new OutputChunker((c) => chunks.push(c), { flushMs: 5, maxBytes: 1 << 20, redact: rules });
    chunker.write('stdout', Buffer.from('the key: django-insec'));
    await new Promise((r) => setTimeout(r, 30));
    // The first part went out on the timer, without the piece that could be the secret.
    expect(chunks.map((c) => c.data).join('')).toBe('the key: ');
    chunker.write('stdout', Buffer.from('ure-abc123XYZ\n'));
    chunker.write('stderr', Buffer.from(`password ${DB_PASSWORD.slice(0, 5)}`));
    chunker.write('stderr', Buffer.from(`${DB_PASSWORD.slice(5)} done\n`));
    chunker.flush(true);
    const out = (s: string) => chunks.filter((c) => c.stream === s).map((c) => c.data).join('');
    expect(out('stdout')).toBe('the key: [redacted:SECRET_KEY]\n');
    expect(out('stderr')).toBe('password [redacted:DATABASES.default.PASSWORD] done\n');
    expect(chunks.map((c) => c.data).join('')).not.toContain('abc123');
  });

  it('is split-invariant for UTF-8 bytes cut anywhere (property)', () => {
    const secret = 'pässwörd-🔑-long';
    const r = redactionRules([{ name: 'PASSWORD', value: secret }], []);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 8 }), fc.string({ maxLength: 10 }), (cuts, noise) => {
        const bytes = Buffer.from(`${noise}${secret}${noise}\n${secret}`);
        const chunks: Chunk[] = [];
        const chunker = new OutputChunker((c) => chunks.push(c), { flushMs: 1_000, maxBytes: 1 << 20, redact: r });
        let from = 0;
        for (const c of [...new Set(cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b)) {
          chunker.write('stdout', bytes.subarray(from, c));
          chunker.flush();
          from = c;
        }
        chunker.write('stdout', bytes.subarray(from));
        chunker.flush(true);
        expect(chunks.map((c) => c.data).join('')).toBe(`${noise}[redacted:PASSWORD]${noise}\n[redacted:PASSWORD]`);
      }),
    );
  });
});

describe('runner settings: what is scrubbed', () => {
  const report = (extra: Partial<DjangoSettingsReport> = {}): DjangoSettingsReport => ({
    settings: { DJANGOCOMMAND_API_KEY: 'dc_x', DJANGOCOMMAND_SERVER_URL: 'https://dc.example.com' },
    types: { DJANGOCOMMAND_API_KEY: 'str', DJANGOCOMMAND_SERVER_URL: 'str' },
    base_dir: '/srv/shop',
    python_version: '3.11.2',
    django_version: '5.0',
    settings_module: 'shop.settings',
    ...extra,
  });

  it('takes the secrets bootstrap.py found and the patterns from Django settings or the environment', () => {
    const s = resolveRunnerSettings({}, {}, report({ secrets: [{ name: 'SECRET_KEY', value: SECRET_KEY }, { name: 'X_TOKEN', value: 'tiny' }], redact_patterns: ['a,b[0-9]+'] }));
    expect(s.redaction.secrets).toEqual([{ name: 'SECRET_KEY', value: SECRET_KEY }]);
    expect(s.redaction.patterns.map((p) => p.source)).toEqual(['a,b[0-9]+']);
    const fromEnv = resolveRunnerSettings({}, { DJANGOCOMMAND_REDACT_PATTERNS: 'one[0-9]+\ntwo,[a-z]+\n' }, report({ redact_patterns: ['ignored'] }));
    expect(fromEnv.redaction.patterns.map((p) => p.source)).toEqual(['one[0-9]+', 'two,[a-z]+']);
    const json = resolveRunnerSettings({}, { DJANGOCOMMAND_REDACT_PATTERNS: '["x[0-9]+", "y\\\\d+"]' }, report());
    expect(json.redaction.patterns.map((p) => p.source)).toEqual(['x[0-9]+', 'y\\d+']);
    expect(resolveRunnerSettings({}, {}, report()).redaction).toEqual({ secrets: [], patterns: [] });
  });

  it('refuses a wrong DJANGOCOMMAND_REDACT_PATTERNS with the fix', () => {
    expect(() => resolveRunnerSettings({}, {}, report({ redact_patterns: 'sk_[a-z]+' }))).toThrow(/is a string; it must be a tuple/);
    expect(() => resolveRunnerSettings({}, {}, report({ redact_patterns: [1] }))).toThrow(/tuple of regular expressions/);
    expect(() => resolveRunnerSettings({}, { DJANGOCOMMAND_REDACT_PATTERNS: '[oops' }, report())).toThrow(/not a JSON list/);
    expect(() => resolveRunnerSettings({}, { DJANGOCOMMAND_REDACT_PATTERNS: '(' }, report())).toThrow(/pattern 1 is not a regular expression/);
  });
});
