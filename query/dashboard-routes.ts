import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Only names the build writes (main.js, main.css, their maps): no slashes, so no way out of the folder. */
const ASSET_NAME = /^[A-Za-z0-9_-]+\.(js|css|map)$/;

/**
 * The page is fed device-reported strings; it only ever sets them as text, and this policy makes sure nothing
 * else runs even if that slips. uPlot sizes its elements through inline styles, hence 'unsafe-inline' for style.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Where `npm run build` writes the dashboard: dist/web. This module runs from dist/query when built and from
 * query/ under vitest, so both resolve to the same folder.
 */
export function defaultWebDir(): string {
  const root = path.resolve(import.meta.dirname, '..');
  return path.basename(root) === 'dist' ? path.join(root, 'web') : path.join(root, 'dist', 'web');
}

/**
 * GET / serves the dashboard (a single page; it routes with the URL hash), GET /assets/:name its bundle.
 * Files are read per request, so a rebuild shows on the next reload without a restart.
 */
export function registerDashboardRoutes(app: FastifyInstance, webDir = defaultWebDir()): void {
  app.get('/', async (_req, reply) => {
    const html = await readFile(path.join(webDir, 'index.html')).catch(() => undefined);
    if (!html) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`the dashboard is not built: run npm run build (looked in ${webDir})\n`);
    }
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .send(html);
  });

  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const { name } = req.params;
    const body = ASSET_NAME.test(name)
      ? await readFile(path.join(webDir, 'assets', name)).catch(() => undefined)
      : undefined;
    if (!body) {
      return reply
        .code(404)
        .send({ error: 'Not Found', code: 'ERR_NOT_FOUND', message: `no asset "${name}"` });
    }
    return reply
      .type(CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(body);
  });
}
