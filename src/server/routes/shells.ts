/**
 * REST for audited shells: open one (then attach to GET /api/v1/shells/:id/attach, a WebSocket),
 * list a project's sessions, get one, download its recording (asciicast v2), end one, and the
 * project's shell settings (off until an admin turns them on).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { roleOf } from '../../core/access.js';
import { may } from '../../domain/roles.js';
import { recordingParts, shellPerson, shellSettings, updateShellSettings } from '../../core/shells.js';
import type { ShellSession, ShellSettings } from '../../store/shellStore.js';
import { UserError } from '../../shared/errors.js';
import { shellAttachPath } from '../../shared/shellProtocol.js';
import { iso } from '../../shared/views.js';
import { requireProjectCaller, requireUser, type Caller } from '../userAuth.js';
import { watchCredential } from '../liveCredential.js';
import type { ShellSessions } from '../shellSessions.js';
import type { ShellSettingsView, ShellView } from '../../shared/shellsApi.js';

const ProjectParams = Type.Object({ project: Type.String({ maxLength: 200 }) });
const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' }) });
const OpenBody = Type.Object(
  {
    write: Type.Optional(Type.Boolean()),
    reason: Type.Optional(Type.String({ maxLength: 4000 })),
    cols: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
const SettingsBody = Type.Object(
  { enabled: Type.Optional(Type.Boolean()), idle_timeout_seconds: Type.Optional(Type.Integer()) },
  { additionalProperties: false },
);
const ListQuery = Type.Object({ limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })) }, { additionalProperties: false });

export function shellView(s: ShellSession, projectName: string, live: boolean): ShellView {
  return {
    id: s.id,
    project: projectName,
    user: s.userLabel,
    user_id: s.userId,
    status: s.status,
    live,
    read_only: s.readOnly,
    became_writable: s.becameWritable,
    opened_at: iso(s.openedAt),
    ended_at: s.endedAt === null ? null : iso(s.endedAt),
    duration_ms: s.endedAt === null ? null : s.endedAt - s.openedAt,
    end_reason: s.endReason,
    exit_code: s.exitCode,
    recording_bytes: s.recordingBytes,
    attach_path: shellAttachPath(s.id),
    recording_path: `/api/v1/shells/${s.id}/recording`,
  };
}

function settingsView(s: ShellSettings): ShellSettingsView {
  return { enabled: s.enabled, idle_timeout_seconds: s.idleTimeoutSeconds, updated_at: s.updatedAt ? iso(s.updatedAt) : null, updated_by: s.updatedBy || null };
}

/** Recordings hold what was typed and printed: the shell's owner and project admins only. */
function mayRead(caller: Caller, s: ShellSession): void {
  if (roleOf(caller, s.projectId) === null) throw new UserError('DC_UNKNOWN_SHELL', `No shell session ${s.id}.`);
  if (s.userId !== caller.user?.id && !may(caller.grants, s.projectId, 'shell.write')) {
    throw new UserError('DC_FORBIDDEN', "Only the shell's owner or a project admin may see a shell session.");
  }
}

export function registerShellRoutes(app: FastifyInstance, core: Core, shells: ShellSessions): void {
  const tags = ['shells'];

  async function load(request: FastifyRequest, caller: Caller): Promise<ShellSession> {
    const { id } = request.params as { id: string };
    const s = await core.store.shells.getSession(id);
    if (!s) throw new UserError('DC_UNKNOWN_SHELL', `No shell session ${id}.`);
    mayRead(caller, s);
    return s;
  }

  async function projectName(id: string): Promise<string> {
    return (await core.store.getProject(id))?.name ?? id;
  }

  app.post('/api/v1/projects/:project/shells', { schema: { tags, params: ProjectParams, body: OpenBody, description: 'Opens a shell (read-only unless write with a reason); then attach to attach_path (WebSocket).' } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const body = (request.body ?? {}) as { write?: boolean; reason?: string; cols?: number; rows?: number };
    const s = await shells.open(caller, (request.params as { project: string }).project, { write: body.write === true, reason: body.reason, cols: body.cols ?? 80, rows: body.rows ?? 24 });
    reply.status(201);
    return shellView(s, await projectName(s.projectId), shells.isLive(s.id));
  });

  app.get('/api/v1/projects/:project/shells', { schema: { tags, params: ProjectParams, querystring: ListQuery } }, async (request) => {
    const { project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'shell.write');
    const limit = Math.min(500, Math.max(1, Number((request.query as { limit?: string }).limit ?? 100)));
    return { items: (await core.store.shells.listSessions(p.id, limit)).map((s) => shellView(s, p.name, shells.isLive(s.id))) };
  });

  app.get('/api/v1/shells/:id', { schema: { tags, params: IdParams } }, async (request) => {
    const caller = await requireUser(core, request);
    const s = await load(request, caller);
    return shellView(s, await projectName(s.projectId), shells.isLive(s.id));
  });

  app.delete('/api/v1/shells/:id', { schema: { tags, params: IdParams } }, async (request) => {
    const caller = await requireUser(core, request);
    const s = await shells.closeByPerson(caller, (request.params as { id: string }).id);
    const now = (await core.store.shells.getSession(s.id)) ?? s;
    return shellView(now, await projectName(now.projectId), shells.isLive(now.id));
  });

  app.get('/api/v1/shells/:id/recording', { schema: { tags, params: IdParams, description: 'The recording, asciicast v2 (play it with asciinema or asciinema-player).' } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const s = await load(request, caller);
    reply.header('content-type', 'application/x-asciicast; charset=utf-8');
    reply.header('content-disposition', `attachment; filename="shell-${s.id}.cast"`);
    const credential = watchCredential(core, caller, { projectId: s.projectId, permission: 'view' });
    async function* pieces() {
      for await (const part of recordingParts(core, s.id)) {
        if (!(await credential.valid())) throw new Error('the credential of this download was revoked');
        yield part;
      }
    }
    const body = Readable.from(pieces(), { objectMode: false, highWaterMark: 1 });
    body.once('close', () => credential.stop());
    return reply.send(body);
  });

  app.get('/api/v1/projects/:project/shell-settings', { schema: { tags, params: ProjectParams } }, async (request) => {
    const { project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'view');
    return settingsView(await shellSettings(core, p.id));
  });

  app.put('/api/v1/projects/:project/shell-settings', { schema: { tags, params: ProjectParams, body: SettingsBody } }, async (request) => {
    const { caller, project: p } = await requireProjectCaller(core, request, (request.params as { project: string }).project, 'project.manage');
    return settingsView(await updateShellSettings(core, shellPerson(caller), p, request.body as { enabled?: boolean; idle_timeout_seconds?: number }));
  });
}
