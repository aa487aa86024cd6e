/**
 * The dashboard's files (built into dist/dashboard/), served from the server itself: nothing is
 * loaded from anywhere else, which the Content-Security-Policy also enforces. Any other GET
 * outside /api/ gets index.html, so the page's own routes survive a reload.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

export const SECURITY_HEADERS: Record<string, string> = {
  // xterm.js themes itself with <style> elements: styles may be inline, scripts never.
  // 'wasm-unsafe-eval': the shell replay (asciinema-player) runs its terminal in WebAssembly; it allows no JS eval.
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

export function dashboardDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/server/routes → dist/dashboard
  const dir = path.resolve(here, '../../../dashboard');
  return fs.existsSync(path.join(dir, 'index.html')) ? dir : undefined;
}

export function registerDashboardRoutes(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(k)) reply.header(k, v);
    if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
  });
  const dir = dashboardDir();
  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    let urlPath: string;
    try {
      urlPath = decodeURIComponent(request.url.split('?')[0]);
    } catch {
      return reply.status(400).send({ error: 'The URL is malformed (a bad %-escape).', code: 'DC_BAD_REQUEST' });
    }
    if (urlPath.startsWith('/api/')) {
      return reply.status(404).send({ error: `No route GET ${urlPath}.`, code: 'DC_NOT_FOUND' });
    }
    if (!dir) return reply.status(404).send({ error: 'The dashboard is not built: run `npm run build`.', code: 'DC_NOT_FOUND' });
    const file = path.resolve(dir, '.' + path.posix.normalize(urlPath));
    const inside = file.startsWith(dir + path.sep);
    const target = inside && fs.existsSync(file) && fs.statSync(file).isFile() ? file : path.join(dir, 'index.html');
    const ext = path.extname(target);
    reply.header('content-type', TYPES[ext] ?? 'application/octet-stream');
    reply.header('cache-control', ext === '.html' ? 'no-cache' : 'public, max-age=300');
    return reply.send(fs.createReadStream(target));
  });
}
