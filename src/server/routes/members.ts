/** REST: a project's members and its CI tokens (project admins manage them; members see who else is one). */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { requireProject } from '../../core/access.js';
import { listMembers, removeMember, setMember } from '../../core/members.js';
import { createCiToken, revokeCiToken } from '../../core/ciTokens.js';
import { ErrorBody } from '../../shared/api.js';
import { ciTokenView, CreateCiTokenRequest, expiryOf, memberView, SetMemberRequest, userView } from '../../shared/accessApi.js';
import { requireUser } from '../userAuth.js';

const errors = { 200: Type.Any(), 201: Type.Any(), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const ProjectParams = Type.Object({ project: Type.String({ maxLength: 200 }) });
const MemberParams = Type.Object({ project: Type.String({ maxLength: 200 }), email: Type.String({ maxLength: 254 }) });
const TokenParams = Type.Object({ project: Type.String({ maxLength: 200 }), id: Type.String({ maxLength: 100 }) });

export function registerMemberRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['members'];

  app.get('/api/v1/projects/:project/members', { schema: { tags, params: ProjectParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    const project = await requireProject(core, caller, (request.params as { project: string }).project, 'view');
    return { items: (await listMembers(core, caller, project)).map(memberView) };
  });

  app.put('/api/v1/projects/:project/members', { schema: { tags, params: ProjectParams, body: SetMemberRequest, response: errors } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const project = await requireProject(core, caller, (request.params as { project: string }).project, 'members.manage');
    const body = request.body as SetMemberRequest;
    const { user, role, added } = await setMember(core, caller, project, body.email, body.role);
    reply.status(added ? 201 : 200);
    return { user: userView(user), role, added };
  });

  app.delete('/api/v1/projects/:project/members/:email', { schema: { tags, params: MemberParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    const params = request.params as { project: string; email: string };
    const project = await requireProject(core, caller, params.project, 'members.manage');
    await removeMember(core, caller, project, params.email);
    return { ok: true };
  });

  app.get('/api/v1/projects/:project/ci-tokens', { schema: { tags, params: ProjectParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    const project = await requireProject(core, caller, (request.params as { project: string }).project, 'members.manage');
    return { items: (await core.store.access.listCiTokens(project.id)).map(ciTokenView) };
  });

  app.post('/api/v1/projects/:project/ci-tokens', { schema: { tags, params: ProjectParams, body: CreateCiTokenRequest, response: errors } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const project = await requireProject(core, caller, (request.params as { project: string }).project, 'members.manage');
    const body = request.body as CreateCiTokenRequest;
    const { token, secret } = await createCiToken(core, caller, project, { name: body.name, role: body.role, expiresAt: expiryOf(body.expires_at) });
    reply.status(201);
    return { ...ciTokenView(token), token: secret };
  });

  app.post('/api/v1/projects/:project/ci-tokens/:id/revoke', { schema: { tags, params: TokenParams, response: errors } }, async (request) => {
    const caller = await requireUser(core, request);
    const params = request.params as { project: string; id: string };
    const project = await requireProject(core, caller, params.project, 'members.manage');
    await revokeCiToken(core, caller, project, params.id);
    return { ok: true };
  });
}
