/** REST: four-eyes approvals: the requests waiting, one execution's request, approve and deny. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { approve, deny, getApproval, listPendingApprovals } from '../../core/approvals.js';
import { ErrorBody, ExecutionView } from '../../shared/api.js';
import { ApprovalView, DecideApprovalRequest, approvalView } from '../../shared/commandSettingsApi.js';
import { executionView } from '../../shared/views.js';
import { UserError } from '../../shared/errors.js';
import { requireUser } from '../userAuth.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const IdParams = Type.Object({ id: Type.String() });
const ListQuery = Type.Object({ project: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });

function idOf(request: FastifyRequest): string {
  const { id } = request.params as { id: string };
  if (!UUID.test(id)) throw new UserError('DC_BAD_ID', `"${id.slice(0, 40)}" is not an execution id (a UUID).`);
  return id.toLowerCase();
}

export function registerApprovalRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['approvals'];
  const projectName = async (id: string) => (await core.store.getProject(id))?.name ?? id;

  app.get('/api/v1/approvals', { schema: { tags, querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(ApprovalView) }), ...errors }, description: 'Requests waiting for a decision, oldest first, in the projects the caller sees (or the one named).' } }, async (request) => {
    const caller = await requireUser(core, request);
    const rows = await listPendingApprovals(core, caller, (request.query as { project?: string }).project);
    return { items: rows.map(({ request: r, execution, project }) => approvalView(r, execution, project.name)) };
  });

  app.get('/api/v1/executions/:id/approval', { schema: { tags, params: IdParams, response: { 200: ApprovalView, ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const { request: r, execution } = await getApproval(core, caller, idOf(request));
    return approvalView(r, execution, await projectName(execution.projectId));
  });

  for (const verb of ['approve', 'deny'] as const) {
    app.post(
      `/api/v1/executions/:id/${verb}`,
      { schema: { tags, params: IdParams, body: Type.Optional(DecideApprovalRequest), response: { 200: ExecutionView, ...errors }, description: verb === 'approve' ? 'Queues an execution that waits for approval. Not by anyone behind the request; needs a person with the approver role.' : 'Rejects an execution that waits for approval.' } },
      async (request) => {
        const caller = await requireUser(core, request);
        const comment = (request.body as DecideApprovalRequest | undefined)?.comment;
        const e = await (verb === 'approve' ? approve : deny)(core, caller, idOf(request), comment);
        return executionView(e, await projectName(e.projectId));
      },
    );
  }
}
