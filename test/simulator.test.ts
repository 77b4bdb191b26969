import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatJsonLine, formatPretty } from '../cli/commands/subscribe.js';
import { parseDuration } from '../core/duration.js';
import { isFleetlogError } from '../core/errors.js';
import { contentEventId } from '../core/event-id.js';
import { messageFingerprint } from '../simulator/message-fingerprint.js';
import { createSimulator, type SimulatorOptions } from '../simulator/simulator.js';
import { createPacer } from '../simulator/pacer.js';
import { planFleet } from '../simulator/plan-fleet.js';
import { verifyAgainstApi } from '../simulator/verify.js';

const DATA_TOPIC = /^devices\/([^/]+)\/(telemetry|state|events\/[^/]+)$/;
const STATUS_TOPIC = /^devices\/([^/]+)\/status$/;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

function listen(server: net.Server | http.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function close(server: net.Server | http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('simulator against an in-process Aedes broker', () => {
  let broker: Aedes;
  let server: net.Server;
  let url: string;
  /** What the broker saw during the current run. */
  let clientIds: string[];
  let dataSeqs: Map<string, number[]>;
  /** Per device, the event id of each data message, derived from its topic and bytes as ingest does. */
  let dataIds: Map<string, string[]>;
  let qos1Publishes: Map<string, number>;
  let firstTelemetry: Map<string, unknown>;
  let firstTopic: Map<string, string>;
  let statusPublished: Map<string, string>;
  /** Connections the broker saw close without a DISCONNECT packet (a power cut), per client id. */
  let abruptCloses: Map<string, number>;

  beforeAll(async () => {
    broker = await Aedes.createBroker();
    server = net.createServer(broker.handle);
    url = `mqtt://127.0.0.1:${await listen(server)}`;
    broker.on('client', (client) => clientIds.push(client.id));
    broker.on('clientDisconnect', (client) => {
      // Aedes marks a client that sent DISCONNECT; any other close is a dropped connection.
      if (!(client as unknown as { _disconnected?: boolean })._disconnected)
        abruptCloses.set(client.id, (abruptCloses.get(client.id) ?? 0) + 1);
    });
    broker.on('publish', (packet, client) => {
      if (client === null) return;
      const status = STATUS_TOPIC.exec(packet.topic);
      if (status?.[1] !== undefined) statusPublished.set(status[1], packet.payload.toString());
      const data = DATA_TOPIC.exec(packet.topic);
      const deviceId = data?.[1];
      if (deviceId === undefined) return;
      const body = JSON.parse(packet.payload.toString()) as { seq: number; metrics?: unknown };
      dataSeqs.set(deviceId, [...(dataSeqs.get(deviceId) ?? []), body.seq]);
      const id = contentEventId(deviceId, body.seq, packet.topic, packet.payload);
      dataIds.set(deviceId, [...(dataIds.get(deviceId) ?? []), id]);
      if (packet.qos === 1) qos1Publishes.set(deviceId, (qos1Publishes.get(deviceId) ?? 0) + 1);
      if (!firstTopic.has(deviceId)) firstTopic.set(deviceId, packet.topic);
      if (body.metrics !== undefined && !firstTelemetry.has(deviceId))
        firstTelemetry.set(deviceId, body.metrics);
    });
  });

  beforeEach(() => {
    clientIds = [];
    dataSeqs = new Map();
    dataIds = new Map();
    qos1Publishes = new Map();
    firstTelemetry = new Map();
    firstTopic = new Map();
    statusPublished = new Map();
    abruptCloses = new Map();
  });

  afterAll(async () => {
    await close(server);
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });

  /** The retained status of every device, as a fresh subscriber sees it. */
  async function retainedStatus(expected: number): Promise<Map<string, string>> {
    const seen = new Map<string, string>();
    const client = await connectAsync(url, {
      protocolVersion: 4,
      clientId: 'status-check',
      reconnectPeriod: 0,
    });
    client.on('message', (topic, payload, packet) => {
      const id = STATUS_TOPIC.exec(topic)?.[1];
      if (id !== undefined && packet.retain) seen.set(id, payload.toString());
    });
    await client.subscribeAsync('devices/+/status', { qos: 1 });
    await vi.waitFor(() => expect(seen.size).toBe(expected), { timeout: 3000, interval: 20 });
    await client.endAsync();
    return seen;
  }

  const options = (over: Partial<SimulatorOptions> = {}): SimulatorOptions => ({
    url,
    devices: 5,
    rate: 200,
    durationMs: 1500,
    qos: 1,
    seed: 42,
    ...over,
  });

  it('paces 200 msg/s over 5 devices for 1.5 s; the broker gets exactly the acked seqs 1..60 per device', async () => {
    const sim = createSimulator(options());
    const ids = ['sim-env-0001', 'sim-tracker-0002', 'sim-meter-0003', 'sim-env-0004', 'sim-tracker-0005'];
    expect(sim.deviceIds).toEqual(ids);
    await sim.start();
    expect([...clientIds].sort()).toEqual([...ids].sort());

    const online = await retainedStatus(5);
    expect(Object.fromEntries(online)).toEqual(Object.fromEntries(ids.map((id) => [id, 'online'])));

    await sim.finished;
    const summary = await sim.stop();
    expect(summary).toEqual({
      sent: 300,
      acked: 300,
      errors: 0,
      lost: 0,
      reboots: 0,
      unacked: 0,
      skipped: 0,
      durationMs: 1500,
      devices: 5,
    });

    // Aedes emits 'publish' after it has sent the PUBACK, so the last few can trail stop() slightly.
    await vi.waitFor(() => expect([...qos1Publishes.values()].reduce((a, b) => a + b, 0)).toBe(300), {
      timeout: 2000,
      interval: 20,
    });
    for (const id of ids) {
      expect(qos1Publishes.get(id)).toBe(sim.acked[id]?.length);
      expect(dataSeqs.get(id)).toEqual(range(60));
      expect((sim.acked[id] ?? []).map((m) => m.seq).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(range(60));
      // What verify will look for is exactly what ingest derives from the bytes the broker received.
      expect(new Set((sim.acked[id] ?? []).map((m) => m.id))).toEqual(new Set(dataIds.get(id)));
      // The first message after connecting is a state report.
      expect(firstTopic.get(id)).toBe(`devices/${id}/state`);
    }

    await vi.waitFor(() => expect(statusPublished.size).toBe(5), { timeout: 2000, interval: 20 });
    const offline = await retainedStatus(5);
    expect(Object.fromEntries(offline)).toEqual(Object.fromEntries(ids.map((id) => [id, 'offline'])));
  });

  it('reboots each device with --reboot-every: a new connection each time, and the counter back at 1', async () => {
    const sim = createSimulator(options({ durationMs: 2500, rebootEveryMs: 1000 }));
    await sim.start();
    await sim.finished;
    const summary = await sim.stop();
    const ids = sim.deviceIds;
    // Every reboot drops the connection without DISCONNECT (the clean stop at the end sends one).
    await vi.waitFor(
      () => expect([...abruptCloses.values()].reduce((a, b) => a + b, 0)).toBe(summary.reboots),
      { timeout: 2000, interval: 20 },
    );
    const connections = ids.map((id) => clientIds.filter((c) => c === id).length);
    for (const [i, id] of ids.entries()) {
      expect(connections[i]).toBeGreaterThanOrEqual(3); // 2500 ms at one reboot per 1000 ms, first within 1000
      const seqs = dataSeqs.get(id) ?? [];
      // The counter went back to 1 once per reboot that came back online before the end.
      const restarts = seqs.filter((s, k) => k > 0 && s === 1).length;
      expect(restarts).toBe((connections[i] ?? 0) - 1);
    }
    expect(summary.sent).toBe(summary.acked + summary.lost + summary.errors + summary.unacked);
    expect(summary.errors).toBe(0);
    // Seqs repeat across boots, ids never do: each acknowledged message is its own event.
    const acked = ids.flatMap((id) => (sim.acked[id] ?? []).map((m) => m.id));
    expect(new Set(acked).size).toBe(summary.acked);
  });

  it('reproduces the same payload values from the same seed, and different ones from another seed', async () => {
    const firstTelemetryOf = async (seed: number) => {
      firstTelemetry.clear();
      const sim = createSimulator(options({ durationMs: 500, seed }));
      await sim.start();
      await sim.finished;
      expect((await sim.stop()).acked).toBe(100);
      await vi.waitFor(() => expect(firstTelemetry.size).toBe(5), { timeout: 2000, interval: 20 });
      return Object.fromEntries(firstTelemetry);
    };
    const first = await firstTelemetryOf(42);
    const second = await firstTelemetryOf(42);
    const other = await firstTelemetryOf(43);
    expect(second).toEqual(first);
    expect(Object.keys(other).sort()).toEqual(Object.keys(first).sort());
    for (const [id, metrics] of Object.entries(other)) expect(metrics).not.toEqual(first[id]);
  });

  it('rejects start() with ERR_BROKER_UNREACHABLE naming the URL when nothing listens', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await close(probe);
    const deadUrl = `mqtt://127.0.0.1:${port}`;
    const sim = createSimulator(options({ url: deadUrl }));
    const err: unknown = await sim.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isFleetlogError(err, 'ERR_BROKER_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toBe(
      `cannot connect to ${deadUrl}: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(await sim.stop()).toEqual({
      sent: 0,
      acked: 0,
      errors: 0,
      lost: 0,
      reboots: 0,
      unacked: 0,
      skipped: 0,
      durationMs: 0,
      devices: 5,
    });
  });
});

describe('fleet plan and pacing', () => {
  it('deals profiles by weight, interleaved, with ids numbered across the fleet', () => {
    const plan = planFleet({
      devices: 6,
      seed: 1,
      idPrefix: 'lab',
      profiles: { env: 2, meter: 1, tracker: 0 },
    });
    expect(plan.map((d) => d.deviceId)).toEqual([
      'lab-env-0001',
      'lab-meter-0002',
      'lab-env-0003',
      'lab-env-0004',
      'lab-meter-0005',
      'lab-env-0006',
    ]);
    expect(new Set(plan.map((d) => d.seed)).size).toBe(6);
  });

  it('schedules floor(rate × elapsed) messages, stops at the duration, and drops what a stall would burst', () => {
    const pacer = createPacer(200, 1500, 1000);
    expect([0, 4, 5, 20, 1000, 1499, 1500, 9000].map((t) => pacer.step(t))).toEqual([
      { send: 0, dropped: 0 },
      { send: 0, dropped: 0 },
      { send: 1, dropped: 0 },
      { send: 3, dropped: 0 },
      { send: 196, dropped: 0 },
      { send: 99, dropped: 0 },
      { send: 1, dropped: 0 },
      { send: 0, dropped: 0 },
    ]);
    const stalled = createPacer(100, undefined, 1000);
    expect(stalled.step(3000)).toEqual({ send: 100, dropped: 200 });
    expect(stalled.step(3010)).toEqual({ send: 1, dropped: 0 });
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    [' 2d ', 172_800_000],
    ['0s', 0],
  ])('%s is %d ms', (raw, ms) => {
    expect(parseDuration(raw)).toBe(ms);
  });

  it.each([
    ['60', 'must be a duration like 500ms, 30s, 5m or 1h (add a unit), got "60"'],
    ['5x', 'must be a duration like 500ms, 30s, 5m or 1h, got "5x"'],
    ['-1s', 'must be a duration like 500ms, 30s, 5m or 1h, got "-1s"'],
    ['', 'must be a duration like 500ms, 30s, 5m or 1h, got ""'],
    ['1h 30m', 'must be a duration like 500ms, 30s, 5m or 1h, got "1h 30m"'],
  ])('refuses %j', (raw, error) => {
    expect(parseDuration(raw)).toEqual({ error });
  });
});

describe('verifyAgainstApi', () => {
  const TYPES = 'TelemetryRecorded,StateReported,DeviceEventReported';
  const T = 1_795_600_800_000;
  const data = (n: number) => ({ metrics: { t: n } });
  /** The message `n` of a device as sent: id and content fingerprint. */
  const sent = (device: string, n: number) => ({
    id: `${device}:${n}:digest${n}`,
    seq: n,
    fingerprint: messageFingerprint('TelemetryRecorded', T + n, data(n)),
  });
  /** The event the log holds for message `n`; `value` other than n is an altered copy. */
  const stored = (device: string, n: number, value = n, deviceTime?: number) => ({
    id: `${device}:${n}:digest${n}`,
    type: 'TelemetryRecorded',
    time: deviceTime === undefined ? T + n : T + 999_999,
    ...(deviceTime === undefined ? {} : { deviceTime }),
    data: data(value),
  });
  /** Per device, pages of events; a page's cursor is `p{index}`. */
  const LOG: Record<string, object[][]> = {
    'dev-a': [
      [stored('dev-a', 1), stored('dev-a', 2)],
      [stored('dev-a', 2), stored('dev-a', 4, 40)],
      [stored('dev-a', 5, 5, T + 5)],
    ],
    // An earlier run's events, same seqs, other content: they must satisfy nothing.
    'dev-b': [[stored('dev-b', 1), { ...stored('dev-b', 2), id: 'dev-b:2:earlier-run' }]],
  };
  const requests: string[] = [];
  let api: http.Server;
  let apiUrl: string;

  beforeAll(async () => {
    api = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      requests.push(`${u.pathname}?${u.searchParams.toString()}`);
      const pages = LOG[decodeURIComponent(u.pathname.split('/')[3] ?? '')];
      if (
        pages === undefined ||
        u.searchParams.get('type') !== TYPES ||
        u.searchParams.get('limit') !== '1000'
      ) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
        return;
      }
      const index = Number((u.searchParams.get('after') ?? 'p0').slice(1));
      const events = pages[index] ?? [];
      const next = index + 1 < pages.length ? `p${index + 1}` : null;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ deviceId: 'x', events, next }));
    });
    apiUrl = `http://127.0.0.1:${await listen(api)}`;
  });

  afterAll(() => close(api));

  it('pages through each device and reports missing, duplicated and altered messages exactly', async () => {
    const report = await verifyAgainstApi({
      apiUrl,
      acked: {
        'dev-a': [1, 2, 3, 4, 5].map((n) => sent('dev-a', n)),
        'dev-b': [sent('dev-b', 2), sent('dev-b', 1)],
        'dev-c': [sent('dev-c', 1), sent('dev-c', 2)],
      },
      concurrency: 1,
    });
    expect(report).toEqual({
      devices: [
        {
          deviceId: 'dev-a',
          checked: 5,
          missing: [sent('dev-a', 3)],
          duplicated: ['dev-a:2:digest2'],
          // 4 holds another value; 5 was clock-corrected by the server and still matches by its deviceTime.
          altered: ['dev-a:4:digest4'],
          eventsRead: 5,
        },
        {
          deviceId: 'dev-b',
          checked: 2,
          missing: [sent('dev-b', 2)],
          duplicated: [],
          altered: [],
          eventsRead: 2,
        },
        {
          deviceId: 'dev-c',
          checked: 2,
          missing: [sent('dev-c', 1), sent('dev-c', 2)],
          duplicated: [],
          altered: [],
          eventsRead: 0,
        },
      ],
      checked: 9,
      missing: 4,
      duplicated: 1,
      altered: 1,
    });
    const q = `limit=1000&type=${encodeURIComponent(TYPES)}`;
    expect(requests).toEqual([
      `/api/devices/dev-a/events?${q}`,
      `/api/devices/dev-a/events?${q}&after=p1`,
      `/api/devices/dev-a/events?${q}&after=p2`,
      `/api/devices/dev-b/events?${q}`,
      `/api/devices/dev-c/events?${q}`,
    ]);
  });
});

describe('subscribe output', () => {
  const at = new Date(2026, 10, 25, 9, 5, 7, 42);

  it('prints short JSON on one line, long JSON indented, text as is, binary as hex', () => {
    const packet = { qos: 1 as const, retain: false };
    expect(
      formatPretty(at, 'devices/a/telemetry', Buffer.from('{"seq":1, "metrics":{"t":21.5}}'), packet),
    ).toBe('09:05:07.042  devices/a/telemetry  {"seq":1,"metrics":{"t":21.5}}\n');
    const long = {
      seq: 2,
      state: { firmware: '2.4.0', model: 'ENV-100', config: { reportIntervalS: 30, name: 'x'.repeat(40) } },
    };
    expect(formatPretty(at, 'devices/a/state', Buffer.from(JSON.stringify(long)), packet)).toBe(
      `09:05:07.042  devices/a/state\n  ${JSON.stringify(long, null, 2).split('\n').join('\n  ')}\n`,
    );
    expect(formatPretty(at, 'devices/a/status', Buffer.from('online'), { retain: true })).toBe(
      '09:05:07.042  devices/a/status  (retained)  online\n',
    );
    expect(formatPretty(at, 'raw', Buffer.from([0x00, 0xff, 0x10]), packet)).toBe(
      '09:05:07.042  raw  <binary, 3 bytes> 00 ff 10\n',
    );
  });

  it('--json prints one object per line with the parsed payload', () => {
    expect(formatJsonLine(at, 't', Buffer.from('{"a":1}'), { qos: 0, retain: true })).toBe(
      `{"time":"${at.toISOString()}","topic":"t","payload":{"a":1},"qos":0,"retain":true}\n`,
    );
    expect(formatJsonLine(at, 't', Buffer.from('offline'), { qos: 1, retain: false })).toBe(
      `{"time":"${at.toISOString()}","topic":"t","payload":"offline","qos":1,"retain":false}\n`,
    );
    expect(formatJsonLine(at, 't', Buffer.from([0xc3, 0x28]), { qos: 0, retain: false })).toBe(
      `{"time":"${at.toISOString()}","topic":"t","payload":"c328","encoding":"hex","qos":0,"retain":false}\n`,
    );
  });
});
