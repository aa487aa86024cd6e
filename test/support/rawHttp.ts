/**
 * HTTP/1.1 over a bare TCP socket, for tests that must send exactly the bytes they mean: header
 * values and paths an HTTP client library would refuse to send, bodies that do not match their
 * headers. One request per connection (Connection: close unless the test says otherwise).
 */
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** A chunked body that ended with its last chunk (false: the server cut it off mid-way). */
  complete: boolean;
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  /** Sent as is instead of a request built from the fields above. */
  raw?: Buffer;
  timeoutMs?: number;
}

export function rawRequest(port: number, req: RawRequest): Promise<RawResponse> {
  const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
  const given = req.headers ?? [];
  const has = (name: string) => given.some(([n]) => n.toLowerCase() === name);
  const headers: Array<[string, string]> = [...(has('host') ? [] : [['host', `127.0.0.1:${port}`] as [string, string]]), ...(has('connection') ? [] : [['connection', 'close'] as [string, string]]), ...given];
  if (body && !headers.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) headers.push(['content-length', String(body.length)]);
  const head = `${req.method} ${req.path} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  const bytes = req.raw ?? Buffer.concat([Buffer.from(head, 'latin1'), body ?? Buffer.alloc(0)]);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) return reject(err);
      try {
        resolve(parse(Buffer.concat(parts)));
      } catch (e) {
        reject(e as Error);
      }
    };
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${req.timeoutMs ?? 15_000} ms to ${req.method} ${req.path.slice(0, 200)}; got ${JSON.stringify(Buffer.concat(parts).toString('latin1').slice(0, 500))}`)), req.timeoutMs ?? 15_000);
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      // A stream that never ends (Server-Sent Events, a WebSocket): its status and headers are the answer.
      const text = Buffer.concat(parts).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end > 0 && (/\r\ncontent-type:\s*text\/event-stream/i.test(text.slice(0, end)) || text.startsWith('HTTP/1.1 101'))) finish();
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server may answer and close before it read the whole request (a body too large).
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return parts.length > 0 ? finish() : finish(err);
      finish(err);
    });
    socket.write(bytes);
  });
}

function parse(all: Buffer): RawResponse {
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`not an HTTP response: ${JSON.stringify(all.toString('latin1').slice(0, 300))}`);
  const lines = all.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1]);
  if (!status) throw new Error(`not an HTTP status line: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = all.subarray(end + 4);
  let complete = true;
  if (/chunked/i.test(headers['transfer-encoding'] ?? '') && !/event-stream/.test(headers['content-type'] ?? '')) {
    const out: Buffer[] = [];
    let at = 0;
    complete = false;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) break;
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!Number.isFinite(size)) break;
      if (size === 0) {
        complete = true;
        break;
      }
      out.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) {
    complete = body.length >= Number(headers['content-length']);
  }
  return { status, headers, body, complete };
}
