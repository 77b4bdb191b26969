import { execFile } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI } from './helpers/spawn-server.js';
import { startTestServer } from './helpers/start-test-server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const TOKEN = 'test-token-5f1c';

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The token must come from the setting, not from whatever the test runner's environment holds.
    const env = { ...process.env };
    delete env.FLEETLOG_API_TOKEN;
    execFile(process.execPath, [CLI, ...args], { env, timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the API token (FLEETLOG_API_TOKEN)', () => {
  it('answers 401 with a reason without a token or with a wrong one, and 200 with the right one', async () => {
    server = await startTestServer({ apiToken: TOKEN });
    const url = `${server.httpUrl}/api/devices`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="fleetlog"');
    expect(await none.json()).toEqual({
      error: 'Unauthorized',
      code: 'ERR_UNAUTHORIZED',
      message:
        'this API needs a token: send "Authorization: Bearer <token>" (the CLI sends FLEETLOG_API_TOKEN), or log in at /login',
    });
    const wrong = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}x` } });
    expect([wrong.status, ((await wrong.json()) as { message: string }).message]).toEqual([
      401,
      'the bearer token is wrong: use the value of FLEETLOG_API_TOKEN',
    ]);
    const basic = await fetch(url, { headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect([ok.status, await ok.json()]).toEqual([200, { devices: [], next: null }]);
  });

  it('keeps /healthz open for probes and puts /metrics and the event stream behind the token', async () => {
    server = await startTestServer({ apiToken: TOKEN });
    expect((await fetch(`${server.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.httpUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.httpUrl}/api/stream`)).status).toBe(401);
    // Unknown routes need the token too, so a caller without one learns nothing about what exists.
    expect((await fetch(`${server.httpUrl}/no-such-route`)).status).toBe(401);
    expect((await fetch(`${server.httpUrl}/assets/main.js`)).status).toBe(200);
    const metrics = await fetch(`${server.httpUrl}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('fleetlog_mqtt_auth_refusals_total');
  });

  it('lets the dashboard in through /login: an HttpOnly session cookie that works for GET only', async () => {
    server = await startTestServer({ apiToken: TOKEN });
    const dashboard = await fetch(`${server.httpUrl}/`, { redirect: 'manual' });
    expect([dashboard.status, dashboard.headers.get('location')]).toEqual([303, '/login']);
    const form = await fetch(`${server.httpUrl}/login`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form method="post" action="/login">');

    const wrong = await fetch(`${server.httpUrl}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'nope' }),
      redirect: 'manual',
    });
    expect([wrong.status, wrong.headers.get('set-cookie')]).toEqual([401, null]);

    const login = await fetch(`${server.httpUrl}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: TOKEN }),
      redirect: 'manual',
    });
    expect([login.status, login.headers.get('location')]).toEqual([303, '/']);
    const setCookie = login.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^fleetlog_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    // The cookie is derived from the token, not the token itself.
    expect(setCookie).not.toContain(TOKEN);
    const cookie = setCookie.split(';')[0] ?? '';

    expect((await fetch(`${server.httpUrl}/api/devices`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${server.httpUrl}/`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);
    const post = await fetch(`${server.httpUrl}/api/devices/x-1/credentials`, {
      method: 'POST',
      headers: { cookie },
    });
    expect(post.status).toBe(401);
  });

  it("takes the session cookie for the dashboard's own writes only from its own origin, with a JSON body", async () => {
    server = await startTestServer({ apiToken: TOKEN });
    const base = server.httpUrl;
    const bearer = { authorization: `Bearer ${TOKEN}` };
    // A known device.
    await fetch(`${base}/api/devices/tok-1/credentials`, { method: 'POST', headers: bearer });
    const login = await fetch(`${base}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: TOKEN }),
      redirect: 'manual',
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const origin = new URL(base).origin;
    const put = (headers: Record<string, string>) =>
      fetch(`${base}/api/devices/tok-1/desired`, { method: 'PUT', headers, body: '{"a":1}' }).then(
        (r) => r.status,
      );
    const json = { 'content-type': 'application/json' };
    expect(await put({ cookie, ...json, origin })).toBe(200);
    expect(await put({ cookie, ...json })).toBe(401);
    expect(await put({ cookie, ...json, origin: 'http://evil.example' })).toBe(401);
    expect(await put({ cookie, 'content-type': 'text/plain', origin })).toBe(401);
    const command = await fetch(`${base}/api/devices/tok-1/commands`, {
      method: 'POST',
      headers: { cookie, ...json, origin },
      body: '{"name":"ping"}',
    });
    expect(command.status).toBe(202);
    // Nothing else takes the cookie for a write.
    const credential = await fetch(`${base}/api/devices/tok-2/credentials`, {
      method: 'POST',
      headers: { cookie, ...json, origin },
      body: '{}',
    });
    expect(credential.status).toBe(401);
  });

  it('serves the API without a token only on 127.0.0.1, even with --host 0.0.0.0, and says so', async () => {
    server = await startTestServer({ host: '0.0.0.0' });
    expect(server.httpAddress.address).toBe('127.0.0.1');
    expect(server.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.securityNotes).toEqual([
      'MQTT auth is off: any client may publish as any device (--auth required turns it on)',
      'HTTP API bound to 127.0.0.1 only: set --api-token (FLEETLOG_API_TOKEN) to serve it on 0.0.0.0',
    ]);
    await server.close();
    server = await startTestServer({ host: '0.0.0.0', apiToken: TOKEN, auth: 'required' });
    expect(server.httpAddress.address).toBe('0.0.0.0');
    expect(server.securityNotes).toEqual([]);
  });

  it('the CLI query commands send the token from --api-token and explain a 401', async () => {
    server = await startTestServer({ apiToken: TOKEN });
    const ok = await cli('devices', '--api', server.httpUrl, '--api-token', TOKEN);
    expect([ok.code, ok.stdout.trim()]).toEqual([0, 'device  status  last seen  events  last values']);
    const refused = await cli('devices', '--api', server.httpUrl);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'The server needs its API token: pass --api-token or set FLEETLOG_API_TOKEN.',
    );
  });
});
