/** REST: a project's retention limits (its own, and as applied with the server defaults). */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { effectiveLimits, setProjectRetention, type RetentionLimits } from '../../core/retention.js';
import type { ProjectRetention } from '../../store/retentionStore.js';
import { ErrorBody } from '../../shared/api.js';
import { requireProjectCaller } from '../userAuth.js';

const ProjectParams = Type.Object({ project: Type.String({ maxLength: 200 }) });
const Limit = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);
const Limits = Type.Object({ days: Type.Integer(), max_output_bytes: Type.Integer() });
export const RetentionView = Type.Object({
  project: Type.String(),
  /** The project's own limits; null: the server default applies. 0: no limit. */
  days: Limit,
  max_output_bytes: Limit,
  /** What applies: the project's own where set, else the server's. */
  effective: Limits,
  defaults: Limits,
});
export const RetentionChangeRequest = Type.Object(
  {
    days: Type.Optional(Limit),
    max_output_bytes: Type.Optional(Limit),
  },
  { additionalProperties: false, minProperties: 1 },
);
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

export function registerRetentionRoutes(app: FastifyInstance, core: Core, defaults: RetentionLimits): void {
  const tags = ['projects'];
  const view = (name: string, r: ProjectRetention) => {
    const e = effectiveLimits(r, defaults);
    return {
      project: name,
      days: r.days,
      max_output_bytes: r.maxOutputBytes,
      effective: { days: e.days, max_output_bytes: e.maxOutputBytes },
      defaults: { days: defaults.days, max_output_bytes: defaults.maxOutputBytes },
    };
  };

  app.get('/api/v1/projects/:project/retention', { schema: { tags, params: ProjectParams, response: { 200: RetentionView, ...errors } } }, async (request) => {
    const { project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'view');
    return view(p.name, await core.store.retention.getProjectRetention(p.id));
  });

  app.put(
    '/api/v1/projects/:project/retention',
    { schema: { tags, params: ProjectParams, body: RetentionChangeRequest, response: { 200: RetentionView, ...errors }, description: 'Sets the project\'s own limits (null: back to the server default; 0: no limit). Project admins only.' } },
    async (request) => {
      const { caller, project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'project.manage');
      const body = request.body as { days?: number | null; max_output_bytes?: number | null };
      return view(p.name, await setProjectRetention(core, caller.actor, p, { days: body.days, maxOutputBytes: body.max_output_bytes }));
    },
  );
}
