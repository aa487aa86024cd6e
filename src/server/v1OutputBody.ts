/**
 * Reads the body of a protocol v1 `output/` request as it arrives, without ever holding it whole.
 *
 * The Python runner buffers a command's output for 1.5 s and sends it as one chunk, however large:
 * a fast command sends tens of megabytes, as JSON with one segment object per line. Parsing that
 * with JSON.parse would hold the body, its text and an object per line at once; refusing it (413)
 * made the runner drop the chunk silently. Instead the body is scanned as it streams in: the small
 * top-level object (chunk_number, is_stderr) is kept as a "skeleton" with an empty segments list,
 * and each segment is parsed and checked on its own, its text appended to the chunk's data.
 *
 * Input is checked as strictly as JSON.parse + the OutputRequest schema would: a malformed body,
 * a wrong field, an unknown key or a deeply nested value is a DC_ error, never a crash.
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Type } from '@sinclair/typebox';
import { OutputRequest, OutputSegment } from '../shared/protocolV1.js';
import { UserError } from '../shared/errors.js';
import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COLON, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE } from '../shared/jsonBytes.js';

const segmentCheck = TypeCompiler.Compile(Type.Object(OutputSegment.properties, { additionalProperties: false }));
const skeletonCheck = TypeCompiler.Compile(Type.Object(OutputRequest.properties, { additionalProperties: false }));

/** Longer top-level text than this is not something the Python runner sends. */
const MAX_SKELETON_CHARS = 64 * 1024;
const MAX_DEPTH = 32;

/** The chunk's own fields: its number and stream. */
export interface V1ChunkHeader {
  chunkNumber: number;
  isStderr: boolean;
}

/**
 * A part of a chunk's text, at most about PART_BYTES: a huge chunk is stored as several, as its
 * body streams in, so memory holds one part whatever the chunk's size.
 */
export interface V1ChunkPart {
  /** UTF-8 bytes, stored as they are. */
  data: Buffer;
  /**
   * [character offset in this part, unix ms] for each millisecond in which lines started (as
   * protocol v2 marks them): a fast command starts thousands of lines per millisecond.
   */
  lineTimes: Array<[number, number]>;
}

export const PART_BYTES = 8 * 1024 * 1024;

type Mode = 'top' | 'segments' | 'segment';


export class V1OutputParser {
  private mode: Mode = 'top';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  private skeleton = '';
  private pendingKey: string | undefined;
  private segmentsSeen = 0;
  private segment: string[] = [];
  private segmentIndex = 0;
  /** The part being filled, its length in bytes and in UTF-16 units (line offsets count characters). */
  private data: Buffer;
  private dataBytes = 0;
  private dataLength = 0;
  private lineTimes: Array<[number, number]> = [];
  private lastLineMs = NaN;
  private readonly parts: V1ChunkPart[] = [];
  /** chunk_number and is_stderr, once read: they come before the segments in what runners send. */
  header: V1ChunkHeader | undefined;

  /** `expectedBytes`: the body's Content-Length when known; no part is longer than it. */
  constructor(
    expectedBytes = 64 * 1024,
    private readonly partBytes = PART_BYTES,
  ) {
    this.data = Buffer.allocUnsafe(Math.max(1024, Math.min(expectedBytes, partBytes + 1024)));
  }

  /** The parts completed so far (taken: the caller stores them). */
  takeParts(): V1ChunkPart[] {
    return this.parts.splice(0);
  }

  /** Feeds the next piece of the body's text. */
  write(text: string): void {
    let runStart = 0;
    const flush = (end: number) => {
      if (end > runStart) this.sink(text.slice(runStart, end));
      runStart = end;
    };
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      if (!this.started) {
        if (c !== OPEN_BRACE) throw bad('The body must be a JSON object.');
        this.started = true;
      } else if (this.depth === 0) {
        throw bad('The body has text after its JSON object.');
      }
      switch (this.mode) {
        case 'top':
          if (c === QUOTE) this.inString = true;
          else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
            if (++this.depth > MAX_DEPTH) throw bad('The body is nested too deeply.');
            if (c === OPEN_BRACKET && this.depth === 2 && this.pendingKey === 'segments') {
              flush(i + 1);
              this.mode = 'segments';
              this.segmentsSeen++;
              this.header ??= headerOf(this.skeleton);
            }
          } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) this.depth--;
          else if (c === COLON && this.depth === 1) {
            flush(i);
            this.pendingKey = lastKey(this.skeleton);
          } else if (c === COMMA && this.depth === 1) this.pendingKey = undefined;
          break;
        case 'segments':
          if (c === OPEN_BRACE) {
            runStart = i;
            this.mode = 'segment';
            this.depth++;
          } else if (c === CLOSE_BRACKET) {
            runStart = i;
            this.mode = 'top';
            this.depth--;
            this.pendingKey = undefined;
          } else if (c !== COMMA) {
            throw bad(`segments[${this.segmentIndex}] must be an object like {"timestamp": 1.5, "content": "text"}.`, 'segments');
          } else {
            runStart = i + 1;
          }
          break;
        case 'segment':
          if (c === QUOTE) this.inString = true;
          else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
            if (++this.depth > MAX_DEPTH) throw bad('The body is nested too deeply.');
          } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
            if (--this.depth === 2) {
              flush(i + 1);
              this.endSegment();
              this.mode = 'segments';
            }
          }
          break;
      }
    }
    if (this.mode === 'segments') runStart = text.length;
    flush(text.length);
  }

  /** The chunk's header, once the body has ended; its last part is then in takeParts(). */
  end(): V1ChunkHeader {
    if (!this.started) throw bad('The body is empty; send the output chunk as JSON.');
    if (this.depth !== 0 || this.inString) throw new UserError('DC_BAD_JSON', 'The body is not valid JSON (it ends too early).');
    if (this.segmentsSeen !== 1) throw bad(this.segmentsSeen === 0 ? 'body must have required property \'segments\' (a list).' : 'body has "segments" twice.', 'segments');
    let top: unknown;
    try {
      top = JSON.parse(this.skeleton);
    } catch {
      throw new UserError('DC_BAD_JSON', 'The body is not valid JSON.');
    }
    if (!skeletonCheck.Check(top)) {
      const first = [...skeletonCheck.Errors(top)][0];
      const where = `body${first?.path.replace(/\//g, '.') ?? ''}`;
      throw bad(`${where} ${first?.message ?? 'is invalid'}.`, where);
    }
    const t = top as OutputRequest;
    if (this.dataBytes > 0) this.closePart();
    this.header = { chunkNumber: t.chunk_number, isStderr: t.is_stderr };
    return this.header;
  }

  private sink(piece: string): void {
    if (this.mode === 'segment') {
      this.segment.push(piece);
      return;
    }
    this.skeleton += piece;
    if (this.skeleton.length > MAX_SKELETON_CHARS) throw bad('The body has more than chunk_number, is_stderr and segments.');
  }

  private endSegment(): void {
    const text = this.segment.join('');
    this.segment = [];
    const where = `segments[${this.segmentIndex}]`;
    let seg: unknown;
    try {
      seg = JSON.parse(text);
    } catch {
      throw new UserError('DC_BAD_JSON', `The body is not valid JSON (in ${where}).`);
    }
    if (!segmentCheck.Check(seg)) {
      const first = [...segmentCheck.Errors(seg)][0];
      throw bad(`body.${where}${first?.path.replace(/\//g, '.') ?? ''} ${first?.message ?? 'is invalid'}.`, `body.${where}`);
    }
    const s = seg as OutputSegment;
    if (this.dataBytes >= this.partBytes) this.closePart();
    if (s.timestamp !== null) {
      const ms = Math.round(s.timestamp * 1000);
      if (ms !== this.lastLineMs) this.lineTimes.push([this.dataLength, ms]);
      this.lastLineMs = ms;
    }
    // A line longer than a part (a command printing without newlines) is cut between parts,
    // never inside a character.
    const maxChars = Math.floor(this.partBytes / 3);
    for (let at = 0; at < s.content.length; ) {
      if (this.dataBytes >= this.partBytes) this.closePart();
      let end = Math.min(s.content.length, at + maxChars);
      const code = s.content.charCodeAt(end - 1);
      if (end < s.content.length && code >= 0xd800 && code <= 0xdbff) end--;
      this.append(at === 0 && end === s.content.length ? s.content : s.content.slice(at, end));
      at = end;
    }
    this.segmentIndex++;
  }

  private closePart(): void {
    this.parts.push({ data: this.data.subarray(0, this.dataBytes), lineTimes: this.lineTimes });
    this.data = Buffer.allocUnsafe(this.data.length);
    this.dataBytes = 0;
    this.dataLength = 0;
    this.lineTimes = [];
    this.lastLineMs = NaN;
  }

  private append(text: string): void {
    const need = this.dataBytes + Buffer.byteLength(text, 'utf8');
    if (need > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.data.length * 2));
      this.data.copy(grown, 0, 0, this.dataBytes);
      this.data = grown;
    }
    this.dataBytes += this.data.write(text, this.dataBytes, 'utf8');
    this.dataLength += text.length;
  }
}

/** chunk_number and is_stderr from the members before "segments", when both are there and right. */
function headerOf(skeleton: string): V1ChunkHeader | undefined {
  try {
    const top = JSON.parse(skeleton + ']}') as unknown;
    if (!skeletonCheck.Check(top)) return undefined;
    return { chunkNumber: top.chunk_number, isStderr: top.is_stderr };
  } catch {
    return undefined;
  }
}

/** The key of a top-level member: the JSON string at the end of the skeleton, before its colon. */
function lastKey(skeleton: string): string | undefined {
  const m = /"((?:[^"\\]|\\.){0,200})"\s*$/.exec(skeleton);
  if (!m) return undefined;
  try {
    return JSON.parse(`"${m[1]}"`) as string;
  } catch {
    return undefined;
  }
}

function bad(message: string, field?: string): UserError {
  return new UserError('DC_VALIDATION', message, field ? { field } : undefined);
}

/**
 * Reads an output/ request body from its stream, handing each part of the chunk's text to
 * `store` as soon as the chunk's header is known (at once, for the Python runner's bodies).
 * Memory holds a part or two, never the body. Returns the chunk's header.
 */
export async function readV1OutputBody(
  body: AsyncIterable<Buffer>,
  maxBytes: number,
  contentLength: number | undefined,
  store: (header: V1ChunkHeader, part: V1ChunkPart, index: number) => Promise<void>,
  partBytes = PART_BYTES,
): Promise<{ header: V1ChunkHeader; digest: string }> {
  const tooLarge = () => new UserError('DC_BODY_TOO_LARGE', `An output chunk may be at most ${maxBytes} bytes (DJANGOCOMMAND_MAX_OUTPUT_CHUNK).`);
  if (contentLength !== undefined && contentLength > maxBytes) throw tooLarge();
  const parser = new V1OutputParser(contentLength, partBytes);
  const decoder = new StringDecoder('utf8');
  let stored = 0;
  const storeParts = async () => {
    if (!parser.header) return;
    for (const part of parser.takeParts()) await store(parser.header, part, stored++);
  };
  let bytes = 0;
  const hash = createHash('sha256');
  const pieces = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await pieces.next();
    } catch (err) {
      throw new UserError('DC_BAD_REQUEST', 'The request body ended before it was complete.', { cause: String((err as Error)?.message ?? err), incomplete: true });
    }
    if (next.done) break;
    bytes += next.value.length;
    if (bytes > maxBytes) throw tooLarge();
    hash.update(next.value);
    parser.write(decoder.write(next.value));
    await storeParts();
  }
  parser.write(decoder.end());
  const header = parser.end();
  await storeParts();
  return { header, digest: bytes === 0 ? 'no body' : hash.digest('hex') };
}

/** SHA-256 of a body read to its end (up to maxBytes), keeping nothing of it. */
export async function digestBody(body: AsyncIterable<Buffer>, maxBytes: number): Promise<string> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const piece of body) {
      bytes += piece.length;
      if (bytes > maxBytes) throw new UserError('DC_BODY_TOO_LARGE', `An output chunk may be at most ${maxBytes} bytes (DJANGOCOMMAND_MAX_OUTPUT_CHUNK).`);
      hash.update(piece);
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError('DC_BAD_REQUEST', 'The request body ended before it was complete.', { incomplete: true });
  }
  return bytes === 0 ? 'no body' : hash.digest('hex');
}
