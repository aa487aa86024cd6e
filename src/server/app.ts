/**
 * The HTTP server: one Fastify instance with the runner protocol v1 routes, the REST API and
 * its OpenAPI document. Errors leave as `{ error, code }` JSON with a stable code; anything
 * that is not a UserError is logged with its cause and answered as an internal error.
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { isUserError } from '../shared/errors.js';
import type { Core } from '../core/context.js';
import { registerRunnerV1Routes } from './routes/runnerV1.js';
import { registerProjectRoutes } from './routes/projects.js';
import { registerExecutionRoutes } from './routes/executions.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerMetaRoutes } from './routes/meta.js';
import { registerUserRoutes } from './routes/users.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { VERSION } from '../version.js';
import { RunnerSessions } from './runnerSessions.js';

declare module 'fastify' {
  interface FastifyInstance {
    runnerSessions: RunnerSessions;
  }
  interface FastifyRequest {
    /** SHA-256 of the JSON body's bytes as received (runner requests are fingerprinted by it). */
    bodyDigest?: string;
  }
}

export interface AppOptions {
  core: Core;
  maxApiBodyBytes: number;
  maxRunnerBodyBytes: number;
  trustProxy: boolean;
  logLevel: string;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logLevel === 'silent' ? false : { level: opts.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie'] },
    bodyLimit: opts.maxApiBodyBytes,
    trustProxy: opts.trustProxy,
    // No coercion: "5" is not a number and "x" is not a list; query strings are parsed by hand.
    ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false } },
    routerOptions: { ignoreTrailingSlash: false },
  });

  // v1 runners POST with "Content-Type: application/json" and no body; that must parse as "no body".
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) return done(null, undefined);
    req.bodyDigest = createHash('sha256').update(bytes).digest('hex');
    try {
      done(null, JSON.parse(bytes.toString('utf8')));
    } catch {
      done(Object.assign(new Error('The body is not valid JSON.'), { statusCode: 400, code: 'DC_BAD_JSON' }) as FastifyError, undefined);
    }
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isUserError(err)) {
      return reply.status(err.status).send({ error: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) });
    }
    if (err.validation) {
      const v = err.validation[0];
      const where = `${err.validationContext ?? 'body'}${v?.instancePath ?? ''}`.replace(/\//g, '.');
      const extra = v?.params && 'additionalProperty' in v.params ? ` (${String(v.params.additionalProperty)})` : '';
      const allowed = v?.params && 'allowedValues' in v.params ? `: ${(v.params.allowedValues as unknown[]).join(', ')}` : '';
      return reply.status(400).send({ error: `${where} ${v?.message ?? 'is invalid'}${extra}${allowed}.`, code: 'DC_VALIDATION', details: { field: where } });
    }
    switch (err.code) {
      case 'DC_BAD_JSON':
        return reply.status(400).send({ error: err.message, code: 'DC_BAD_JSON' });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.status(413).send({ error: `The body is larger than this endpoint accepts (${request.routeOptions.bodyLimit ?? opts.maxApiBodyBytes} bytes).`, code: 'DC_BODY_TOO_LARGE' });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send({ error: 'Send JSON with "Content-Type: application/json".', code: 'DC_BAD_REQUEST' });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send({ error: 'Content-Length does not match the body.', code: 'DC_BAD_REQUEST' });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: err.message, code: 'DC_BAD_REQUEST' });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ error: 'Internal error; the server logged it.', code: 'DC_INTERNAL' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: `No route ${request.method} ${request.url.split('?')[0]}.`, code: 'DC_NOT_FOUND' });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'djangocommand', version: VERSION, description: 'Run, schedule and audit Django management commands.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A personal API token (dct_...) or, on /api/runner/, a runner key (dc_...).' } } },
      security: [{ bearer: [] }],
    },
  });

  registerMetaRoutes(app, opts.core);
  registerRunnerV1Routes(app, opts.core, opts.maxRunnerBodyBytes);
  registerProjectRoutes(app, opts.core);
  registerExecutionRoutes(app, opts.core);
  registerAuditRoutes(app, opts.core);
  registerUserRoutes(app, opts.core);
  registerDashboardRoutes(app);

  const sessions = new RunnerSessions(opts.core, app.log, opts.maxRunnerBodyBytes);
  app.server.on('upgrade', (request, socket, head) => {
    const forwarded = opts.trustProxy ? String(request.headers['x-forwarded-for'] ?? '').split(',')[0].trim() : '';
    if (!sessions.handleUpgrade(request, socket, head, forwarded || request.socket.remoteAddress || 'unknown')) socket.destroy();
  });
  app.decorate('runnerSessions', sessions);
  app.addHook('preClose', async () => sessions.close());
  return app;
}
