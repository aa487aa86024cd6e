/** REST: notification channels, their deliveries and attempts; admins create, delete and test. */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { requireOwner, requirePermission, requireProject, roleOf, visibleProjectIds } from '../../core/access.js';
import { isOwner } from '../../domain/roles.js';
import { createChannel, deleteChannel, getChannel, testChannel } from '../../core/notifications/channels.js';
import type { Channel, Delivery } from '../../store/notificationStore.js';
import { ErrorBody } from '../../shared/api.js';
import {
  ChannelView,
  CreateChannelRequest,
  CreatedChannelView,
  DeliveryView,
  TestChannelView,
  type AttemptView,
} from '../../shared/notificationsApi.js';
import { iso } from '../../shared/views.js';
import { UserError } from '../../shared/errors.js';
import { requireUser, type Caller } from '../userAuth.js';
import { parseLimit, parseText } from './query.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const ListQuery = Type.Object(
  {
    project: Type.Optional(Type.String({ maxLength: 200, description: 'Only this project\u2019s channels.' })),
    scope: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('server')], { description: 'server: only server-wide channels; all (default): every channel.' })),
  },
  { additionalProperties: false },
);
const DeliveriesQuery = Type.Object({ limit: Type.Optional(Type.String()), before: Type.Optional(Type.String()) }, { additionalProperties: false });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };
const FINISHED = ['delivered', 'failed', 'cancelled'];

export function registerChannelRoutes(app: FastifyInstance, core: Core): void {
  const tags = ['notifications'];
  const projectNames = async () => new Map((await core.store.listProjects()).map((p) => [p.id, p.name]));

  async function channelView(c: Channel, names?: Map<string, string>): Promise<ChannelView> {
    const [last] = await core.store.notifications.listDeliveries(c.id, 1);
    const project = c.projectId ? ((names ?? (await projectNames())).get(c.projectId) ?? c.projectId) : null;
    return {
      id: c.id,
      name: c.name,
      kind: c.kind,
      project,
      target: c.target,
      on: c.config.on,
      commands: c.config.commands,
      slow_after: c.config.slowAfterSeconds,
      signed: c.kind === 'webhook',
      created_at: iso(c.createdAt),
      created_by: c.createdBy,
      last_delivery: last ? { status: last.status, at: iso(last.finishedAt ?? last.createdAt), error: last.lastError } : null,
    };
  }

  async function deliveryViews(list: Delivery[]): Promise<DeliveryView[]> {
    const attempts = await core.store.notifications.listAttempts(list.map((d) => d.id));
    const events = new Map((await core.store.notifications.getEvents(list.flatMap((d) => (d.eventId === null ? [] : [d.eventId])))).map((e) => [e.id, e]));
    return list.map((d) => {
      const e = d.eventId === null ? undefined : events.get(d.eventId);
      return {
        id: d.id,
        event_id: d.eventId,
        event_type: e?.type ?? null,
        execution_id: e?.executionId ?? null,
        kinds: d.kinds,
        summary: d.summary,
        status: d.status,
        attempts: attempts
          .filter((a) => a.deliveryId === d.id)
          .map((a): AttemptView => ({ at: iso(a.at), ok: a.ok, status_code: a.statusCode, error: a.error, duration_ms: a.durationMs })),
        created_at: iso(d.createdAt),
        next_attempt_at: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
        finished_at: d.finishedAt === null ? null : iso(d.finishedAt),
        digest_id: d.digestId,
      };
    });
  }

  /**
   * A channel the caller may see (`view`) or change (`channels.manage`): a project's channel by
   * its project role, a server-wide one by owners only. Others answer like unknown channels.
   */
  async function channelFor(caller: Caller, id: string, permission: 'view' | 'channels.manage') {
    const channel = await getChannel(core, id);
    if (channel.projectId === null) {
      if (!isOwner(caller.grants)) throw new UserError('DC_UNKNOWN_CHANNEL', `No notification channel ${id}.`);
      return channel;
    }
    const project = await core.store.getProject(channel.projectId);
    if (!project || roleOf(caller, project.id) === null) throw new UserError('DC_UNKNOWN_CHANNEL', `No notification channel ${id}.`);
    await requirePermission(core, caller, project, permission);
    return channel;
  }

  app.get('/api/v1/channels', { schema: { tags, querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(ChannelView) }), ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const q = request.query as { project?: string; scope?: 'all' | 'server' };
    const project = q.project ? await requireProject(core, caller, parseText(q.project, 'project'), 'view') : undefined;
    if (q.scope === 'server') requireOwner(caller);
    const visible = visibleProjectIds(caller);
    const channels = (await core.store.notifications.listChannels(project ? project.id : q.scope === 'server' ? null : undefined)).filter((c) =>
      c.projectId === null ? isOwner(caller.grants) : visible === null || visible.has(c.projectId),
    );
    const names = await projectNames();
    return { items: await Promise.all(channels.map((c) => channelView(c, names))) };
  });

  app.post('/api/v1/channels', { schema: { tags, body: CreateChannelRequest, response: { 201: CreatedChannelView, ...errors } } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const b = request.body as CreateChannelRequest;
    if (b.project) await requireProject(core, caller, b.project, 'channels.manage');
    else requireOwner(caller);
    const { channel, signingSecret } = await createChannel(core, caller.actor, {
      project: b.project,
      kind: b.kind,
      name: b.name,
      url: b.url,
      to: b.to,
      secret: b.secret,
      on: b.on,
      commands: b.commands,
      slowAfterSeconds: b.slow_after,
    });
    reply.status(201);
    return { ...(await channelView(channel)), secret: signingSecret };
  });

  app.get('/api/v1/channels/:id', { schema: { tags, params: IdParams, response: { 200: ChannelView, ...errors } } }, async (request) => {
    return channelView(await channelFor(await requireUser(core, request), (request.params as { id: string }).id, 'view'));
  });

  app.delete('/api/v1/channels/:id', { schema: { tags, params: IdParams, response: { 200: ChannelView, ...errors } } }, async (request) => {
    const caller = await requireUser(core, request);
    const channel = await channelFor(caller, (request.params as { id: string }).id, 'channels.manage');
    return channelView(await deleteChannel(core, caller.actor, channel.id));
  });

  app.post(
    '/api/v1/channels/:id/test',
    { schema: { tags, params: IdParams, response: { 200: TestChannelView, ...errors }, description: 'Queues a test message. Optional body {"wait": seconds} (0 to 60): answers once its first attempt is made.' } },
    async (request) => {
      const caller = await requireUser(core, request);
      const wait = parseWait(request.body);
      const allowed = await channelFor(caller, (request.params as { id: string }).id, 'channels.manage');
      const { channel, eventId } = await testChannel(core, caller.actor, allowed.id);
      const deadline = Date.now() + wait * 1000;
      for (;;) {
        const d = (await core.store.notifications.listDeliveriesOfEvent(eventId)).find((x) => x.channelId === channel.id);
        const attempted = d !== undefined && (FINISHED.includes(d.status) || d.attempts > 0);
        if (attempted || Date.now() >= deadline) return { event_id: eventId, delivery: d ? (await deliveryViews([d]))[0] : null };
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  );

  app.get(
    '/api/v1/channels/:id/deliveries',
    { schema: { tags, params: IdParams, querystring: DeliveriesQuery, response: { 200: Type.Object({ items: Type.Array(DeliveryView) }), ...errors }, description: 'Newest first, each with its attempts.' } },
    async (request) => {
      const c = await channelFor(await requireUser(core, request), (request.params as { id: string }).id, 'view');
      const q = request.query as { limit?: string; before?: string };
      const before = q.before === undefined ? undefined : Number(q.before);
      if (before !== undefined && (!Number.isInteger(before) || before < 1)) throw new UserError('DC_VALIDATION', 'before must be a delivery id.', { field: 'before' });
      return { items: await deliveryViews(await core.store.notifications.listDeliveries(c.id, parseLimit(q.limit, 50), before)) };
    },
  );
}

/** The test's optional body: {"wait": 0..60}. */
function parseWait(body: unknown): number {
  if (body === undefined || body === null) return 0;
  const { wait, ...rest } = typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : { wait: NaN };
  if (Object.keys(rest).length > 0 || (wait !== undefined && (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0 || wait > 60))) {
    throw new UserError('DC_VALIDATION', 'The body must be like {"wait": 10}: whole seconds from 0 to 60.', { field: 'body.wait' });
  }
  return (wait as number | undefined) ?? 0;
}
