/** REST: a command's settings (project admins change them; members read them). */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { getCommandSettings, updateCommandSettings } from '../../core/commandSettings.js';
import { ErrorBody } from '../../shared/api.js';
import { CommandSettingsView, UpdateCommandSettingsRequest, commandSettingsView } from '../../shared/commandSettingsApi.js';
import { requireProjectCaller } from '../userAuth.js';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const CommandParams = Type.Object({ project: Type.String({ maxLength: 200 }), name: Type.String({ maxLength: 200 }) });

export function registerCommandSettingsRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['commands'];

  app.get('/api/v1/projects/:project/commands/:name/settings', { schema: { tags, params: CommandParams, response: { 200: CommandSettingsView, ...errors } } }, async (request) => {
    const params = request.params as { project: string; name: string };
    const { caller, project } = await requireProjectCaller(core, request, params.project, 'view');
    return commandSettingsView(await getCommandSettings(core, caller, project, params.name), project.name);
  });

  app.put(
    '/api/v1/projects/:project/commands/:name/settings',
    { schema: { tags, params: CommandParams, body: UpdateCommandSettingsRequest, response: { 200: CommandSettingsView, ...errors }, description: 'Changes the fields given; the others stay. Every change is audited (command.settings) with each field before and after.' } },
    async (request) => {
      const params = request.params as { project: string; name: string };
      const { caller, project } = await requireProjectCaller(core, request, params.project, 'commands.manage');
      const b = request.body as UpdateCommandSettingsRequest;
      const after = await updateCommandSettings(core, caller, project, params.name, {
        metadataOnly: b.metadata_only,
        defaultTimeoutSeconds: b.default_timeout_seconds,
        maxConcurrency: b.max_concurrency,
        readOnlyDefault: b.read_only_default,
        requiresApproval: b.requires_approval,
        approvalPattern: b.approval_pattern,
        approverRole: b.approver_role,
        approvalExpirySeconds: b.approval_expiry_seconds,
      });
      return commandSettingsView(after, project.name);
    },
  );
}
