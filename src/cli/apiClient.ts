/**
 * The CLI's client for the REST API: DJANGOCOMMAND_URL + DJANGOCOMMAND_TOKEN (or --url/--token),
 * JSON requests, API errors turned into UserErrors that print as one line, and a Server-Sent
 * Events reader that resumes after a dropped connection (server restart) where it stopped.
 */
import http from 'node:http';
import { UserError } from '../shared/errors.js';
import type { ErrorBody } from '../shared/api.js';

export interface ClientOptions {
  url?: string;
  token?: string;
}

/** A response whose body is read as it arrives. */
export interface HttpResponse {
  status: number;
  ok: boolean;
  /** The body's bytes, read by network reads. */
  body: AsyncIterable<Buffer>;
  /** The whole body as text. */
  text(): Promise<string>;
}

/**
 * On node:http rather than fetch: fetch loads and compiles undici (and its WebAssembly HTTP
 * parser) on first use, ~15 ms of every command's start, and its web streams cost a third more
 * CPU per byte of live output.
 */
export class ApiClient {
  readonly base: string;
  private readonly token: string;
  /** node:http or, for an https:// server, node:https (loaded only then: it costs start-up time) with an agent that keeps connections open between the requests of one command. */
  private transport: Promise<{ request: typeof http.request; agent: http.Agent }> | undefined;

  constructor(opts: ClientOptions, env: NodeJS.ProcessEnv = process.env) {
    const url = opts.url ?? env.DJANGOCOMMAND_URL;
    const token = opts.token ?? env.DJANGOCOMMAND_TOKEN;
    if (!url) throw new UserError('DC_CONFIG', 'Set DJANGOCOMMAND_URL (or --url) to the server address, e.g. https://djangocommand.example.com.', undefined, { exitCode: 2 });
    if (!token) throw new UserError('DC_CONFIG', 'Set DJANGOCOMMAND_TOKEN (or --token) to a personal API token (dct_...); an admin creates one with `djangocommand admin create-token`.', undefined, { exitCode: 2 });
    this.base = serverBase(url, opts.url !== undefined ? '--url' : 'DJANGOCOMMAND_URL');
    this.token = token;
  }

  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.fetch(method, path, body, {}, signal);
    const text = await res.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!res.ok) throw apiError(res.status, parsed, text);
    return parsed as T;
  }

  /** Sends a request; resolves when the response's headers have arrived. An aborted `signal` rejects with its reason. */
  async fetch(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<HttpResponse> {
    const payload = body !== undefined ? Buffer.from(JSON.stringify(body), 'utf8') : undefined;
    const url = new URL(this.base + path);
    const unreachable = (err: Error) => new UserError('DC_UNREACHABLE', `Cannot reach the server at ${this.base}: ${err.message}`);
    this.transport ??= url.protocol === 'https:'
      ? import('node:https').then((https) => ({ request: https.request, agent: new https.Agent({ keepAlive: true }) }))
      : Promise.resolve({ request: http.request, agent: new http.Agent({ keepAlive: true }) });
    const { request, agent } = await this.transport;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent,
          signal,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...headers,
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            body: res,
            async text() {
              const pieces: Buffer[] = [];
              try {
                for await (const piece of res as AsyncIterable<Buffer>) pieces.push(piece);
              } catch (err) {
                throw signal?.aborted ? signal.reason : unreachable(err as Error);
              }
              return Buffer.concat(pieces).toString('utf8');
            },
          });
        },
      );
      req.once('error', (err) => reject(signal?.aborted ? signal.reason : unreachable(err)));
      req.end(payload);
    });
  }

  /**
   * Reads Server-Sent Events until `onEvent` returns 'stop'; an event's data is its bytes, valid
   * until `onEvent` returns. A dropped connection is retried
   * (1 s, 2 s, ... up to 10 s, for `reconnectForMs`) with Last-Event-ID so nothing is repeated.
   */
  async events(path: string, onEvent: (name: string, data: Buffer, id: string | undefined) => Promise<'stop' | void>, reconnectForMs = 300_000): Promise<void> {
    let lastId: string | undefined;
    let failingSince: number | undefined;
    let delay = 1000;
    for (;;) {
      let res: HttpResponse | undefined;
      // Closes the connection once the reader has what it wanted: an open socket would keep the
      // process alive until the server hangs up.
      const done = new AbortController();
      try {
        res = await this.fetch('GET', path, undefined, { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }, done.signal);
        if (!res.ok) throw apiError(res.status, safeJson(await res.text()), '');
        failingSince = undefined;
        delay = 1000;
        for await (const ev of parseSse(res.body)) {
          if (ev.id !== undefined) lastId = ev.id;
          let verdict: 'stop' | void;
          try {
            verdict = await onEvent(ev.event, ev.data, ev.id);
          } catch (err) {
            throw new HandlerFailed(err);
          }
          if (verdict === 'stop') return;
        }
      } catch (err) {
        // The reader's own failure (stdout closed) is not a dropped connection: no retry.
        if (err instanceof HandlerFailed) throw err.cause;
        if (err instanceof UserError && err.code !== 'DC_UNREACHABLE' && err.code !== 'DC_INTERNAL') throw err;
      } finally {
        done.abort();
      }
      // The stream ended without an `end` event: the server went away. Try again.
      failingSince ??= Date.now();
      if (Date.now() - failingSince > reconnectForMs) throw new UserError('DC_UNREACHABLE', `Lost the connection to ${this.base} and could not reconnect.`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}

/**
 * The server's address from what the user set, without a trailing slash. The two usual slips
 * get the fix spelled out: no scheme ("localhost:8600" even parses, as scheme "localhost:"), and
 * the API's own path (the CLI adds /api/v1 itself).
 */
export function serverBase(url: string, setting: string): string {
  const trimmed = url.trim();
  let parsed: URL | undefined;
  try {
    parsed = new URL(trimmed);
  } catch {
    // no scheme, or not a URL at all: see below
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    const guess = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? undefined : withScheme(trimmed);
    throw new UserError('DC_CONFIG', `${setting} "${url}" is not an http:// or https:// URL${guess ? `: did you mean ${guess}?` : ', e.g. https://djangocommand.example.com.'}`, undefined, { exitCode: 2 });
  }
  const base = parsed.toString().replace(/\/+$/, '');
  const api = /\/api\/v1$/.exec(base);
  if (api) {
    throw new UserError('DC_CONFIG', `${setting} "${url}" ends in ${api[0]}: did you mean ${base.slice(0, api.index)}? (the server's address; the CLI adds ${api[0]} itself)`, undefined, { exitCode: 2 });
  }
  return base;
}

/** "localhost:8600" → "http://localhost:8600": plain http for this machine, https elsewhere (unless the URL still does not parse). */
function withScheme(address: string): string | undefined {
  const host = address.replace(/^\/+/, '');
  const local = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?(\/|$)/i.test(host) || /:8600(\/|$)/.test(host);
  const guess = `${local ? 'http' : 'https'}://${host}`.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  try {
    new URL(guess);
    return guess;
  } catch {
    return undefined;
  }
}

class HandlerFailed {
  constructor(readonly cause: unknown) {}
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function apiError(status: number, body: unknown, text: string): UserError {
  const b = body as Partial<ErrorBody> | undefined;
  const message = b?.error ?? (text.slice(0, 200) || `HTTP ${status}`);
  const code = (b?.code ?? (status >= 500 ? 'DC_INTERNAL' : 'DC_BAD_REQUEST')) as UserError['code'];
  return new UserError(code, message, b?.details);
}

/**
 * The lines of a body as bytes (without their "\n" or "\r\n"), the last one even without a
 * newline. A line is a view that is valid until the next one is asked for. Each network read is
 * scanned once; a line longer than a read (an 8 MiB output event arrives in 64 KiB reads) is
 * gathered in one buffer reused from line to line (fresh memory for every line costs the kernel
 * more than the copy). Reading costs time in proportion to the bytes: scanning the whole buffer
 * again on every read made it quadratic.
 */
export async function* lineBuffers(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<Buffer> {
  const partial = new GrowingBuffer();
  for await (const bytes of body as AsyncIterable<Uint8Array>) {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf(NEWLINE, start)) >= 0) {
      if (partial.length === 0) {
        yield withoutCr(buf.subarray(start, nl));
      } else {
        partial.append(buf, start, nl);
        yield withoutCr(partial.bytes());
        partial.clear();
      }
      start = nl + 1;
    }
    if (start < buf.length) partial.append(buf, start, buf.length);
  }
  if (partial.length > 0) yield withoutCr(partial.bytes());
}

/** The lines of a body as text, each decoded once (a character cut between two reads comes out whole). */
export async function* readLines(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<string> {
  for await (const line of lineBuffers(body)) yield line.toString('utf8');
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

function withoutCr(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN ? line.subarray(0, line.length - 1) : line;
}

/** Bytes appended in place, the memory kept and reused after clear(). */
class GrowingBuffer {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  length = 0;

  append(from: Buffer, start: number, end: number): void {
    if (this.length + end - start > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.length + end - start));
      this.buffer.copy(bigger, 0, 0, this.length);
      this.buffer = bigger;
    }
    this.length += from.copy(this.buffer, this.length, start, end);
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }
}

export interface SseEvent {
  event: string;
  /** The data lines joined by "\n", as bytes: valid until the next event is asked for. */
  data: Buffer;
  id: string | undefined;
}

/** Server-Sent Events as the spec reads them: `event`, `data` (several joined by newlines), `id`; comments skipped. */
export async function* parseSse(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  let event = 'message';
  const data = new GrowingBuffer();
  let hasData = false;
  let id: string | undefined;
  for await (const line of lineBuffers(body)) {
    if (line.length === 0) {
      if (hasData) yield { event, data: data.bytes(), id };
      event = 'message';
      data.clear();
      hasData = false;
      id = undefined;
    } else if (line[0] === COLON) {
      continue;
    } else {
      const colon = line.indexOf(COLON);
      const field = line.toString('utf8', 0, colon < 0 ? line.length : colon);
      const valueStart = colon < 0 ? line.length : line[colon + 1] === SPACE ? colon + 2 : colon + 1;
      if (field === 'data') {
        if (hasData) data.append(NEWLINE_BYTES, 0, 1);
        data.append(line, valueStart, line.length);
        hasData = true;
      } else if (field === 'event') event = line.toString('utf8', valueStart);
      else if (field === 'id') id = line.toString('utf8', valueStart);
    }
  }
}

const NEWLINE_BYTES = Buffer.from('\n');
