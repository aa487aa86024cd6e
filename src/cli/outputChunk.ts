/**
 * Reads an output chunk (the JSON of an OutputChunkView: `{"seq":..,"stream":"stdout","data":"..",
 * "line_times":[..]}`, one per live output event or JSON line) straight from its bytes to the
 * bytes of its text, without making JavaScript strings of it. A chunk can be megabytes; decoding
 * it, parsing it and encoding the text again made three fresh copies of every byte, and the CLI
 * read live output at half the speed curl does. This copies each byte once, into a buffer
 * reused from chunk to chunk.
 *
 * It reads the JSON that JSON.stringify writes, and any other valid JSON object; for anything
 * it does not expect it answers undefined and the caller parses the text with JSON.parse as
 * before (the reference: test/unit/cliOutputChunk.test.ts checks both agree).
 */
import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE } from '../shared/jsonBytes.js';

export interface OutputChunkBytes {
  stream: 'stdout' | 'stderr';
  /** The chunk's text as UTF-8: valid until the next read. */
  data: Buffer;
}

/** What JSON.parse and Buffer.from give a lone surrogate: U+FFFD. */
const REPLACEMENT = Buffer.from([0xef, 0xbf, 0xbd]);
const SIMPLE_ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 };

export class OutputChunkReader {
  private out = Buffer.allocUnsafe(64 * 1024);

  /** The stream and text of the chunk in `json`, or undefined when it is not an object with a string `data` and a `stream`. */
  read(json: Buffer): OutputChunkBytes | undefined {
    let i = skipSpace(json, 0);
    if (json[i] !== OPEN_BRACE) return undefined;
    i = skipSpace(json, i + 1);
    let stream: string | undefined;
    let data: [number, number] | undefined;
    if (json[i] === CLOSE_BRACE) return undefined;
    for (;;) {
      if (json[i] !== QUOTE) return undefined;
      const keyEnd = stringEnd(json, i);
      if (keyEnd < 0) return undefined;
      const key = json.toString('latin1', i + 1, keyEnd);
      i = skipSpace(json, keyEnd + 1);
      if (json[i] !== COLON) return undefined;
      i = skipSpace(json, i + 1);
      const valueStart = i;
      i = valueEnd(json, i);
      if (i < 0) return undefined;
      if (key === 'data') {
        if (json[valueStart] !== QUOTE) return undefined;
        data = [valueStart + 1, i - 1];
      } else if (key === 'stream') {
        stream = json.toString('latin1', valueStart, i);
      } else if (key.includes('\\')) {
        return undefined; // an escaped key might spell data or stream: let JSON.parse judge
      }
      i = skipSpace(json, i);
      if (json[i] === COMMA) {
        i = skipSpace(json, i + 1);
        continue;
      }
      if (json[i] !== CLOSE_BRACE || skipSpace(json, i + 1) !== json.length) return undefined;
      break;
    }
    if (!data || (stream !== '"stdout"' && stream !== '"stderr"')) return undefined;
    const n = this.unescape(json, data[0], data[1]);
    if (n < 0) return undefined;
    return { stream: stream === '"stderr"' ? 'stderr' : 'stdout', data: this.out.subarray(0, n) };
  }

  /** The UTF-8 bytes of the JSON string body json[start, end) into `out`; its length, or -1 if it is not valid JSON. */
  private unescape(json: Buffer, start: number, end: number): number {
    // The text is never longer than its escaped form (an escape of 6 bytes gives at most 4).
    if (this.out.length < end - start) this.out = Buffer.allocUnsafe(Math.max(end - start, 2 * this.out.length));
    const out = this.out;
    let n = 0;
    let i = start;
    while (i < end) {
      let slash = json.indexOf(BACKSLASH, i);
      if (slash < 0 || slash >= end) slash = end;
      n += json.copy(out, n, i, slash);
      if (slash === end) break;
      const c = json[slash + 1];
      const simple = SIMPLE_ESCAPES[c];
      if (simple !== undefined) {
        out[n++] = simple;
        i = slash + 2;
        continue;
      }
      if (c !== 0x75 /* u */) return -1;
      let code = hex4(json, slash + 2, end);
      if (code < 0) return -1;
      i = slash + 6;
      if (code >= 0xd800 && code <= 0xdbff && json[i] === BACKSLASH && json[i + 1] === 0x75) {
        const low = hex4(json, i + 2, end);
        if (low >= 0xdc00 && low <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          i += 6;
        }
      }
      n += encodeCodePoint(out, n, code);
    }
    return n;
  }
}

function skipSpace(json: Buffer, i: number): number {
  while (i < json.length && (json[i] === 0x20 || json[i] === 0x09 || json[i] === 0x0a || json[i] === 0x0d)) i++;
  return i;
}

/** The index of the quote that closes the string opening at json[start], or -1. */
function stringEnd(json: Buffer, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = json.indexOf(QUOTE, i);
    if (q < 0) return -1;
    let slashes = 0;
    while (json[q - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return q;
    i = q + 1;
  }
}

/** The index just past the JSON value starting at json[i], or -1. Nested values are skipped, not checked. */
function valueEnd(json: Buffer, i: number): number {
  if (json[i] === QUOTE) {
    const end = stringEnd(json, i);
    return end < 0 ? -1 : end + 1;
  }
  if (json[i] === OPEN_BRACKET || json[i] === OPEN_BRACE) {
    let depth = 0;
    while (i < json.length) {
      const c = json[i];
      if (c === QUOTE) {
        const end = stringEnd(json, i);
        if (end < 0) return -1;
        i = end + 1;
        continue;
      }
      if (c === OPEN_BRACKET || c === OPEN_BRACE) depth++;
      else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
      i++;
      if (depth === 0) return i;
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  const start = i;
  while (i < json.length && json[i] !== COMMA && json[i] !== CLOSE_BRACE && json[i] !== 0x20 && json[i] !== 0x0a && json[i] !== 0x0d && json[i] !== 0x09) i++;
  return i > start ? i : -1;
}

function hex4(json: Buffer, i: number, end: number): number {
  if (i + 4 > end) return -1;
  let v = 0;
  for (let k = i; k < i + 4; k++) {
    const c = json[k];
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** Writes `code` as UTF-8 at out[n]; a lone surrogate becomes U+FFFD, as Buffer.from(string) makes it. */
function encodeCodePoint(out: Buffer, n: number, code: number): number {
  if (code < 0x80) {
    out[n] = code;
    return 1;
  }
  if (code < 0x800) {
    out[n] = 0xc0 | (code >> 6);
    out[n + 1] = 0x80 | (code & 0x3f);
    return 2;
  }
  if (code >= 0xd800 && code <= 0xdfff) return REPLACEMENT.copy(out, n);
  if (code < 0x10000) {
    out[n] = 0xe0 | (code >> 12);
    out[n + 1] = 0x80 | ((code >> 6) & 0x3f);
    out[n + 2] = 0x80 | (code & 0x3f);
    return 3;
  }
  out[n] = 0xf0 | (code >> 18);
  out[n + 1] = 0x80 | ((code >> 12) & 0x3f);
  out[n + 2] = 0x80 | ((code >> 6) & 0x3f);
  out[n + 3] = 0x80 | (code & 0x3f);
  return 4;
}
