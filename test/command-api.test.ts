import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_LIMITS } from '../core/command-requests.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

/**
 * The command side over HTTP against a real server (SQLite log, Aedes): validation answers 4xx with the reason and
 * appends nothing; If-Match is exact; "as of" shows the desired document and commands of that moment; a rebuild
 * reproduces both read models exactly.
 */
let server: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  server = await startTestServer();
  // Known devices: each has sent something.
  const client = await mqtt.connectAsync(server.mqttUrl, { clientId: 'api-test-publisher' });
  for (const id of ['api-1', 'api-2', 'api-3', 'api-4'])
    await client.publishAsync(
      `devices/${id}/state`,
      JSON.stringify({ firmware: '1.0', reportIntervalS: 10 }),
      {
        qos: 1,
      },
    );
  await client.endAsync();
  await settle();
});
afterAll(() => server.close());

async function settle(): Promise<void> {
  await server.readSide?.runner.waitFor(await server.log.lastSeq());
}

async function call(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${server.httpUrl}${url}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

/** The answer, and that the log did not move. */
async function refused(method: string, url: string, body?: unknown, headers?: Record<string, string>) {
  const before = await server.log.lastSeq();
  const answer = await call(method, url, body, headers);
  await settle();
  expect(await server.log.lastSeq(), `${method} ${url} appended`).toBe(before);
  return [answer.status, answer.body.code, answer.body.message];
}

describe('desired state over HTTP', () => {
  it('applies a JSON merge patch, numbers the versions, sends the ETag and computes the delta', async () => {
    const first = await call('PUT', '/api/devices/api-1/desired', {
      reportIntervalS: 5,
      config: { mode: 'eco' },
    });
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBe('"1"');
    expect(first.body).toMatchObject({
      deviceId: 'api-1',
      version: 1,
      state: { reportIntervalS: 5, config: { mode: 'eco' } },
      reported: { firmware: '1.0', reportIntervalS: 10 },
      delta: { reportIntervalS: 5, config: { mode: 'eco' } },
      changed: true,
    });
    const second = await call(
      'PUT',
      '/api/devices/api-1/desired',
      '{"config":{"mode":null,"level":2},"reportIntervalS":10}',
      { 'content-type': 'application/merge-patch+json', 'if-match': '"1"' },
    );
    expect([second.status, second.body.version, second.body.state, second.body.delta]).toEqual([
      200,
      2,
      { reportIntervalS: 10, config: { level: 2 } },
      { config: { level: 2 } },
    ]);
    // A patch that changes nothing records nothing.
    const same = await refused('PUT', '/api/devices/api-1/desired', { reportIntervalS: 10 });
    expect(same[0]).toBe(200);
    const got = await call('GET', '/api/devices/api-1/desired');
    expect([got.headers.get('etag'), got.body.version]).toEqual(['"2"', 2]);
    const device = await call('GET', '/api/devices/api-1');
    expect(device.body.desired).toEqual({
      version: 2,
      state: { reportIntervalS: 10, config: { level: 2 } },
      delta: { config: { level: 2 } },
      updatedAt: got.body.updatedAt,
    });
  });

  it('answers 409 to a stale If-Match and appends nothing', async () => {
    await call('PUT', '/api/devices/api-2/desired', { a: 1 });
    expect(await refused('PUT', '/api/devices/api-2/desired', { a: 2 }, { 'if-match': '0' })).toEqual([
      409,
      'ERR_VERSION_CONFLICT',
      'the desired document of "api-2" is at version 1, not 0: read it again and resend the change with If-Match: 1',
    ]);
    expect(
      (await call('PUT', '/api/devices/api-2/desired', { a: 2 }, { 'if-match': '1' })).body.version,
    ).toBe(2);
    expect(
      (await call('PUT', '/api/devices/api-2/desired', { a: 3 }, { 'if-match': '*' })).body.version,
    ).toBe(3);
  });

  it('refuses bad input with the reason and appends nothing', async () => {
    const big = { blob: 'x'.repeat(COMMAND_LIMITS.documentBytes) };
    expect(await refused('PUT', '/api/devices/nobody/desired', { a: 1 })).toEqual([
      404,
      'ERR_NOT_FOUND',
      'unknown device "nobody": it has sent nothing and has no credential',
    ]);
    expect(await refused('PUT', '/api/devices/api-3/desired', [1, 2])).toEqual([
      400,
      'ERR_COMMAND_INVALID',
      'body: must be a JSON object, a merge patch of the desired document like {"reportIntervalS":10}',
    ]);
    expect(await refused('PUT', '/api/devices/api-3/desired', big)).toEqual([
      400,
      'ERR_COMMAND_INVALID',
      `the desired document would be ${JSON.stringify(big).length} bytes as JSON; the limit is ${COMMAND_LIMITS.documentBytes}`,
    ]);
    expect(await refused('PUT', '/api/devices/api-3/desired', { a: 1 }, { 'if-match': 'v1' })).toEqual([
      400,
      'ERR_COMMAND_INVALID',
      'If-Match: must be the desired version (the ETag, e.g. "3") or *, got "v1"',
    ]);
    expect(
      await refused('PUT', '/api/devices/api-3/desired', 'a=1', { 'content-type': 'text/plain' }),
    ).toEqual([
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'send the body as JSON with content-type: application/json or application/merge-patch+json; got content-type: text/plain',
    ]);
    expect(await refused('PUT', '/api/devices/api-3/desired', '{"a":')).toEqual([
      400,
      'ERR_COMMAND_INVALID',
      expect.stringMatching(/^body: /),
    ]);
    expect(
      (await refused('PUT', '/api/devices/api-3/desired', { blob: 'x'.repeat(70_000) })).slice(0, 2),
    ).toEqual([413, 'ERR_COMMAND_INVALID']);
  });
});

describe('commands over HTTP', () => {
  it('answers 202 pending with where to follow it, and lists it', async () => {
    const res = await call('POST', '/api/devices/api-3/commands', {
      name: 'ping',
      params: { n: 1 },
      timeout: '5m',
    });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    expect(res.headers.get('location')).toBe(`/api/devices/api-3/commands/${id}`);
    expect(res.body).toMatchObject({
      deviceId: 'api-3',
      name: 'ping',
      params: { n: 1 },
      status: 'pending',
      timeoutMs: 300_000,
    });
    expect(Date.parse(res.body.expiresAt as string) - Date.parse(res.body.issuedAt as string)).toBe(300_000);
    expect((await call('GET', `/api/devices/api-3/commands/${id}`)).body).toEqual(res.body);
    const list = await call('GET', '/api/devices/api-3/commands?status=pending,delivered');
    expect((list.body.commands as { id: string }[]).map((c) => c.id)).toEqual([id]);
    expect((await call('GET', '/api/devices/api-3/commands?status=succeeded')).body.commands).toEqual([]);
    expect((await call('GET', `/api/devices/api-4/commands/${id}`)).status).toBe(404);
  });

  it('refuses bad commands with every reason and appends nothing', async () => {
    expect(await refused('POST', '/api/devices/nobody/commands', { name: 'ping' })).toEqual([
      404,
      'ERR_NOT_FOUND',
      'unknown device "nobody": it has sent nothing and has no credential',
    ]);
    const bad = await call('POST', '/api/devices/api-3/commands', {
      name: 'a/b',
      params: [1],
      timeout: '10d',
      priority: 1,
    });
    expect([bad.status, bad.body.problems]).toEqual([
      400,
      [
        'body: unexpected "priority"; a command has name, params and timeout',
        'name: must be 1-64 characters of A-Z a-z 0-9 _ . - (it is the last level of the topic)',
        'params: must be a JSON object',
        'timeout: must be from 1s to 7d, got "10d"',
      ],
    ]);
    expect(await refused('POST', '/api/devices/api-3/commands', { name: 'ping', timeout: 30 })).toEqual([
      400,
      'ERR_COMMAND_INVALID',
      'timeout: must be a duration like "30s" or "5m" (from 1s to 7d)',
    ]);
    expect(
      await refused('POST', '/api/devices/api-3/commands', {
        name: 'ping',
        params: { b: 'x'.repeat(20_000) },
      }),
    ).toEqual([
      400,
      'ERR_COMMAND_INVALID',
      `params: 20008 bytes as JSON; the limit is ${COMMAND_LIMITS.documentBytes}`,
    ]);
    expect(await refused('GET', '/api/devices/api-3/commands?status=done')).toEqual([
      400,
      'ERR_QUERY_INVALID',
      'status: must be among pending, delivered, succeeded, failed, expired, got "done"',
    ]);
  });

  it(`answers 429 once a device has ${COMMAND_LIMITS.openPerDevice} unanswered commands`, async () => {
    for (let i = 0; i < COMMAND_LIMITS.openPerDevice; i++)
      expect(
        (await call('POST', '/api/devices/api-4/commands', { name: 'ping', timeout: '1h' })).status,
      ).toBe(202);
    expect(await refused('POST', '/api/devices/api-4/commands', { name: 'ping' })).toEqual([
      429,
      'ERR_TOO_MANY_OPEN_COMMANDS',
      `"api-4" has ${COMMAND_LIMITS.openPerDevice} unanswered commands (the limit is ${COMMAND_LIMITS.openPerDevice}); wait for answers or expiries`,
    ]);
  });
});

describe('as of, and a rebuild', () => {
  it('shows the desired document and commands as they were, and a rebuild reproduces both read models', async () => {
    const id = 'api-1';
    const before = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const v3 = await call('PUT', `/api/devices/${id}/desired`, { reportIntervalS: 1 });
    const issued = await call('POST', `/api/devices/${id}/commands`, { name: 'ping', timeout: '1s' });
    await waitFor(async () => {
      const c = await call('GET', `/api/devices/${id}/commands/${issued.body.id as string}`);
      return c.body.status === 'expired' ? c : undefined;
    }, 5_000);
    const after = Date.now();

    const at = (t: number) => call('GET', `/api/devices/${id}/state?at=${t}`);
    const old = await at(before);
    expect(old.body.desired).toMatchObject({
      version: 2,
      state: { reportIntervalS: 10, config: { level: 2 } },
    });
    expect(old.body.commands).toBeUndefined();
    const mid = await at(Date.parse(issued.body.issuedAt as string) + 500);
    expect(mid.body.desired).toMatchObject({
      version: 3,
      state: { reportIntervalS: 1, config: { level: 2 } },
    });
    expect((mid.body.commands as { status: string }[]).map((c) => c.status)).toEqual(['pending']);
    const late = await at(after);
    expect((late.body.commands as { status: string; completedAt: string }[])[0]).toMatchObject({
      status: 'expired',
      completedAt: issued.body.expiresAt,
    });
    expect(v3.body.version).toBe(3);

    const answers = async () => {
      const urls = ['api-1', 'api-2', 'api-3', 'api-4'].flatMap((d) => [
        `/api/devices/${d}/desired`,
        `/api/devices/${d}/commands?limit=1000`,
        `/api/devices/${d}/state?at=${before}`,
        `/api/devices/${d}/state?at=${after}`,
      ]);
      return Promise.all(urls.map(async (u) => [u, (await call('GET', u)).body]));
    };
    const built = await answers();
    // The two read models' rows are deleted first (on the stopped server's files; the server holds readmodels.db
    // exclusively while it runs), so only a rebuild that really folds the log again brings the answers back.
    await server.close();
    const db = new Database(path.join(server.dataDir, 'readmodels.db'));
    const deleted = ['desired_state', 'desired_changes', 'commands'].map(
      (table) => db.prepare(`DELETE FROM ${table}`).run().changes,
    );
    db.close();
    expect(
      deleted.every((n) => n > 0),
      `rows deleted: ${deleted.join(', ')}`,
    ).toBe(true);
    server = await startTestServer({ dataDir: server.dataDir });
    await settle();
    expect((await call('GET', `/api/devices/${id}/desired`)).body.version).toBe(0);
    // Each by the name the registry gives it (the same names `fleetlog rebuild --projection` takes).
    for (const name of ['desired-state', 'commands']) {
      const rebuilt = await call('POST', `/api/projections/rebuild?projection=${name}`);
      expect([rebuilt.status, rebuilt.body]).toEqual([202, { rebuilding: [name] }]);
    }
    await waitFor(async () => {
      const { projections } = (await call('GET', '/api/projections')).body as {
        projections: { name: string; state: string; position: number }[];
      };
      const head = await server.log.lastSeq();
      return projections.every((p) => p.state === 'running' && p.position === head) ? true : undefined;
    }, 10_000);
    expect(await answers()).toEqual(built);
  });
});
