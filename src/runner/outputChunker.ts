/**
 * Turns a process's stdout and stderr into numbered chunks, in the order the runner read them,
 * with the time lines started (one mark per millisecond: lines after a mark started then). Text is decoded as UTF-8 without splitting a character
 * across chunks. A chunk is cut every `flushMs` or when `maxBytes` of one stream are waiting.
 */
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream } from '../domain/model.js';
import { hasRules, StreamRedactor, type RedactionRules } from './redactor.js';

export interface Chunk {
  seq: number;
  stream: OutputStream;
  data: string;
  lineTimes: Array<[number, number]>;
}

interface Pending {
  decoder: StringDecoder;
  data: string;
  /** UTF-8 size of `data`, kept as it grows (measuring the whole text on every read is slow). */
  bytes: number;
  lineTimes: Array<[number, number]>;
  /** The last time recorded: lines starting within the same millisecond share it. */
  lastTime: number;
  atLineStart: boolean;
  /** Scrubs secrets before anything is chunked (redactor.ts); may hold back a possible secret's start. */
  redactor?: StreamRedactor;
}

export class OutputChunker {
  private seq: number;
  private readonly pending: Record<OutputStream, Pending>;
  /** Which stream got data first since the last flush: flushed first, to keep the order. */
  private order: OutputStream[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (chunk: Chunk) => void,
    private readonly opts: { flushMs: number; maxBytes: number; firstSeq?: number; now?: () => number; redact?: RedactionRules },
  ) {
    this.seq = opts.firstSeq ?? 0;
    const redact = opts.redact;
    const fresh = (): Pending => ({
      decoder: new StringDecoder('utf8'),
      data: '',
      bytes: 0,
      lineTimes: [],
      lastTime: -1,
      atLineStart: true,
      redactor: hasRules(redact) ? new StreamRedactor(redact) : undefined,
    });
    this.pending = { stdout: fresh(), stderr: fresh() };
  }

  get lastSeq(): number {
    return this.seq;
  }

  write(stream: OutputStream, bytes: Buffer): void {
    const p = this.pending[stream];
    const decoded = p.decoder.write(bytes);
    const text = p.redactor ? p.redactor.push(decoded) : decoded;
    if (text.length === 0) return;
    const now = (this.opts.now ?? Date.now)();
    let from = 0;
    while (from < text.length) {
      // One time per millisecond, not per line: a fast command prints thousands of lines a ms.
      if (p.atLineStart && now !== p.lastTime) {
        p.lineTimes.push([p.data.length + from, now]);
        p.lastTime = now;
      }
      const nl = text.indexOf('\n', from);
      if (nl < 0) {
        p.atLineStart = false;
        break;
      }
      p.atLineStart = true;
      from = nl + 1;
    }
    // Interleaving: a stream switch ends the other stream's chunk, so order is kept.
    const other: OutputStream = stream === 'stdout' ? 'stderr' : 'stdout';
    if (this.pending[other].data.length > 0) this.flushStream(other);
    p.data += text;
    p.bytes += Buffer.byteLength(text);
    if (!this.order.includes(stream)) this.order.push(stream);
    if (p.bytes >= this.opts.maxBytes) this.flushStream(stream);
    // The first output goes out at once, so a person sees the command start; then in batches.
    else this.timer ??= setTimeout(() => this.flush(), this.seq === (this.opts.firstSeq ?? 0) ? 5 : this.opts.flushMs);
  }

  /** Emits whatever is waiting. `end` also flushes bytes the decoders still hold. */
  flush(end = false): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (end) {
      for (const s of ['stdout', 'stderr'] as const) {
        const p = this.pending[s];
        const rest = p.decoder.end();
        p.data += p.redactor ? p.redactor.push(rest) + p.redactor.end() : rest;
      }
    }
    for (const s of this.order) this.flushStream(s);
    for (const s of ['stdout', 'stderr'] as const) this.flushStream(s);
    this.order = [];
  }

  private flushStream(stream: OutputStream): void {
    const p = this.pending[stream];
    if (p.data.length === 0) return;
    this.seq++;
    this.emit({ seq: this.seq, stream, data: p.data, lineTimes: p.lineTimes });
    p.data = '';
    p.bytes = 0;
    p.lineTimes = [];
    p.lastTime = -1;
    this.order = this.order.filter((s) => s !== stream);
  }
}
