/** REST: when the audit log's hash chain was last verified, and what was found (for the dashboard). */
import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/context.js';
import { lastVerification } from '../../core/auditChain.js';
import { AuditChainView, ErrorBody } from '../../shared/api.js';
import { requireUser } from '../userAuth.js';

export function registerAuditChainRoutes(app: FastifyInstance, core: Core): void {
  app.get(
    '/api/v1/audit/chain',
    {
      schema: {
        tags: ['audit'],
        description: 'The newest verification of the audit hash chain (run `djangocommand admin audit verify` on the server host, e.g. from cron).',
        response: { 200: AuditChainView, 401: ErrorBody },
      },
    },
    async (request): Promise<AuditChainView> => {
      await requireUser(core, request);
      const v = await lastVerification(core);
      return { last_verification: v && { at: new Date(v.at).toISOString(), ok: v.ok, events: v.events, head_seq: v.headSeq, problem: v.problem } };
    },
  );
}
