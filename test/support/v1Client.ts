/**
 * A protocol v1 HTTP client that behaves like the published Python runner's client
 * (`djangocommand/client.py`, requests + urllib3 `Retry`). Tests and benchmarks use it to
 * drive the server exactly the way a deployed Python runner would, until our own runner exists.
 *
 * What it copies from the Python client, because the server must cope with it:
 * - every request carries `Authorization: Bearer <key>`, `X-Request-Timestamp` (unix seconds)
 *   and `X-Request-Nonce` (UUID4); `Content-Type: application/json` only when there is a body;
 * - 429/500/502/503/504, connection errors and timeouts are retried with exponential backoff
 *   (1 s, 2 s, 4 s by default) and the retry re-sends THE SAME headers, nonce included, because
 *   urllib3 replays the prepared request;
 * - plain http is refused except for local hosts;
 * - execution ids are checked to be UUIDs before they are put in a path.
 *
 * Typed methods throw `V1HttpError`; `request()` is the raw door for tests that need to send
 * stale timestamps, reused nonces, malformed JSON and the like.
 */
import { randomUUID } from 'node:crypto';
import type {
  CancelStatusResponse,
  CommandsSyncResponse,
  CompleteRequest,
  HeartbeatRequest,
  HeartbeatResponse,
  OutputRequest,
  PendingExecution,
  PendingResponse,
  SyncedCommand,
} from '../../src/shared/protocolV1.js';
import { V1_PREFIX } from '../../src/shared/protocolV1.js';

export interface V1ClientOptions {
  serverUrl: string;
  apiKey: string;
  /** Retries after the first attempt, like `DJANGOCOMMAND_MAX_RETRIES` (urllib3 `total`). */
  maxRetries?: number;
  /** Per attempt, like `DJANGOCOMMAND_REQUEST_TIMEOUT`. */
  timeoutMs?: number;
  /**
   * urllib3's `backoff_factor`, in milliseconds: the n-th retry waits factor * 2^(n-1)
   * (1 s, 2 s, 4 s with the default 1000). It also scales a `Retry-After` header
   * (seconds * factor / 1000), so tests can make every wait short with one knob.
   */
  backoffFactorMs?: number;
  /** Hosts allowed over plain http (the Python client's `DJANGOCOMMAND_ALLOW_HTTP_HOSTS`). */
  allowHttpHosts?: readonly string[];
  /** Aborting it cancels every request in flight and every retry wait (a runner that vanished). */
  signal?: AbortSignal;
}

export interface V1RawRequestOptions {
  /** Serialised with JSON.stringify. */
  body?: unknown;
  /** Sent byte for byte instead of `body` (malformed JSON, huge bodies...). */
  rawBody?: string | Uint8Array;
  /** Extra or replacement headers; `null` removes a default header (e.g. no Authorization). */
  headers?: Record<string, string | null>;
  /** Overrides X-Request-Timestamp (a number is sent as whole seconds). */
  timestamp?: number | string;
  /** Overrides X-Request-Nonce. */
  nonce?: string;
  /** Retry like the typed methods do. Off by default so a test sees the first answer. */
  retry?: boolean;
}

export interface V1RawResponse {
  status: number;
  /** Parsed JSON, or null when the body is not JSON. */
  body: unknown;
  text: string;
  headers: Headers;
}

/** An HTTP error status, an unusable response, or (status 0) a server that could not be reached. */
export class V1HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
    /** The server's stable error code when the body carries one (`DC_...`). */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'V1HttpError';
  }

  /** 401/403: the Python runner stops working and backs off on these. */
  get isAuthError(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** Statuses urllib3 retries for the Python client (`status_forcelist`). */
export const V1_RETRY_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_ALLOW_HTTP_HOSTS = ['localhost', '127.0.0.1', '::1', '[::1]'];

/** Throws like the Python client: an id goes into a URL path, so it must be a plain UUID. */
export function assertExecutionId(id: string): void {
  if (typeof id !== 'string' || !UUID_PATTERN.test(id)) {
    throw new TypeError(`Invalid execution_id format: expected UUID, got ${JSON.stringify(id)?.slice(0, 30)}`);
  }
}

export class V1Client {
  readonly serverUrl: string;
  private readonly apiKey: string;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly backoffFactorMs: number;
  private readonly signal?: AbortSignal;

  constructor(options: V1ClientOptions) {
    this.serverUrl = options.serverUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.maxRetries = options.maxRetries ?? 3;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.backoffFactorMs = options.backoffFactorMs ?? 1000;
    this.signal = options.signal;
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) {
      throw new TypeError(`V1Client: maxRetries must be an integer >= 0, got ${options.maxRetries}`);
    }
    assertHttpAllowed(this.serverUrl, options.allowHttpHosts ?? DEFAULT_ALLOW_HTTP_HOSTS);
  }

  // ---- typed runner API (the Python client's convenience methods) ----

  async heartbeat(body: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.call<HeartbeatResponse>('POST', `${V1_PREFIX}/heartbeat/`, body);
  }

  async syncCommands(commands: readonly SyncedCommand[]): Promise<CommandsSyncResponse> {
    return this.call<CommandsSyncResponse>('POST', `${V1_PREFIX}/commands/sync/`, { commands });
  }

  /** The pending executions (the Python client unwraps `executions`, defaulting to []). */
  async pending(): Promise<PendingExecution[]> {
    const res = await this.call<Partial<PendingResponse>>('GET', `${V1_PREFIX}/pending/`);
    return res.executions ?? [];
  }

  async start(id: string): Promise<Record<string, unknown>> {
    return this.call('POST', executionPath(id, 'start'));
  }

  async output(id: string, chunk: OutputRequest): Promise<Record<string, unknown>> {
    return this.call('POST', executionPath(id, 'output'), undefined, encodeOutputBody(chunk));
  }

  async complete(id: string, result: CompleteRequest): Promise<Record<string, unknown>> {
    return this.call('POST', executionPath(id, 'complete'), { exit_code: result.exit_code, status: result.status });
  }

  async cancelStatus(id: string): Promise<CancelStatusResponse> {
    return this.call<CancelStatusResponse>('GET', executionPath(id, 'cancel-status'));
  }

  // ---- raw access ----

  /**
   * Sends one request and returns whatever came back, whatever the status. Throws only when
   * the server cannot be reached (or the client's signal was aborted).
   */
  async request(method: string, path: string, options: V1RawRequestOptions = {}): Promise<V1RawResponse> {
    const headers = this.buildHeaders(options);
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    if (body !== undefined && !headers.has('content-type') && !hasExplicitHeader(options, 'content-type')) {
      headers.set('Content-Type', 'application/json');
    }
    const retries = options.retry ? this.maxRetries : 0;
    return this.sendWithRetries(method, this.serverUrl + path, headers, body, retries);
  }

  // ---- internals ----

  /** One typed call: retries, then turns anything but a 2xx JSON object into a V1HttpError. */
  private async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, rawBody?: Uint8Array): Promise<T> {
    let res: V1RawResponse;
    try {
      res = await this.request(method, path, rawBody ? { rawBody, retry: true } : { body, retry: true });
    } catch (err) {
      throw new V1HttpError(0, `Connection failed: ${method} ${path}: ${describe(err)}`, undefined, undefined, { cause: err });
    }
    if (res.status >= 400) {
      const { message, code } = readError(res);
      throw new V1HttpError(res.status, `API error (${res.status}): ${message}`, res.body, code);
    }
    if (res.body === null || typeof res.body !== 'object' || Array.isArray(res.body)) {
      throw new V1HttpError(res.status, `Response to ${method} ${path} is not a JSON object: ${res.text.slice(0, 200)}`, res.body);
    }
    return res.body as T;
  }

  private buildHeaders(options: V1RawRequestOptions): Headers {
    const timestamp = options.timestamp ?? Date.now() / 1000;
    const headers = new Headers({
      Authorization: `Bearer ${this.apiKey}`,
      'X-Request-Timestamp': typeof timestamp === 'number' ? String(Math.floor(timestamp)) : timestamp,
      'X-Request-Nonce': options.nonce ?? randomUUID(),
    });
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value === null) headers.delete(name);
      else headers.set(name, value);
    }
    return headers;
  }

  /**
   * urllib3-style retry loop. The headers object is built once, so every attempt carries the
   * same timestamp and nonce: servers with replay protection must accept an identical retry
   * (or answer it idempotently).
   */
  private async sendWithRetries(
    method: string,
    url: string,
    headers: Headers,
    body: string | Uint8Array | undefined,
    retries: number,
  ): Promise<V1RawResponse> {
    for (let attempt = 0; ; attempt++) {
      let res: V1RawResponse;
      try {
        res = await this.sendOnce(method, url, headers, body);
      } catch (err) {
        if (attempt >= retries || this.signal?.aborted) throw err;
        await abortableSleep(this.backoffMs(attempt + 1), this.signal);
        continue;
      }
      if (!V1_RETRY_STATUSES.has(res.status) || attempt >= retries) return res;
      await abortableSleep(this.retryDelayMs(attempt + 1, res), this.signal);
      if (this.signal?.aborted) return res;
    }
  }

  private async sendOnce(method: string, url: string, headers: Headers, body: string | Uint8Array | undefined): Promise<V1RawResponse> {
    // requests' timeout bounds each socket read, not a whole upload: a big chunk gets its time
    // to travel (at 10 MB/s) on top.
    const timeout = AbortSignal.timeout(this.timeoutMs + (body === undefined ? 0 : Math.ceil(body.length / 10_000)));
    const signal = this.signal ? AbortSignal.any([timeout, this.signal]) : timeout;
    // A Uint8Array over any ArrayBufferLike is a valid body at run time; the DOM typing is narrower.
    const response = await fetch(url, { method, headers, body: body as RequestInit['body'], signal });
    const text = await response.text();
    return { status: response.status, body: parseJson(text), text, headers: response.headers };
  }

  private backoffMs(retryNumber: number): number {
    return this.backoffFactorMs * 2 ** (retryNumber - 1);
  }

  /** urllib3 honours Retry-After on 429/503; scaled like the backoff so tests stay fast. */
  private retryDelayMs(retryNumber: number, res: V1RawResponse): number {
    const retryAfter = Number(res.headers.get('retry-after'));
    if ((res.status === 429 || res.status === 503) && Number.isFinite(retryAfter) && retryAfter > 0) {
      return retryAfter * this.backoffFactorMs;
    }
    return this.backoffMs(retryNumber);
  }
}

function executionPath(id: string, action: 'start' | 'output' | 'complete' | 'cancel-status'): string {
  assertExecutionId(id);
  return `${V1_PREFIX}/executions/${id}/${action}/`;
}

function assertHttpAllowed(serverUrl: string, allowHttpHosts: readonly string[]): void {
  const url = new URL(serverUrl);
  if (url.protocol === 'https:' || allowHttpHosts.includes(url.hostname)) return;
  throw new TypeError(
    `HTTPS is required for non-localhost URLs. Got: ${serverUrl}. ` +
      `To allow HTTP, add '${url.hostname}' to allowHttpHosts.`,
  );
}

function hasExplicitHeader(options: V1RawRequestOptions, name: string): boolean {
  return Object.keys(options.headers ?? {}).some((key) => key.toLowerCase() === name);
}

/** The Python client reads the message from `detail` or `error`; ours may nest it as an object. */
function readError(res: V1RawResponse): { message: string; code?: string } {
  const body = res.body as Record<string, unknown> | null;
  if (body === null || typeof body !== 'object') return { message: res.text };
  const raw = body.detail ?? body.error;
  const nested = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : undefined;
  const message = typeof raw === 'string' ? raw : typeof nested?.message === 'string' ? nested.message : res.text;
  const code = typeof body.code === 'string' ? body.code : typeof nested?.code === 'string' ? nested.code : undefined;
  return { message, code };
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}

/** Resolves after `ms`, or at once when the signal aborts (never rejects). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * An output/ body as Python's json.dumps writes it (ASCII only, ", " and ": " separators), built as
 * bytes: one chunk may be far larger than a JavaScript string can be (the Python runner sends 1.5 s
 * of a fast command's output at once).
 */
export function encodeOutputBody(chunk: OutputRequest): Buffer {
  const ascii = (v: unknown) => JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  const pieces: Buffer[] = [Buffer.from(`{"chunk_number": ${chunk.chunk_number}, "is_stderr": ${chunk.is_stderr}, "segments": [`)];
  let batch: string[] = [];
  const flush = () => {
    if (batch.length > 0) pieces.push(Buffer.from(batch.join(', ')));
    batch = [];
  };
  chunk.segments.forEach((seg, i) => {
    if (i > 0 && batch.length === 0) pieces.push(Buffer.from(', '));
    batch.push(`{"timestamp": ${seg.timestamp === null ? 'null' : seg.timestamp}, "content": ${ascii(seg.content)}}`);
    if (batch.length >= 10_000) flush();
  });
  flush();
  pieces.push(Buffer.from(']}'));
  return Buffer.concat(pieces);
}
