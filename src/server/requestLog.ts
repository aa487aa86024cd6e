/**
 * Structured logs: one JSON object per line (pino, through Fastify), each line of a request
 * carrying its `request_id`. What a request line holds is chosen here, field by field: method,
 * the path without its query string (a query may carry a token), the route pattern, the client
 * address, the status and the time taken. Never headers, never bodies; the Authorization and
 * Cookie headers are redacted all the same, should anything log a raw request.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyRequest, type FastifyServerOptions } from 'fastify';

/** A caller's request id is taken when it looks like one (a proxy's or a client's): else ours. */
const WELL_FORMED_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  const value = Array.isArray(given) ? given[0] : given;
  return value !== undefined && WELL_FORMED_ID.test(value) ? value : randomUUID();
}

/** The path of a URL, without its query string or fragment. */
export function pathOf(url: string | undefined): string {
  const s = url ?? '/';
  const end = s.search(/[?#]/);
  return (end === -1 ? s : s.slice(0, end)).slice(0, 2048);
}

/** Request lines label the id `request_id`; probes and /metrics are not logged (route logLevel silent). */
export function requestLogController(): LogController {
  return new LogController({ requestIdLogLabel: 'request_id' });
}

export function loggerOptions(level: string): NonNullable<Exclude<FastifyServerOptions['logger'], boolean>> {
  return {
    level,
    // Keys pino would write otherwise; `time` as ISO text reads well and sorts.
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'headers.authorization', 'headers.cookie', 'password', '*.password', 'token', '*.token'],
      censor: '[redacted]',
    },
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        path: pathOf(request.url),
        route: request.routeOptions?.url,
        address: request.ip,
      }),
      res: (reply: { statusCode: number }) => ({ statusCode: reply.statusCode }),
    },
  };
}
