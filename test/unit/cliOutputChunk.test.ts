/**
 * OutputChunkReader reads an output chunk's text as bytes, without JSON.parse: it must give
 * exactly the bytes JSON.parse + Buffer.from give, or say it cannot (undefined, and the CLI
 * then uses JSON.parse). Checked on what the server sends (JSON.stringify of a chunk) and on
 * other valid JSON spellings, for any text: every escape, lone surrogates, astral characters.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutputChunkReader } from '../../src/cli/outputChunk.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** What the CLI wrote before: JSON.parse, then the text encoded. */
function reference(json: string): { stream: string; data: Buffer } {
  const c = JSON.parse(json) as { stream: string; data: string };
  return { stream: c.stream, data: Buffer.from(c.data, 'utf8') };
}

/** Text with what output holds: control characters, quotes, backslashes, non-ASCII, astral and lone surrogates. */
const text = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('\n', '\r', '\t', '"', '\\', '/', '\b', '\f', '\u0000', '\u001b', 'é', '€', '😀', '\ud800', '\udc00', 'a', ' ') }),
);

describe('OutputChunkReader', () => {
  it('gives the bytes JSON.parse gives, for any text, as the server writes chunks', () => {
    const reader = new OutputChunkReader();
    fc.assert(
      fc.property(text, fc.constantFrom('stdout', 'stderr'), fc.nat(), (data, stream, seq) => {
        const json = JSON.stringify({ seq, stream, data, line_times: [[0, 1764000000000.5]] });
        const read = reader.read(Buffer.from(json, 'utf8'));
        const want = reference(json);
        expect(read?.stream).toBe(want.stream);
        expect(Buffer.compare(read!.data, want.data)).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('reads other valid spellings the same, or leaves them to JSON.parse', () => {
    const reader = new OutputChunkReader();
    const spelled = fc.record({
      data: text,
      stream: fc.constantFrom('stdout', 'stderr'),
      order: fc.boolean(),
      space: fc.constantFrom('', ' ', '\n', '\t \r\n'),
      escapeAll: fc.boolean(),
      extra: fc.jsonValue(),
    });
    fc.assert(
      fc.property(spelled, ({ data, stream, order, space: s, escapeAll, extra }) => {
        // \u-escape every character, as another JSON writer might.
        const str = (v: string) => (escapeAll ? `"${[...v].map((ch) => [...ch].map((u) => '\\u' + u.charCodeAt(0).toString(16).padStart(4, '0')).join('')).join('')}"` : JSON.stringify(v));
        const fields = [`"data"${s}:${s}${str(data)}`, `"stream":${s}"${stream}"`, `"extra":${s}${JSON.stringify(extra)}`];
        if (order) fields.reverse();
        const json = `${s}{${s}${fields.join(`${s},${s}`)}${s}}${s}`;
        const read = reader.read(Buffer.from(json, 'utf8'));
        const want = reference(json);
        if (read === undefined) return; // allowed: the CLI then parses it
        expect(read.stream).toBe(want.stream);
        expect(Buffer.compare(read.data, want.data)).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('leaves what is not a chunk to JSON.parse', () => {
    const reader = new OutputChunkReader();
    for (const json of ['', '[]', '{}', '"data"', '{"data":"x"}', '{"stream":"stdout"}', '{"stream":"other","data":"x"}', '{"stream":"stdout","data":1}', '{"stream":"stdout","data":"x"', '{"stream":"stdout","data":"\\q"}', '{"stream":"stdout","data":"\\u12"}', '{"d\\u0061ta":"x","stream":"stdout"}', '{"stream":"stdout","data":"x"} []']) {
      expect(reader.read(Buffer.from(json)), json).toBeUndefined();
    }
  });

  it('never throws on any bytes', () => {
    const reader = new OutputChunkReader();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', ':', ',', 'u', 'data', 'stream', 'stdout', '0') }), (bytes, s) => {
        reader.read(Buffer.from(bytes));
        reader.read(Buffer.from(s));
      }),
      { numRuns: RUNS },
    );
  });

  it('reuses its buffer: a chunk of 8 MiB then a small one', () => {
    const reader = new OutputChunkReader();
    const big = 'x'.repeat(8 * 1024 * 1024 - 1) + '\n';
    expect(reader.read(Buffer.from(JSON.stringify({ stream: 'stdout', data: big })))!.data.length).toBe(big.length);
    expect(reader.read(Buffer.from(JSON.stringify({ stream: 'stderr', data: 'é\n' })))).toEqual({ stream: 'stderr', data: Buffer.from('é\n') });
  });
});
