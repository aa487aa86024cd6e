/** REST: schedules (create, list, show, edit, pause, resume, delete, run now), their occurrences, the preview and the timeline. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { requirePermission, requireProject, roleOf, visibleProjectIds } from '../../core/access.js';
import type { Permission } from '../../domain/roles.js';
import {
  checkTiming,
  createSchedule,
  deleteSchedule,
  editSchedule,
  getSchedule,
  pauseSchedule,
  resumeSchedule,
  runScheduleNow,
  type ScheduleInput,
} from '../../core/schedules/schedules.js';
import { scheduleLabel } from '../../core/schedules/fireOccurrence.js';
import { previewRuns } from '../../domain/scheduleCron.js';
import type { Schedule } from '../../domain/schedule.js';
import { ErrorBody } from '../../shared/api.js';
import {
  CreateScheduleRequest,
  OccurrenceView,
  PreviewView,
  RunNowView,
  ScheduleView,
  TimelineView,
  UpdateScheduleRequest,
  occurrenceView,
  previewRunView,
  scheduleView,
} from '../../shared/schedulesApi.js';
import { UserError } from '../../shared/errors.js';
import { requireProjectCaller, requireUser, type Caller } from '../userAuth.js';
import { parseLimit, parseText, parseTime } from './query.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const PreviewQuery = Type.Object(
  { cron: Type.String({ maxLength: 200 }), timezone: Type.Optional(Type.String({ maxLength: 100 })), count: Type.Optional(Type.String()), from: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const ListQuery = Type.Object({ project: Type.Optional(Type.String({ maxLength: 200 })), recent: Type.Optional(Type.String()) }, { additionalProperties: false });
const OccurrencesQuery = Type.Object({ limit: Type.Optional(Type.String()), before: Type.Optional(Type.String()) }, { additionalProperties: false });
const TimelineQuery = Type.Object({ hours: Type.Optional(Type.String()), project: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });

const NEXT_RUNS = 5;
const MAX_PREVIEW = 100;
const TIMELINE_MAX = 2000;

type ScheduleBody = Partial<CreateScheduleRequest> & UpdateScheduleRequest;

function inputOf(body: ScheduleBody): ScheduleInput {
  return {
    command: body.command,
    argv: body.argv,
    args: body.args,
    cron: body.cron,
    timezone: body.timezone,
    name: body.name,
    timeoutSeconds: body.timeout,
    startTimeoutSeconds: body.start_timeout,
    overlap: body.overlap as ScheduleInput['overlap'],
    misfire: body.misfire as ScheduleInput['misfire'],
    catchUpSeconds: body.catch_up_window,
    healthEveryMinutes: body.health_every,
    readOnly: body.read_only,
    paused: body.paused,
  };
}

function count(value: string | undefined, fallback: number, max: number, field: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UserError('DC_VALIDATION', `${field} must be a whole number from 1 to ${max}.`, { field });
  return n;
}

export function registerScheduleRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['schedules'];
  const projectName = async (id: string) => (await core.store.getProject(id))?.name ?? id;
  const full = async (s: Schedule, recent = 20) =>
    scheduleView(s, await projectName(s.projectId), {
      nextRuns: s.nextDueAt === null ? [] : previewRuns(s.cron, s.timezone, s.nextDueAt - 1, NEXT_RUNS),
      recent: await core.store.schedules.listOccurrences(s.id, recent),
    });
  const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;
  /** The schedule the route names, when the caller may do `permission` in its project (else unknown). */
  const scheduleFor = async (caller: Caller, request: FastifyRequest, permission: Permission) => {
    const s = await getSchedule(core, idOf(request));
    const project = await core.store.getProject(s.projectId);
    if (!project || roleOf(caller, s.projectId) === null) throw new UserError('DC_UNKNOWN_SCHEDULE', `No schedule ${idOf(request)}.`);
    await requirePermission(core, caller, project, permission);
    return s;
  };

  app.get('/api/v1/schedules/preview', { schema: { tags, querystring: PreviewQuery, response: { 200: PreviewView, ...errors } } }, async (request) => {
    await requireUser(core, request);
    const q = request.query as { cron: string; timezone?: string; count?: string; from?: string };
    const timezone = q.timezone || 'UTC';
    const from = parseTime(q.from, 'from') ?? core.now();
    checkTiming(q.cron, timezone, from);
    return { cron: q.cron, timezone, runs: previewRuns(q.cron, timezone, from, count(q.count, 10, MAX_PREVIEW, 'count')).map(previewRunView) };
  });

  app.get('/api/v1/schedules/timeline', { schema: { tags, querystring: TimelineQuery, response: { 200: TimelineView, ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const q = request.query as { hours?: string; project?: string };
    const hours = count(q.hours, 24, 24 * 7, 'hours');
    const project = q.project ? await requireProject(core, caller, q.project, 'view') : undefined;
    const visible = visibleProjectIds(caller);
    const from = core.now();
    const to = from + hours * 3600_000;
    const items: TimelineView['items'] = [];
    let truncated = false;
    for (const s of await core.store.schedules.listSchedules(project?.id)) {
      if (s.paused || s.nextDueAt === null || (visible && !visible.has(s.projectId))) continue;
      const name = await projectName(s.projectId);
      for (const r of previewRuns(s.cron, s.timezone, s.nextDueAt - 1, 500)) {
        if (r.at >= to) break;
        if (items.length >= TIMELINE_MAX) {
          truncated = true;
          break;
        }
        items.push({ schedule_id: s.id, schedule: scheduleLabel(s), project: name, command: s.command, timezone: s.timezone, at: new Date(r.at).toISOString(), local: r.local, dst: r.dst?.note ?? null });
      }
    }
    items.sort((a, b) => a.at.localeCompare(b.at));
    return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), items, truncated };
  });

  app.get('/api/v1/schedules', { schema: { tags, querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(ScheduleView) }), ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const q = request.query as { project?: string; recent?: string };
    const project = q.project ? await requireProject(core, caller, parseText(q.project, 'project'), 'view') : undefined;
    const recent = q.recent === undefined ? 0 : count(q.recent, 20, 50, 'recent');
    const visible = visibleProjectIds(caller);
    const schedules = (await core.store.schedules.listSchedules(project?.id)).filter((s) => !visible || visible.has(s.projectId));
    return {
      items: await Promise.all(
        schedules.map(async (s) =>
          scheduleView(s, await projectName(s.projectId), recent > 0 ? { recent: await core.store.schedules.listOccurrences(s.id, recent) } : {}),
        ),
      ),
    };
  });

  app.post('/api/v1/schedules', { schema: { tags, body: CreateScheduleRequest, response: { 201: ScheduleView, ...errors } } }, async (request, reply) => {
    const body = request.body as CreateScheduleRequest;
    const { caller, project } = await requireProjectCaller(core, request, body.project, 'schedules.manage');
    const s = await createSchedule(core, caller.actor, project, inputOf(body));
    reply.status(201);
    return full(s);
  });

  app.get('/api/v1/schedules/:id', { schema: { tags, params: IdParams, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    return full(await scheduleFor(await requireUser(core, request), request, 'view'));
  });

  app.patch('/api/v1/schedules/:id', { schema: { tags, params: IdParams, body: UpdateScheduleRequest, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    await scheduleFor(caller, request, 'schedules.manage');
    return full(await editSchedule(core, caller.actor, idOf(request), inputOf(request.body as UpdateScheduleRequest)));
  });

  app.delete('/api/v1/schedules/:id', { schema: { tags, params: IdParams, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    await scheduleFor(caller, request, 'schedules.manage');
    const s = await deleteSchedule(core, caller.actor, idOf(request));
    return scheduleView(s, await projectName(s.projectId));
  });

  for (const [verb, act] of [
    ['pause', pauseSchedule],
    ['resume', resumeSchedule],
  ] as const) {
    app.post(`/api/v1/schedules/:id/${verb}`, { schema: { tags, params: IdParams, response: { 200: ScheduleView, ...errors } } }, async (request) => {
      const caller = await requireUser(core, request);
      await scheduleFor(caller, request, 'schedules.manage');
      return full(await act(core, caller.actor, idOf(request)));
    });
  }

  app.post('/api/v1/schedules/:id/run', { schema: { tags, params: IdParams, response: { 201: RunNowView, ...errors } } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    await scheduleFor(caller, request, 'run');
    const { occurrence, result } = await runScheduleNow(core, caller.actor, idOf(request));
    reply.status(201);
    return { occurrence: occurrenceView(occurrence), execution_id: result.executionId ?? null };
  });

  app.get(
    '/api/v1/schedules/:id/occurrences',
    { schema: { tags, params: IdParams, querystring: OccurrencesQuery, response: { 200: Type.Object({ items: Type.Array(OccurrenceView) }), ...errors } } },
    async (request) => {
      const s = await scheduleFor(await requireUser(core, request), request, 'view');
      const q = request.query as { limit?: string; before?: string };
      return { items: (await core.store.schedules.listOccurrences(s.id, parseLimit(q.limit, 50), parseTime(q.before, 'before'))).map(occurrenceView) };
    },
  );
}
