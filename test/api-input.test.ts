import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import type { NewDeadLetter } from '../ingest/dead-letter-store.js';
import { createDeviceCredentials } from '../ingest/device-credentials.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { openReadSide } from '../processors/read-side.js';
import { createHttpServer } from '../query/http-server.js';

/** Bad input at the HTTP edge: each gets a clear 4xx in the API's one error shape, and nothing else happens. */

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const ID_RULE = 'a device id is 1-128 characters of A-Z a-z 0-9 _ . : -';
const open: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup() {
  const log = createMemoryEventLog();
  const readSide = await openReadSide(log, { dataDir: null, snapshotEvery: 100, logger: silentLogger() });
  const deadLetters = createMemoryDeadLetterStore();
  const credentials = createDeviceCredentials({ dataDir: null });
  const api = createHttpServer({
    log,
    deadLetters,
    metrics: createMetrics(),
    logger: silentLogger(),
    readModels: readSide.readModels,
    credentials,
    broker: { host: '127.0.0.1', port: 18830 },
  });
  open.push(log, readSide, credentials, { close: () => api.close() });
  await log.append([
    {
      id: 'a:1',
      deviceId: 'a',
      type: 'TelemetryRecorded',
      time: T0,
      receivedAt: T0,
      data: { metrics: { t: 20 } },
    },
  ]);
  await readSide.runner.waitFor(1);
  return { api, deadLetters };
}

type Api = Awaited<ReturnType<typeof setup>>['api'];

async function problems(api: Api, url: string): Promise<[number, unknown]> {
  const res = await api.inject({ url });
  return [res.statusCode, res.json<{ problems?: string[] }>().problems];
}

describe('time parameters', () => {
  it('answers 400 naming the parameter for a date or time of day that does not exist', async () => {
    const { api } = await setup();
    expect(await problems(api, '/api/devices/a/state?at=2026-02-30')).toEqual([
      400,
      ['at: "2026-02-30" does not exist: February 2026 has 28 days'],
    ]);
    expect(await problems(api, '/api/devices/a/events?from=2026-04-31T10:00Z')).toEqual([
      400,
      ['from: "2026-04-31T10:00Z" does not exist: April 2026 has 30 days'],
    ]);
    expect(await problems(api, '/api/devices/a/series/t?to=2026-11-25T25:00Z')).toEqual([
      400,
      ['to: "2026-11-25T25:00Z" does not exist: hour 25 (hours are 00-23)'],
    ]);
    expect(await problems(api, '/api/devices/a/state?at=2025-02-29T12:00Z')).toEqual([
      400,
      ['at: "2025-02-29T12:00Z" does not exist: February 2025 has 28 days'],
    ]);
  });

  it('answers 400 to an empty at, from or to instead of taking it as now or as absent', async () => {
    const { api } = await setup();
    const empty = 'empty; give a time or leave the parameter out';
    expect(await problems(api, '/api/devices/a/state?at=')).toEqual([400, [`at: ${empty}`]]);
    expect(await problems(api, '/api/devices/a/events?from=&to=')).toEqual([
      400,
      [`from: ${empty}`, `to: ${empty}`],
    ]);
    expect(await problems(api, '/api/devices/a/series/t?from=')).toEqual([400, [`from: ${empty}`]]);
  });

  it('still takes dates that exist: a leap day, and 24:00 as the end of the day', async () => {
    const { api } = await setup();
    const leap = await api.inject({ url: '/api/devices/a/state?at=2028-02-29T12:00Z' });
    expect([leap.statusCode, leap.json<{ at: string }>().at]).toEqual([200, '2028-02-29T12:00:00.000Z']);
    const endOfDay = await api.inject({ url: '/api/devices/a/state?at=2026-11-25T24:00Z' });
    expect([endOfDay.statusCode, endOfDay.json<{ at: string }>().at]).toEqual([
      200,
      '2026-11-26T00:00:00.000Z',
    ]);
    // Leaving the parameter out is still "now".
    expect((await api.inject({ url: '/api/devices/a/state' })).statusCode).toBe(200);
  });
});

describe('device filters', () => {
  it('answers 400 to a device filter that is not a device id, on the stream and on dead letters', async () => {
    const { api } = await setup();
    for (const url of [
      '/api/stream?device=a%00b',
      '/api/stream?device=',
      `/api/stream?device=${'x'.repeat(129)}`,
      '/api/dead-letters?device=a%2Fb',
    ]) {
      const res = await api.inject({ url });
      expect({ url, status: res.statusCode, body: res.json<unknown>() }).toEqual({
        url,
        status: 400,
        body: {
          error: 'Bad Request',
          code: 'ERR_QUERY_INVALID',
          message: `device: ${ID_RULE}`,
          problems: [`device: ${ID_RULE}`],
        },
      });
    }
  });

  it('opens the stream for a valid device filter', async () => {
    const { api } = await setup();
    const res = await api.inject({ url: '/api/stream?device=a', payloadAsStream: true });
    expect([res.statusCode, res.headers['content-type']]).toEqual([200, 'text/event-stream']);
    res.stream().destroy();
  });

  it('counts dead letters for the device asked for, and for the fleet without a filter', async () => {
    const { api, deadLetters } = await setup();
    const letter = (deviceId: string | undefined, reason: NewDeadLetter['reason']): NewDeadLetter => ({
      receivedAt: T0,
      clientId: deviceId ?? 'stray',
      topic: deviceId ? `devices/${deviceId}/telemetry` : 'elsewhere',
      ...(deviceId ? { deviceId } : {}),
      reason,
      detail: 'test',
      payloadBytes: 1,
      payload: 'x',
      payloadEncoding: 'utf8',
      truncated: false,
    });
    for (const l of [
      letter('x', 'invalid_json'),
      letter('x', 'invalid_json'),
      letter('x', 'no_metrics'),
      letter('y', 'invalid_json'),
      letter(undefined, 'unknown_topic'),
    ])
      await deadLetters.add(l);
    const page = (url: string) =>
      api
        .inject({ url })
        .then((r) => r.json<{ deadLetters: { deviceId?: string }[]; counts: Record<string, number> }>());
    const x = await page('/api/dead-letters?device=x');
    expect([x.deadLetters.map((l) => l.deviceId), x.counts]).toEqual([
      ['x', 'x', 'x'],
      { invalid_json: 2, no_metrics: 1 },
    ]);
    expect((await page('/api/dead-letters?device=nobody')).counts).toEqual({});
    expect((await page('/api/dead-letters')).counts).toEqual({
      invalid_json: 3,
      no_metrics: 1,
      unknown_topic: 1,
    });
  });
});

describe('URLs', () => {
  it('answers 414 "URI Too Long" to a 10 KB device id, without echoing it', async () => {
    const { api } = await setup();
    for (const url of [`/api/devices/${'a'.repeat(10_240)}/events`, `/api/devices/${'a'.repeat(257)}`]) {
      const res = await api.inject({ url });
      expect([res.statusCode, res.json()]).toEqual([
        414,
        {
          error: 'URI Too Long',
          code: 'ERR_URI_TOO_LONG',
          message: `a path segment is longer than 256 characters; ${ID_RULE}`,
        },
      ]);
    }
    // Up to the router's limit, an over-long id is an ordinary 400 from the route.
    expect(await problems(api, `/api/devices/${'a'.repeat(256)}`)).toEqual([400, [`id: ${ID_RULE}`]]);
  });

  it('answers 400 to a path that is not valid percent-encoding, without echoing it', async () => {
    const { api } = await setup();
    const res = await api.inject({ url: '/api/devices/%E0%A4%A/events' });
    expect([res.statusCode, res.json()]).toEqual([
      400,
      {
        error: 'Bad Request',
        code: 'ERR_QUERY_INVALID',
        message: 'path: a segment is not valid percent-encoding (write a literal % as %25)',
        problems: ['path: a segment is not valid percent-encoding (write a literal % as %25)'],
      },
    ]);
  });
});

describe('POST /api/devices/:id/credentials', () => {
  const post = (api: Api, id: string, headers: Record<string, string>, payload?: string) =>
    api.inject({ method: 'POST', url: `/api/devices/${id}/credentials`, headers, payload });

  it('answers 415 to a body that is not JSON, and issues nothing', async () => {
    const { api } = await setup();
    for (const [type, payload] of [
      ['text/plain', 'role=operator'],
      ['application/x-www-form-urlencoded', 'role=operator'],
      ['application/xml', '<role>operator</role>'],
    ] as const) {
      const res = await post(api, 'c-1', { 'content-type': type }, payload);
      expect([res.statusCode, res.json()]).toEqual([
        415,
        {
          error: 'Unsupported Media Type',
          code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
          message: `send the body as JSON with content-type: application/json (e.g. {"role":"operator"}), or no body; got content-type: ${type}`,
        },
      ]);
    }
    expect((await api.inject({ url: '/api/devices/c-1/credentials' })).statusCode).toBe(404);
  });

  it('takes a JSON body or none, and answers with the broker to connect to', async () => {
    const { api } = await setup();
    const json = await post(
      api,
      'c-2',
      { 'content-type': 'application/json; charset=utf-8' },
      '{"role":"operator"}',
    );
    expect(json.statusCode).toBe(201);
    const { secret, ...rest } = json.json<{ secret: string }>();
    expect([rest, secret.length]).toEqual([
      { deviceId: 'c-2', role: 'operator', mqtt: { host: '127.0.0.1', port: 18830 } },
      43,
    ]);
    const none = await post(api, 'c-3', {});
    expect([none.statusCode, none.json<{ role: string }>().role]).toEqual([201, 'device']);
    const notAnObject = await post(api, 'c-4', { 'content-type': 'application/json' }, '"operator"');
    expect([notAnObject.statusCode, notAnObject.json<{ problems: string[] }>().problems]).toEqual([
      400,
      ['body: must be a JSON object like {"role":"operator"}, or empty'],
    ]);
  });
});
