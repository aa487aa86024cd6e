/** REST: the audit log, filtered and paged. */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Core } from '../../core/context.js';
import { requireProject, visibleFilter } from '../../core/access.js';
import { AuditEventView, ErrorBody, pageOf } from '../../shared/api.js';
import { auditView } from '../../shared/views.js';
import { requireUser, type Caller } from '../userAuth.js';
import { parseLimit, parseText, parseTime } from './query.js';

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

const ExportQuery = Type.Composite([Type.Omit(AuditQuery, ['limit', 'cursor']), Type.Object({ format: Type.Union([Type.Literal('csv'), Type.Literal('jsonl')]) })], { additionalProperties: false });
const CSV_COLUMNS = ['id', 'at', 'actor_type', 'actor', 'actor_id', 'address', 'action', 'outcome', 'project_id', 'execution_id', 'details'] as const;

/**
 * What a spreadsheet may run as a formula (OWASP, CSV injection): a cell whose first character,
 * after any leading whitespace or control characters a spreadsheet skips, is = + - @ (or their
 * full-width forms), or that starts with a tab or a line break.
 */
const FORMULA_START = /^[\s\u0000-\u001f\u007f\u00a0\u2000-\u200b\u3000\ufeff]*[=+\-@\uff1d\uff0b\uff0d\uff20]|^[\t\r\n]/;

/** A CSV field: quoted when it must be, and never read as a formula (prefixed with a quote). */
function csvField(value: unknown): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

export function registerAuditRoutes(app: FastifyInstance, core: Core): void {
  /** The query's filter, within the projects the caller may see (server-wide events: owners only). */
  const filterOf = async (caller: Caller, q: Record<string, string | undefined>) => ({
    projectId: q.project ? (await requireProject(core, caller, parseText(q.project, 'project')!, 'view')).id : undefined,
    projectIds: visibleFilter(caller),
    executionId: q.execution,
    action: parseText(q.action, 'action'),
    actorId: parseText(q.actor, 'actor'),
    actorType: q.actor_type,
    after: parseTime(q.since, 'since'),
    before: parseTime(q.until, 'until'),
  });

  app.get('/api/v1/audit/export', { schema: { tags: ['audit'], querystring: ExportQuery, description: 'Every matching event, newest first, as CSV or JSON lines.' } }, async (request, reply) => {
    const caller = await requireUser(core, request);
    const q = request.query as Record<string, string | undefined>;
    const filter = await filterOf(caller, q);
    const csv = q.format === 'csv';
    reply.header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    reply.header('content-disposition', `attachment; filename="djangocommand-audit.${csv ? 'csv' : 'jsonl'}"`);
    const store = core.store;
    async function* rows() {
      if (csv) yield CSV_COLUMNS.join(',') + '\r\n';
      let cursor: string | undefined;
      do {
        const page = await store.listAudit(filter, 500, cursor);
        for (const event of page.items.map(auditView)) {
          yield csv ? CSV_COLUMNS.map((c) => csvField(event[c])).join(',') + '\r\n' : JSON.stringify(event) + '\n';
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    }
    return reply.send(Readable.from(rows()));
  });

  app.get('/api/v1/audit', { schema: { tags: ['audit'], querystring: AuditQuery, response: { 200: pageOf(AuditEventView), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } } }, async (request) => {
    const caller = await requireUser(core, request);
    const q = request.query as Record<string, string | undefined>;
    const page = await core.store.listAudit(await filterOf(caller, q), parseLimit(q.limit), q.cursor);
    return { items: page.items.map(auditView), next_cursor: page.nextCursor };
  });
}
