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

    async function events(deviceId: string): Promise<StoredEvent[]> {
      const res = await fetch(`${server.httpUrl}/api/devices/${deviceId}/events`);
      return ((await res.json()) as { events: StoredEvent[] }).events;
    }

    it('records a QoS 1 message with version 1, ignores the same seq again, and dead-letters a malformed one', async () => {
      await pub('devices/probe-1/telemetry', '{"seq":1,"temperature":21.5}');
      const first = await events('probe-1');
      expect(first.map((e) => [e.version, e.id, e.data])).toEqual([
        [1, 'probe-1:1', { metrics: { temperature: 21.5 } }],
      ]);

      await pub('devices/probe-1/telemetry', '{"seq":1,"temperature":21.5}');
      expect(await events('probe-1')).toEqual(first);

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
  },
);
