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
import { digestBody, readV1OutputBody } from '../v1OutputBody.js';
import { isUserError, UserError } from '../../shared/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    runnerCaller?: v1.RunnerCaller;
    /** Answered from the nonce record: a retry of a request already handled. */
    repeated?: boolean;
    /** This request's nonce is recorded as fresh: its answer is kept for retries. */
    nonceClaimed?: boolean;
    /** Known only once a streamed body is read: saved with the answer. */
    nonceFingerprint?: string;
  }
}

const IdParams = Type.Object({ id: Type.String() });
type IdParams = { id: string };

export function registerRunnerV1Routes(app: FastifyInstance, core: Core, maxBodyBytes: number, maxOutputChunkBytes: number): void {
  const verifyKey = async (request: FastifyRequest) => {
    request.runnerCaller = await v1.verifyRunnerKey(core, {
      bearer: bearerOf(request),
      timestamp: headerOf(request, V1_HEADERS.timestamp),
      nonce: headerOf(request, V1_HEADERS.nonce),
      address: request.ip,
    });
  };
  /**
   * The nonce's second half of authentication; true when the request was answered from a retry's
   * record. With `onlyIfFresh`, a nonce seen before returns false without an answer (judge it later).
   */
  const claimNonce = async (request: FastifyRequest, reply: FastifyReply, fingerprint: string, onlyIfFresh = false): Promise<boolean> => {
    const nonce = headerOf(request, V1_HEADERS.nonce)!;
    if (onlyIfFresh) {
      const fresh = await v1.reserveNonce(core, request.runnerCaller!, nonce, fingerprint);
      if (fresh) request.nonceClaimed = true;
      return fresh;
    }
    const repeat = await v1.claimNonce(core, request.runnerCaller!, nonce, fingerprint);
    if (!repeat) {
      request.nonceClaimed = true;
      return false;
    }
    request.repeated = true;
    reply.status(repeat.status).type('application/json; charset=utf-8').send(repeat.body);
    return true;
  };
  const authenticate = async (request: FastifyRequest, reply: FastifyReply) => {
    await verifyKey(request);
    if (await claimNonce(request, reply, fingerprintOf(request, request.bodyDigest))) return reply;
  };
  /** pending/: an idle poll is answered here, its nonce and answer stored together; any other goes the usual way. */
  const authenticatePoll = async (request: FastifyRequest, reply: FastifyReply) => {
    await verifyKey(request);
    const fingerprint = fingerprintOf(request, request.bodyDigest);
    const idle = await v1.answerIdlePoll(core, request.runnerCaller!, headerOf(request, V1_HEADERS.nonce)!, fingerprint);
    if (idle !== undefined) return reply.status(200).type('application/json; charset=utf-8').send(idle);
    if (await claimNonce(request, reply, fingerprint)) return reply;
  };
  const rememberAnswer = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const nonce = headerOf(request, V1_HEADERS.nonce);
    if (request.runnerCaller && request.nonceClaimed && nonce && reply.statusCode < 500 && typeof payload === 'string') {
      await v1.rememberAnswer(core, request.runnerCaller, nonce, { status: reply.statusCode, body: payload }, request.nonceFingerprint);
    }
    return payload;
  };
  const releaseOnServerError = async (request: FastifyRequest, reply: FastifyReply) => {
    const nonce = headerOf(request, V1_HEADERS.nonce);
    if (reply.statusCode >= 500 && request.runnerCaller && request.nonceClaimed && nonce) await v1.releaseNonce(core, request.runnerCaller, nonce);
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
  app.get(`${V1_PREFIX}/pending/`, { ...base, preHandler: authenticatePoll, schema: { tags, response: { 200: PendingResponse, ...errors } } }, (r) => v1.pending(core, caller(r)));
  app.post(`${V1_PREFIX}/executions/:id/start/`, { ...base, schema: { tags, params: IdParams } }, (r) =>
    v1.start(core, caller(r), (r.params as IdParams).id),
  );
  // output/ bodies are read as a stream (see v1OutputBody.ts), after the key is checked: the
  // Python runner sends whatever 1.5 s of output was, tens of megabytes from a fast command.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    scope.post(
      `${V1_PREFIX}/executions/:id/output/`,
      {
        preHandler: verifyKey,
        onSend: rememberAnswer,
        onResponse: releaseOnServerError,
        schema: { tags, params: IdParams, description: `Body: ${JSON.stringify(OutputRequest.properties)}; read as a stream, up to DJANGOCOMMAND_MAX_OUTPUT_CHUNK bytes.` },
      },
      async (request, reply) => {
        if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
          throw new UserError('DC_UNSUPPORTED_MEDIA_TYPE', 'Send JSON with "Content-Type: application/json".');
        }
        const length = Number(request.headers['content-length']);
        const contentLength = request.headers['content-length'] !== undefined && Number.isSafeInteger(length) && length >= 0 ? length : undefined;
        const nonce = headerOf(request, V1_HEADERS.nonce)!;
        const fingerprint = (digest: string) => fingerprintOf(request, digest === 'no body' ? undefined : digest);
        // A fresh nonce is held as "pending" while the body streams in and its parts are stored.
        // A nonce seen before is a retry or a replay: the body is read, storing nothing, to tell which.
        if (!(await claimNonce(request, reply, v1.PENDING_FINGERPRINT, true))) {
          const digest = await digestBody(request.raw, maxOutputChunkBytes);
          if (await claimNonce(request, reply, fingerprint(digest))) return reply;
          // The earlier attempt let go of the nonce meanwhile (its body broke off), and this
          // body has been read: the client's retry of a 503 carries the chunk again.
          throw new UserError('DC_RETRY', 'This request raced with an earlier attempt of it; send it again.');
        }
        const output = await v1.openOutput(core, caller(request), (request.params as IdParams).id);
        try {
          const { header, digest } = await readV1OutputBody(request.raw, maxOutputChunkBytes, contentLength, (h, part, index) => output.part(h, part, index));
          request.nonceFingerprint = fingerprint(digest);
          return await output.complete(header);
        } catch (err) {
          if (isUserError(err) && err.details?.incomplete) {
            // The connection broke mid-body: the runner's retry (same nonce) must get through,
            // and skips the parts stored already.
            request.nonceClaimed = false;
            await v1.releaseNonce(core, caller(request), nonce);
          }
          throw err;
        }
      },
    );
  });
  app.post(`${V1_PREFIX}/executions/:id/complete/`, { ...base, schema: { tags, params: IdParams, body: CompleteRequest } }, (r) =>
    v1.complete(core, caller(r), (r.params as IdParams).id, r.body as CompleteRequest),
  );
  app.get(`${V1_PREFIX}/executions/:id/cancel-status/`, { ...base, schema: { tags, params: IdParams, response: { 200: CancelStatusResponse, ...errors } } }, (r) =>
    v1.cancelStatus(core, caller(r), (r.params as IdParams).id),
  );
}

/** What makes a request "the same request" when its nonce comes again: method, URL and body bytes. */
function fingerprintOf(request: FastifyRequest, bodyDigest: string | undefined): string {
  return createHash('sha256').update(`${request.method} ${request.url}\n${bodyDigest ?? 'no body'}`).digest('hex');
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
