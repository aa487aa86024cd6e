/** HTTP binding of runner protocol v1: paths, headers and bodies exactly as the Python runner uses them. */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import * as v1 from '../../core/runnerV1.js';
import {
  CancelStatusResponse,
  CommandsSyncRequest,
  CommandsSyncResponse,
  CompleteRequest,
  HeartbeatRequest,
  HeartbeatResponse,
  OutputRequest,
  PendingResponse,
  V1_HEADERS,
  V1_PREFIX,
} from '../../shared/protocolV1.js';
import { ErrorBody } from '../../shared/api.js';
import { bearerOf } from '../userAuth.js';

declare module 'fastify' {
  interface FastifyRequest {
    runnerCaller?: v1.RunnerCaller;
    /** Answered from the nonce record: a retry of a request already handled. */
    repeated?: boolean;
  }
}

const IdParams = Type.Object({ id: Type.String() });
type IdParams = { id: string };

export function registerRunnerV1Routes(app: FastifyInstance, core: Core, maxBodyBytes: number): void {
  const authenticate = async (request: FastifyRequest, reply: FastifyReply) => {
    const caller = await v1.authenticateRunner(core, {
      bearer: bearerOf(request),
      timestamp: headerOf(request, V1_HEADERS.timestamp),
      nonce: headerOf(request, V1_HEADERS.nonce),
      address: request.ip,
      fingerprint: fingerprintOf(request),
    });
    request.runnerCaller = caller;
    if (caller.repeat) {
      request.repeated = true;
      return reply.status(caller.repeat.status).type('application/json; charset=utf-8').send(caller.repeat.body);
    }
  };
  const rememberAnswer = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const nonce = headerOf(request, V1_HEADERS.nonce);
    if (request.runnerCaller && nonce && !request.repeated && reply.statusCode < 500 && typeof payload === 'string') {
      await v1.rememberAnswer(core, request.runnerCaller, nonce, { status: reply.statusCode, body: payload });
    }
    return payload;
  };
  const releaseOnServerError = async (request: FastifyRequest, reply: FastifyReply) => {
    const nonce = headerOf(request, V1_HEADERS.nonce);
    if (reply.statusCode >= 500 && request.runnerCaller && nonce) await v1.releaseNonce(core, request.runnerCaller, nonce);
  };
  const base = {
    preHandler: authenticate,
    onSend: rememberAnswer,
    onResponse: releaseOnServerError,
    bodyLimit: maxBodyBytes,
  };
  const tags = ['runner protocol v1'];
  const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody };
  const caller = (r: FastifyRequest) => r.runnerCaller!;

  app.post(`${V1_PREFIX}/heartbeat/`, { ...base, schema: { tags, body: HeartbeatRequest, response: { 200: HeartbeatResponse, ...errors } } }, (r) =>
    v1.heartbeat(core, caller(r), r.body as HeartbeatRequest),
  );
  app.post(`${V1_PREFIX}/commands/sync/`, { ...base, schema: { tags, body: CommandsSyncRequest, response: { 200: CommandsSyncResponse, ...errors } } }, (r) =>
    v1.syncCommands(core, caller(r), r.body as CommandsSyncRequest),
  );
  app.get(`${V1_PREFIX}/pending/`, { ...base, schema: { tags, response: { 200: PendingResponse, ...errors } } }, (r) => v1.pending(core, caller(r)));
  app.post(`${V1_PREFIX}/executions/:id/start/`, { ...base, schema: { tags, params: IdParams } }, (r) =>
    v1.start(core, caller(r), (r.params as IdParams).id),
  );
  app.post(`${V1_PREFIX}/executions/:id/output/`, { ...base, schema: { tags, params: IdParams, body: OutputRequest } }, (r) =>
    v1.output(core, caller(r), (r.params as IdParams).id, r.body as OutputRequest),
  );
  app.post(`${V1_PREFIX}/executions/:id/complete/`, { ...base, schema: { tags, params: IdParams, body: CompleteRequest } }, (r) =>
    v1.complete(core, caller(r), (r.params as IdParams).id, r.body as CompleteRequest),
  );
  app.get(`${V1_PREFIX}/executions/:id/cancel-status/`, { ...base, schema: { tags, params: IdParams, response: { 200: CancelStatusResponse, ...errors } } }, (r) =>
    v1.cancelStatus(core, caller(r), (r.params as IdParams).id),
  );
}

/** What makes a request "the same request" when its nonce comes again: method, URL and body bytes. */
function fingerprintOf(request: FastifyRequest): string {
  return createHash('sha256').update(`${request.method} ${request.url}\n${request.bodyDigest ?? 'no body'}`).digest('hex');
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
