/** REST: the audit log, filtered and paged. */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { resolveProject } from '../../core/projects.js';
import { AuditEventView, ErrorBody, pageOf } from '../../shared/api.js';
import { auditView } from '../../shared/views.js';
import { requireUser } from '../userAuth.js';
import { parseLimit, parseTime } from './query.js';

const AuditQuery = Type.Object(
  {
    project: Type.Optional(Type.String()),
    execution: Type.Optional(Type.String({ format: 'uuid' })),
    action: Type.Optional(Type.String()),
    actor: Type.Optional(Type.String({ description: 'Actor id (user, token or runner key).' })),
    actor_type: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('token'), Type.Literal('runner'), Type.Literal('system')])),
    since: Type.Optional(Type.String({ description: 'ISO 8601 time or unix ms.' })),
    until: Type.Optional(Type.String({ description: 'ISO 8601 time or unix ms.' })),
    limit: Type.Optional(Type.String()),
    cursor: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export function registerAuditRoutes(app: FastifyInstance, core: Core): void {
  app.get('/api/v1/audit', { schema: { tags: ['audit'], querystring: AuditQuery, response: { 200: pageOf(AuditEventView), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } } }, async (request) => {
    await requireUser(core, request);
    const q = request.query as Record<string, string | undefined>;
    const project = q.project ? await resolveProject(core, q.project) : undefined;
    const page = await core.store.listAudit(
      {
        projectId: project?.id,
        executionId: q.execution,
        action: q.action,
        actorId: q.actor,
        actorType: q.actor_type,
        after: parseTime(q.since, 'since'),
        before: parseTime(q.until, 'until'),
      },
      parseLimit(q.limit),
      q.cursor,
    );
    return { items: page.items.map(auditView), next_cursor: page.nextCursor };
  });
}
