import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { defaultWebDir, registerDashboardRoutes } from '../query/dashboard-routes.js';
import { sourceFor } from '../processors/telemetry-series/queries.js';
import { CHART_RANGES, findRange, seriesWindow } from '../web/series-plan.js';

function builtDashboard(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-web-'));
  mkdirSync(path.join(dir, 'assets'));
  writeFileSync(path.join(dir, 'index.html'), '<div id="app"></div>');
  writeFileSync(path.join(dir, 'assets', 'main.js'), 'console.log(1);');
  writeFileSync(path.join(dir, 'secret.js'), 'outside assets');
  return dir;
}

describe('dashboard routes', () => {
  it('serves the page at / with a policy that allows only its own scripts', async () => {
    const app = Fastify();
    registerDashboardRoutes(app, builtDashboard());
    const res = await app.inject({ url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    expect(res.body).toBe('<div id="app"></div>');
  });

  it('serves built assets with their type, and nothing outside the assets folder', async () => {
    const app = Fastify();
    registerDashboardRoutes(app, builtDashboard());
    const js = await app.inject({ url: '/assets/main.js' });
    expect([js.statusCode, js.headers['content-type'], js.body]).toEqual([
      200,
      'text/javascript; charset=utf-8',
      'console.log(1);',
    ]);
    for (const url of ['/assets/..%2Fsecret.js', '/assets/missing.js', '/assets/index.html']) {
      const res = await app.inject({ url });
      expect([url, res.statusCode]).toEqual([url, 404]);
    }
  });

  it('answers 503 with the fix when the dashboard was not built', async () => {
    const dir = path.join(tmpdir(), 'fleetlog-no-such-web-dir');
    const app = Fastify();
    registerDashboardRoutes(app, dir);
    const res = await app.inject({ url: '/' });
    expect([res.statusCode, res.body]).toEqual([
      503,
      `the dashboard is not built: run npm run build (looked in ${dir})\n`,
    ]);
  });

  it('finds dist/web from the source tree as from the build', () => {
    expect(defaultWebDir()).toBe(path.resolve(import.meta.dirname, '../dist/web'));
  });
});

describe('dashboard chart ranges', () => {
  it('ask for raw points up to an hour and for rollups beyond, at most 300 windows each', () => {
    expect(CHART_RANGES.map((r) => [r.key, sourceFor(r.everyMs), r.spanMs / r.everyMs])).toEqual([
      ['5m', 'raw', 300],
      ['15m', 'raw', 180],
      ['1h', 'raw', 120],
      ['6h', '1m', 72],
      ['24h', '1m', 96],
      ['7d', '1h', 168],
      ['30d', '1h', 120],
    ]);
  });

  it('start on a window boundary and end now', () => {
    const now = Date.parse('2026-11-25T10:07:41.250Z');
    expect(seriesWindow(findRange('1h'), now)).toEqual({
      from: Date.parse('2026-11-25T09:07:30.000Z'),
      to: now,
      every: '30s',
    });
    expect(seriesWindow(findRange('6h'), now).from).toBe(Date.parse('2026-11-25T04:05:00.000Z'));
  });
});
