import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { startTestServer } from './helpers/start-test-server.js';
import { hasCommand } from './helpers/has-command.js';

const run = promisify(execFile);
const HAS_MOSQUITTO_PUB = hasCommand('mosquitto_pub');
type Server = Awaited<ReturnType<typeof startTestServer>>;

describe.skipIf(!HAS_MOSQUITTO_PUB)(
  'a third-party client (mosquitto_pub) against fleetlog serve — needs mosquitto-clients: apt-get install mosquitto-clients (.ci/run installs it)',
  () => {
    let server: Server;
    let port: string;
    beforeAll(async () => {
      server = await startTestServer();
      port = String(server.broker.port);
    });
    afterAll(() => server.close());

    const pub = (topic: string, message: string) =>
      run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-t', topic, '-m', message], {
        timeout: 5000,
      });

    async function events(deviceId: string, type = 'TelemetryRecorded'): Promise<StoredEvent[]> {
      const res = await fetch(`${server.httpUrl}/api/devices/${deviceId}/events?type=${type}`);
      return ((await res.json()) as { events: StoredEvent[] }).events;
    }

    it('records a QoS 1 message with version 1, stores the same bytes again once, and dead-letters a malformed one', async () => {
      await pub('devices/probe-1/telemetry', '{"seq":1,"temperature":21.5}');
      const first = await events('probe-1');
      expect(first.map((e) => [e.version, e.deviceSeq, e.data])).toEqual([
        [1, 1, { metrics: { temperature: 21.5 } }],
      ]);

      await pub('devices/probe-1/telemetry', '{"seq":1,"temperature":21.5}');
      expect(await events('probe-1')).toEqual(first);
      expect((await events('probe-1', 'DuplicateReceived')).map((e) => e.data)).toEqual([
        { reason: 'resend', clientId: expect.any(String) as string, duplicateOf: first[0]?.id },
      ]);

      await pub('devices/probe-1/telemetry', 'not json at all');
      const res = await fetch(`${server.httpUrl}/api/dead-letters?reason=invalid_json`);
      const body = (await res.json()) as {
        deadLetters: { topic: string; payload: string; reason: string }[];
      };
      expect(body.deadLetters.map((d) => [d.reason, d.topic, d.payload])).toEqual([
        ['invalid_json', 'devices/probe-1/telemetry', 'not json at all'],
      ]);
      const health = await fetch(`${server.httpUrl}/healthz`);
      expect(health.status).toBe(200);
    });
    it('folds a hand-checked series with a late and a duplicate message into the aggregate, series and as-of state', async () => {
      const at = (hms: string) => `2026-11-25T10:${hms}Z`;
      const messages = [
        { seq: 1, ts: at('00:10'), temperature: 20 },
        { seq: 2, ts: at('00:40'), temperature: 22 },
        { seq: 3, ts: at('01:05'), temperature: 25 },
        { seq: 4, ts: at('01:50'), temperature: 23 },
        { seq: 5, ts: at('00:50'), temperature: 33 }, // late: belongs to 10:00, arrives after 10:01:50
        { seq: 3, ts: at('01:05'), temperature: 25 }, // seq 3 resent, the same bytes: stored once
      ];
      for (const m of messages) await pub('devices/therm-1/telemetry', JSON.stringify(m));
      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      expect(server.readSide?.runner.status().map((p) => p.lag)).toEqual([0, 0, 0, 0, 0]);

      const device = (await (await fetch(`${server.httpUrl}/api/devices/therm-1`)).json()) as {
        metrics: { temperature: unknown };
      };
      // 20, 22, 25, 23, 33: last by event time is 23 (10:01:50), not the late 33.
      expect(device.metrics.temperature).toEqual({
        last: 23,
        lastAt: at('01:50.000'),
        min: 20,
        max: 33,
        mean: 123 / 5,
        count: 5,
      });

      const series = (await (
        await fetch(
          `${server.httpUrl}/api/devices/therm-1/series/temperature?from=${at('00:00')}&to=${at('02:00')}&every=1m&fn=mean`,
        )
      ).json()) as { points: unknown[] };
      expect(series.points).toEqual([
        { time: at('00:00.000'), value: (20 + 22 + 33) / 3, count: 3 },
        { time: at('01:00.000'), value: (25 + 23) / 2, count: 2 },
      ]);

      const stateAt = async (t: string) => {
        const res = await fetch(`${server.httpUrl}/api/devices/therm-1/state?at=${at(t)}`);
        return (
          ((await res.json()) as { state: { metrics: { temperature: unknown } } | null }).state?.metrics
            .temperature ?? null
        );
      };
      expect(await stateAt('00:05')).toBeNull();
      expect(await stateAt('00:45')).toEqual({
        last: 22,
        lastAt: at('00:40.000'),
        min: 20,
        max: 22,
        mean: 21,
        count: 2,
      });
      expect(await stateAt('00:55')).toEqual({
        last: 33,
        lastAt: at('00:50.000'),
        min: 20,
        max: 33,
        mean: 25,
        count: 3,
      });
      expect(await stateAt('01:10')).toEqual({
        last: 25,
        lastAt: at('01:05.000'),
        min: 20,
        max: 33,
        mean: 25,
        count: 4,
      });
    });
  },
);
