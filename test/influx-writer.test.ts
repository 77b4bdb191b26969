import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InfluxDB, Point, setLogger } from '@influxdata/influxdb-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isFleetlogError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { createInfluxWriter } from '../processors/influx/influx-writer.js';
import { freePort } from './helpers/spawn-server.js';
import { waitFor } from './helpers/start-test-server.js';

/**
 * The writer's own contract (what counts as confirmed, what is retried where), checked over real HTTP against a
 * minimal write endpoint whose answers the test controls; the end-to-end behaviour runs against VictoriaMetrics in
 * influx-sink.victoria-metrics.test.ts.
 */
describe('influx writer', () => {
  let server: Server;
  let url: string;
  let answer: (body: string) => number;
  const requests: { url: string; headers: IncomingHttpHeaders; body: string; status: number }[] = [];

  beforeEach(async () => {
    requests.length = 0;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const status = answer(body);
        requests.push({ url: req.url ?? '', headers: req.headers, body, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 204 ? '' : JSON.stringify({ code: 'invalid', message: `status ${status}` }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const points = (names: string[]) =>
    names.map((n, i) =>
      new Point('telemetry')
        .tag('device_id', n)
        .floatField('v', i)
        .timestamp(1_000 + i),
    );

  it('confirms a batch with one request carrying the token, org, bucket and ms precision', async () => {
    answer = () => 204;
    const writer = createInfluxWriter({ url, token: 'tok', org: 'o', bucket: 'b', logger: silentLogger() });
    expect(await writer.write(points(['a', 'b', 'c']))).toEqual({ written: 3, rejected: 0 });
    expect(requests.map((r) => [r.url, r.headers.authorization, r.body])).toEqual([
      [
        '/api/v2/write?org=o&bucket=b&precision=ms',
        'Token tok',
        'telemetry,device_id=a v=0 1000\ntelemetry,device_id=b v=1 1001\ntelemetry,device_id=c v=2 1002',
      ],
    ]);
  });

  it('halves a batch the server refuses as data until only the bad points are left out', async () => {
    answer = (body) => (body.includes('poison') ? 422 : 204);
    const writer = createInfluxWriter({
      url,
      token: undefined,
      org: 'o',
      bucket: 'b',
      logger: silentLogger(),
    });
    const outcome = await writer.write(points(['a', 'b', 'poison1', 'c', 'd', 'poison2', 'e', 'f']));
    expect(outcome).toEqual({ written: 6, rejected: 2 });
    expect(requests.map((r) => r.status)).toEqual([422, 422, 204, 422, 422, 204, 422, 422, 204, 422, 204]);
    const accepted = requests.filter((r) => r.status === 204).flatMap((r) => r.body.split('\n'));
    expect(accepted.map((l) => /device_id=(\w+)/.exec(l)?.[1])).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(requests[0]?.headers.authorization).toBeUndefined();
  });

  it('fails a write the server does not confirm, once, with nothing left to retry in the background', async () => {
    answer = () => 503;
    // The client's own retry buffer would resend 5-10 s later (up to minutes for later attempts): with its timers
    // faked, nothing it schedules can hide behind a short wait.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const writer = createInfluxWriter({ url, token: 't', org: 'o', bucket: 'b', logger: silentLogger() });
      const err: unknown = await writer.write(points(['a', 'b'])).catch((e: unknown) => e);
      expect(isFleetlogError(err, 'ERR_SINK_WRITE_FAILED')).toBe(true);
      expect((err as Error).message).toBe('HTTP 503: {"code":"invalid","message":"status 503"}');
      // With maxRetries 0 the failure is the caller's to retry: nothing is left scheduled.
      expect(vi.getTimerCount()).toBe(0);
      await vi.advanceTimersByTimeAsync(600_000);
    } finally {
      vi.useRealTimers();
    }
    expect(requests.length).toBe(1);
  });

  it("needs its own confirmation: the client's close() resolves although a failed batch was never written", async () => {
    answer = () => 503;
    const said: string[] = [];
    const previous = setLogger({ error: (m) => said.push(m), warn: (m) => said.push(m) });
    try {
      const api = new InfluxDB({ url, token: 't' }).getWriteApi('o', 'b', 'ms', {
        flushInterval: 50,
        minRetryDelay: 60_000,
      });
      api.writePoints(points(['a']));
      await waitFor(() => (requests.length === 1 ? true : undefined), 5000);
      // The background flush failed and parked the line in the retry buffer; close() drops it and still resolves.
      await expect(api.close()).resolves.toBeUndefined();
    } finally {
      setLogger(previous);
    }
    expect(requests.map((r) => r.status)).toEqual([503]);
    expect(said).toEqual([
      'Write to InfluxDB failed (attempt: 1).',
      'Retry buffer closed with 1 items that were not written to InfluxDB!',
    ]);
    const writer = createInfluxWriter({ url, token: 't', org: 'o', bucket: 'b', logger: silentLogger() });
    await expect(writer.write(points(['a']))).rejects.toThrow('HTTP 503');
  });

  it('fails when nothing listens', async () => {
    const port = await freePort();
    const writer = createInfluxWriter({
      url: `http://127.0.0.1:${port}`,
      token: 't',
      org: 'o',
      bucket: 'b',
      logger: silentLogger(),
    });
    const err: unknown = await writer.write(points(['a'])).catch((e: unknown) => e);
    expect(isFleetlogError(err, 'ERR_SINK_WRITE_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/^ECONNREFUSED: /);
  });
});
