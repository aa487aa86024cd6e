/** Health and the OpenAPI document. */
import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/context.js';
import { VERSION } from '../../version.js';

export function registerMetaRoutes(app: FastifyInstance, core: Core): void {
  app.get('/api/v1/health', { schema: { tags: ['meta'], security: [] } }, async () => {
    await core.store.countUsers();
    return { ok: true, version: VERSION, database: core.store.dialect };
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
