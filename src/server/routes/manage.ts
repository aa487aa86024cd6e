/**
 * A way in for teams coming from django-middle-management: `POST /__manage__/<command>` with a
 * bearer token and a JSON body of options (`call_command(command, **data)`; its README wraps them
 * in `{"data": {...}}`), answered synchronously the way it answers: `200 Command executed`,
 * `403 Command not allowed` (and a server error when the command fails). The options become argv
 * through the command's argparse schema (by `dest`); the project is `?project=` or the only one.
 * With `Accept: application/json` the answer is JSON: status, exit code, execution id, last lines.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { audit } from '../../core/audit.js';
import { createExecution } from '../../core/executions.js';
import { outputTail, waitForEnd } from '../../core/executionWait.js';
import { requireProject } from '../../core/access.js';
import { optionsToArgv } from '../../domain/optionsToArgv.js';
import { isTerminal } from '../../domain/execution.js';
import { UserError } from '../../shared/errors.js';
import { requireUser } from '../userAuth.js';

const DEFAULT_WAIT_S = 300;
const MAX_WAIT_S = 3600;

const Params = Type.Object({ command: Type.String({ minLength: 1, maxLength: 200 }) });
const Query = Type.Object(
  { project: Type.Optional(Type.String({ maxLength: 200 })), timeout: Type.Optional(Type.String({ description: `Seconds to wait for the end (default ${DEFAULT_WAIT_S}, at most ${MAX_WAIT_S}); also the command's timeout.` })) },
  { additionalProperties: false },
);

export function registerManageRoutes(app: FastifyInstance, core: Core): void {
  // Hidden from the OpenAPI document: a compatibility path, documented in the README.
  app.post('/__manage__/:command', { schema: { hide: true, params: Params, querystring: Query } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const { command } = request.params as { command: string };
    const q = request.query as { project?: string; timeout?: string };
    const waitSeconds = q.timeout === undefined ? DEFAULT_WAIT_S : Number(q.timeout);
    if (!Number.isInteger(waitSeconds) || waitSeconds < 1 || waitSeconds > MAX_WAIT_S) {
      throw new UserError('DC_VALIDATION', `timeout must be a whole number of seconds from 1 to ${MAX_WAIT_S}.`, { field: 'timeout' });
    }
    const project = await requireProject(core, caller, q.project, 'run');
    const options = optionsOf(request.body);
    const known = await core.store.getCommand(project.id, command);
    if (!known || known.refused) {
      await audit(core, caller.actor, { action: 'execution.create', projectId: project.id, outcome: 'denied', details: { command, via: '__manage__', reason: known ? 'refused by runner policy' : 'unknown command' } });
      return answer(request, reply, 403, 'Command not allowed', { status: 'not_allowed', code: known ? 'DC_COMMAND_NOT_ALLOWED' : 'DC_UNKNOWN_COMMAND', error: known?.refused ?? `Project "${project.name}" has no command "${command}".` });
    }
    const mapped = optionsToArgv(known.schema, options);
    if ('problem' in mapped) throw new UserError('DC_BAD_ARGS', `${command}: ${mapped.problem.message}`, { field: mapped.problem.field });
    const e = await createExecution(core, caller.actor, project, { command, argv: mapped.argv, timeoutSeconds: waitSeconds });
    const gone = new AbortController();
    request.raw.once('close', () => gone.abort());
    const final = (await waitForEnd(core, e.id, waitSeconds * 1000, gone.signal)) ?? e;
    const details = {
      status: final.status,
      exit_code: final.exitCode,
      execution_id: final.id,
      output_tail: final.metadataOnly ? '' : await outputTail(core, final),
    };
    if (!isTerminal(final.status)) return answer(request, reply, 504, 'Command still running', { ...details, code: 'DC_WAIT_TIMEOUT', error: `Still ${final.status} after ${waitSeconds} s; follow execution ${final.id}.` });
    if (final.status === 'succeeded') return answer(request, reply, 200, 'Command executed', details);
    return answer(request, reply, 500, `Command failed (${final.status}${final.exitCode === null ? '' : `, exit code ${final.exitCode}`})`, { ...details, code: 'DC_COMMAND_FAILED', error: final.statusReason ?? `The command ended ${final.status}.` });
  });
}

/** The options: the body itself, or its `data` member as django-middle-management's README sends them. */
function optionsOf(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new UserError('DC_VALIDATION', 'The body must be a JSON object of options, e.g. {"data": {"app_label": "shop"}}.', { field: 'body' });
  const keys = Object.keys(body);
  const data = (body as { data?: unknown }).data;
  if (keys.length === 1 && keys[0] === 'data' && typeof data === 'object' && data !== null && !Array.isArray(data)) return data as Record<string, unknown>;
  return body as Record<string, unknown>;
}

/** Plain text like django-middle-management, or JSON details when the caller asks for them. */
function answer(request: FastifyRequest, reply: FastifyReply, status: number, text: string, details: Record<string, unknown>) {
  reply.status(status);
  if (/\bapplication\/json\b/i.test(request.headers.accept ?? '')) return reply.type('application/json; charset=utf-8').send({ message: text, ...details });
  return reply.type('text/plain; charset=utf-8').send(text);
}
