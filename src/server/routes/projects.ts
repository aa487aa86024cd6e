/** REST: projects, their runners, runner keys and command catalogue. */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { createProject, createRunnerKey, revokeRunnerKey } from '../../core/projects.js';
import { requireOwner, visibleProjectList } from '../../core/access.js';
import { updateCommandSettings } from '../../core/commandSettings.js';
import { ACTIVE_STATUSES } from '../../domain/execution.js';
import { UserError } from '../../shared/errors.js';
import {
  CommandView,
  CreateKeyRequest,
  CreateProjectRequest,
  ErrorBody,
  ProjectView,
  RunnerKeyView,
  RunnerView,
  UpdateCommandRequest,
} from '../../shared/api.js';
import { commandView, projectSummary, runnerKeyView, runnerView } from '../../shared/views.js';
import { requireProjectCaller, requireUser } from '../userAuth.js';
import { runnerOnline, type Project, type Runner } from '../../domain/model.js';

const ProjectParams = Type.Object({ project: Type.String({ maxLength: 200 }) });
const CommandParams = Type.Object({ project: Type.String({ maxLength: 200 }), name: Type.String({ maxLength: 200 }) });
const KeyParams = Type.Object({ project: Type.String({ maxLength: 200 }), key: Type.String({ maxLength: 200 }) });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const items = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Object({ items: Type.Array(t) });

export function registerProjectRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['projects'];
  const online = (r: Runner) => runnerOnline(r, core.now(), core.settings.runnerOfflineAfterMs);

  async function summary(p: Project) {
    const runners = await core.store.listRunners(p.id);
    const active = await core.store.countExecutions(p.id, [...ACTIVE_STATUSES]);
    return projectSummary(p, runners.filter(online).length, active);
  }

  app.get('/api/v1/projects', { schema: { tags, response: { 200: items(ProjectView), ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    return { items: await Promise.all((await visibleProjectList(core, caller)).map(summary)) };
  });

  app.post('/api/v1/projects', { schema: { tags, body: CreateProjectRequest, response: { ...errors } } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    requireOwner(caller);
    const { name } = request.body as { name: string };
    const { project, key, secret } = await createProject(core, caller.actor, name);
    reply.status(201);
    return { project: await summary(project), runner_key: { ...runnerKeyView(key), key: secret } };
  });

  app.get('/api/v1/projects/:project', { schema: { tags, params: ProjectParams, response: { 200: ProjectView, ...errors } } }, async (request) => {
    return summary((await requireProjectCaller(core, request, (request.params as { project: string }).project, 'view')).project);
  });

  app.get('/api/v1/projects/:project/runners', { schema: { tags, params: ProjectParams, response: { 200: items(RunnerView), ...errors } } }, async (request) => {
    const { project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'view');
    return { items: (await core.store.listRunners(p.id)).map((r) => runnerView(r, online(r))) };
  });

  app.get('/api/v1/projects/:project/keys', { schema: { tags, params: ProjectParams, response: { 200: items(RunnerKeyView), ...errors } } }, async (request) => {
    const { project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'keys.manage');
    return { items: (await core.store.listRunnerKeys(p.id)).map(runnerKeyView) };
  });

  app.post('/api/v1/projects/:project/keys', { schema: { tags, params: ProjectParams, body: CreateKeyRequest, response: { ...errors } } }, async (request, reply) => {
    const { caller, project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'keys.manage');
    const { key, secret } = await createRunnerKey(core, caller.actor, p, (request.body as { name?: string } | undefined)?.name ?? 'api');
    reply.status(201);
    return { ...runnerKeyView(key), key: secret };
  });

  app.post('/api/v1/projects/:project/keys/:key/revoke', { schema: { tags, params: KeyParams, response: { 200: RunnerKeyView, ...errors } } }, async (request) => {
    const params = request.params as { project: string; key: string };
    const { caller, project: p } = await requireProjectCaller(core, request, params.project, 'keys.manage');
    const key = (await core.store.listRunnerKeys(p.id)).find((k) => k.id === params.key || k.prefix === params.key);
    if (!key) throw new UserError('DC_UNKNOWN_KEY', `Project "${p.name}" has no runner key "${params.key}".`);
    return runnerKeyView(await revokeRunnerKey(core, caller.actor, key.id));
  });

  app.get('/api/v1/projects/:project/commands', { schema: { tags, params: ProjectParams, response: { 200: items(CommandView), ...errors } } }, async (request) => {
    const { project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'view');
    return { items: (await core.store.listCommands(p.id)).map((c) => commandView(c, core.settings.defaultConcurrency)) };
  });

  app.get('/api/v1/projects/:project/commands/:name', { schema: { tags, params: CommandParams, response: { 200: CommandView, ...errors } } }, async (request) => {
    const params = request.params as { project: string; name: string };
    const { project: p } = await requireProjectCaller(core, request, params.project, 'view');
    const c = await core.store.getCommand(p.id, params.name);
    if (!c) throw new UserError('DC_UNKNOWN_COMMAND', `Project "${p.name}" has no command "${params.name}".`);
    return commandView(c, core.settings.defaultConcurrency);
  });

  app.patch(
    '/api/v1/projects/:project/commands/:name',
    { schema: { tags, params: CommandParams, body: UpdateCommandRequest, response: { 200: CommandView, ...errors } } },
    async (request) => {
      const params = request.params as { project: string; name: string };
      const { caller, project: p } = await requireProjectCaller(core, request, params.project, 'commands.manage');
      const body = request.body as { max_concurrency?: number | null; read_only_default?: boolean };
      // The earlier form of PUT .../commands/NAME/settings: one code path, one audit (command.settings).
      await updateCommandSettings(core, caller, p, params.name, { maxConcurrency: body.max_concurrency, readOnlyDefault: body.read_only_default });
      return commandView((await core.store.getCommand(p.id, params.name))!, core.settings.defaultConcurrency);
    },
  );
}
