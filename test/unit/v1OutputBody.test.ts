/** The streaming reader of protocol v1 output/ bodies: same result as JSON.parse, however the body is cut. */
import { describe, expect, it } from 'vitest';
import { readV1OutputBody, V1OutputParser, type V1ChunkPart } from '../../src/server/v1OutputBody.js';

/** The parts as one text with its line times (offsets made whole-chunk again). */
function whole(parts: V1ChunkPart[]) {
  let data = '';
  const lineTimes: Array<[number, number]> = [];
  for (const p of parts) {
    for (const [offset, ms] of p.lineTimes) lineTimes.push([data.length + offset, ms]);
    data += p.data.toString('utf8');
  }
  return { data, lineTimes };
}

function parseInPieces(body: string, cuts: number[], partBytes?: number) {
  const p = new V1OutputParser(undefined, partBytes);
  const parts: V1ChunkPart[] = [];
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    p.write(body.slice(at, cut));
    parts.push(...p.takeParts());
    at = cut;
  }
  const header = p.end();
  parts.push(...p.takeParts());
  return { ...header, ...whole(parts) };
}

/** What the old JSON.parse path made of a body: the reference. */
function reference(body: string) {
  const b = JSON.parse(body) as { chunk_number: number; is_stderr: boolean; segments: Array<{ timestamp: number | null; content: string }> };
  let data = '';
  const lineTimes: Array<[number, number]> = [];
  for (const s of b.segments) {
    if (s.timestamp !== null) lineTimes.push([data.length, Math.round(s.timestamp * 1000)]);
    data += s.content;
  }
  return { chunkNumber: b.chunk_number, isStderr: b.is_stderr, data, lineTimes };
}

const segments = [
  { timestamp: 1732712345.123456, content: 'Applying app.0001' },
  { timestamp: null, content: '... OK\n' },
  { timestamp: 1732712346.5, content: 'quotes " and \\ backslashes } ] { [ , :\n' },
  { timestamp: 1732712347, content: 'unicode: 名前 😀 é\n' },
  { timestamp: 0, content: '' },
];

describe('v1 output body reader', () => {
  it('gives what JSON.parse gives, cut at every byte, with Python\'s ensure_ascii escapes and with raw UTF-8', () => {
    const bodies = [
      // Python's json.dumps: ASCII only, \uXXXX escapes (surrogate pairs for 😀).
      JSON.stringify({ chunk_number: 7, is_stderr: true, segments }).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')),
      JSON.stringify({ segments, is_stderr: false, chunk_number: 3 }, null, 2),
      ' { "chunk_number" : 1 , "segments" : [ ] , "is_stderr" : false } ',
    ];
    for (const body of bodies) {
      const want = reference(body);
      for (let cut = 0; cut <= body.length; cut++) expect(parseInPieces(body, [cut])).toEqual(want);
      expect(parseInPieces(body, [3, 10, 11, 40, 41, 42, 90])).toEqual(want);
    }
  });

  it('reads bytes cut inside a UTF-8 character', async () => {
    const body = Buffer.from(JSON.stringify({ chunk_number: 1, is_stderr: false, segments: [{ timestamp: 1, content: '名前😀\n' }] }));
    for (let cut = 1; cut < body.length; cut++) {
      const parts: V1ChunkPart[] = [];
      await readV1OutputBody((async function* () { yield body.subarray(0, cut); yield body.subarray(cut); })(), 1 << 20, undefined, async (_h, part) => void parts.push(part));
      expect(whole(parts).data).toBe('名前😀\n');
    }
  });

  it('cuts a chunk into parts of about partBytes at line boundaries, a line longer than a part between characters, and loses nothing', () => {
    const lines = Array.from({ length: 300 }, (_, i) => ({ timestamp: 100 + i, content: `${i} ${'é😀x'.repeat(i % 13)}\n` }));
    lines.push({ timestamp: 500, content: '😀'.repeat(5000) + 'end\n' });
    const body = JSON.stringify({ chunk_number: 2, is_stderr: true, segments: lines });
    const p = new V1OutputParser(undefined, 1000);
    p.write(body);
    const header = p.end();
    const parts = p.takeParts();
    expect(header).toEqual({ chunkNumber: 2, isStderr: true });
    expect(parts.length).toBeGreaterThan(20);
    for (const part of parts) {
      expect(part.data.length).toBeLessThanOrEqual(2 * 1000);
      expect(part.data.toString('utf8')).not.toContain('\ufffd');
    }
    expect(whole(parts)).toEqual({ data: lines.map((l) => l.content).join(''), lineTimes: reference(body).lineTimes });
  });

  it('refuses what the schema refuses, with a DC_ code, never a crash', () => {
    const cases: Array<[string, string]> = [
      ['', 'DC_VALIDATION'],
      ['[]', 'DC_VALIDATION'],
      ['{"chunk_number": 1,', 'DC_BAD_JSON'],
      ['{"chunk_number": 1, "is_stderr": false}', 'DC_VALIDATION'],
      ['{"chunk_number": 0, "is_stderr": false, "segments": []}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": "no", "segments": []}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [1]}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [{"timestamp": 1}]}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [{"timestamp": 1, "content": "x", "extra": 1}]}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [{"timestamp": 1, "content": 5}]}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [], "segments": []}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [], "x": 1}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": []} {}', 'DC_VALIDATION'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [{"timestamp": 1, "content": "x"' + ']'.repeat(3) + '}', 'DC_BAD_JSON'],
      ['{"chunk_number": 1, "is_stderr": false, "segments": [{"timestamp": ' + '['.repeat(100_000) + ']'.repeat(100_000) + ', "content": "x"}]}', 'DC_VALIDATION'],
      ['{"x": ' + '['.repeat(100_000) + ']'.repeat(100_000) + '}', 'DC_VALIDATION'],
    ];
    for (const [body, code] of cases) {
      let caught: unknown;
      try {
        parseInPieces(body, [Math.floor(body.length / 2)]);
      } catch (err) {
        caught = err;
      }
      expect((caught as { code?: string })?.code, body.slice(0, 80)).toBe(code);
    }
  });

  it('holds one chunk of 50 MB of lines without holding the body: the text and a time per line', async () => {
    const line = 'x'.repeat(99) + '\n';
    const n = 500_000;
    async function* body() {
      yield Buffer.from('{"chunk_number": 1, "is_stderr": false, "segments": [');
      // 1000 lines in each millisecond, as a fast command prints them.
      for (let i = 0; i < n / 1000; i++) {
        const batch = JSON.stringify({ timestamp: 1732712345 + i / 1000, content: line }) + `, ${JSON.stringify({ timestamp: null, content: line })}`.repeat(999);
        yield Buffer.from((i ? ', ' : '') + batch);
      }
      yield Buffer.from(']}');
    }
    let held = 0;
    const parts: V1ChunkPart[] = [];
    const { header } = await readV1OutputBody(body(), 1 << 30, undefined, async (h, part, index) => {
      expect(h).toEqual({ chunkNumber: 1, isStderr: false });
      expect(index).toBe(parts.length);
      held = Math.max(held, part.data.length);
      parts.push({ data: Buffer.alloc(0), lineTimes: part.lineTimes });
    });
    expect(header).toEqual({ chunkNumber: 1, isStderr: false });
    // Parts reach the store as they are made: none is larger than a part and a line.
    expect(held).toBeLessThanOrEqual(8 * 1024 * 1024 + 100);
    expect(parts.length).toBe(Math.ceil((n * 100) / (8 * 1024 * 1024)));
    expect(parts.reduce((k, p) => k + p.lineTimes.length, 0)).toBeGreaterThanOrEqual(500);
  });

  it('marks line times once per millisecond, at the first line that started in it, in characters', () => {
    const body = JSON.stringify({
      chunk_number: 1,
      is_stderr: false,
      segments: [
        { timestamp: 10.0001, content: 'é\n' },
        { timestamp: 10.0002, content: 'b\n' },
        { timestamp: null, content: 'rest\n' },
        { timestamp: 10.0021, content: 'c\n' },
      ],
    });
    expect(parseInPieces(body, []).lineTimes).toEqual([[0, 10000], [9, 10002]]);
  });
});
