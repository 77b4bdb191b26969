import type { IngestMessage } from '../../ingest/ingester.js';

/**
 * A seeded fleet's day, the same on every run: what the golden read-endpoint test (read-endpoints.golden.test.ts)
 * feeds through the real ingester with a fake clock. It has everything the read side must get right: readings
 * arriving late and out of order, exact resends, a QoS 2 retransmission, counter resets (a reboot), a clock ahead
 * and an unsynced clock, state reports with a device model, device events, presence by status and a repeated
 * status, rejected messages (one device sends nothing else), and, for retention, presence and duplicate records
 * stamped at receive time ahead of readings from hours before (a prefix cut by time stops at them).
 */

export const HOUR = 3_600_000;
export const MIN = 60_000;
/** Start of the readings' day. */
export const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
/** When ingest receives the first message; the clock moves one second per message. */
export const RECEIVED_FROM = T0 + 6 * HOUR;

/** A small deterministic generator (mulberry32), so the seeded run needs nothing outside the test. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const DEVICES = ['env-1', 'env-2', 'tracker-1', 'meter-1'] as const;
/** A device whose every message was rejected: it is in no read model, but it did send. */
export const GHOST = 'ghost-1';

const MODELS: Record<(typeof DEVICES)[number], string> = {
  'env-1': 'env-sensor',
  'env-2': 'env-sensor',
  'tracker-1': 'asset-tracker',
  'meter-1': 'power-meter',
};

function msg(
  deviceId: string,
  topic: string,
  body: unknown,
  extra: Partial<IngestMessage> = {},
): IngestMessage {
  return {
    clientId: deviceId,
    topic: `devices/${deviceId}/${topic}`,
    payload: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    ...extra,
  };
}

/** The messages, in arrival order. */
export function seededMessages(seed = 20261125): IngestMessage[] {
  const rnd = random(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  const out: IngestMessage[] = [];
  const perDevice = new Map<string, IngestMessage[]>();
  const sent = (deviceId: string) => perDevice.get(deviceId) ?? [];
  const push = (m: IngestMessage) => {
    out.push(m);
    const id = m.clientId;
    perDevice.set(id, [...sent(id), m]);
  };

  for (const deviceId of DEVICES) {
    push(msg(deviceId, 'status', 'online'));
    push(msg(deviceId, 'state', { ts: T0, seq: 1, state: { model: MODELS[deviceId], firmware: '1.0.0' } }));
  }
  // Six hours of readings every 10 minutes per device, interleaved; one in five arrives late, after the next.
  const seqs = new Map<string, number>(DEVICES.map((d) => [d, 1]));
  const held = new Map<string, IngestMessage>();
  for (let i = 0; i < 36; i++) {
    for (const deviceId of DEVICES) {
      const seq = (seqs.get(deviceId) ?? 0) + 1;
      seqs.set(deviceId, seq);
      const ts = T0 + i * 10 * MIN + pick(60) * 1000;
      const metrics: Record<string, number> =
        deviceId === 'tracker-1'
          ? { battery: 100 - i, speed: Math.round(rnd() * 800) / 10 }
          : deviceId === 'meter-1'
            ? { power: Math.round(rnd() * 30_000) / 10, voltage: 230 + pick(5) }
            : { temperature: Math.round((18 + rnd() * 8) * 100) / 100, humidity: 40 + pick(20) };
      const m = msg(deviceId, 'telemetry', { ts, seq, metrics });
      const late = held.get(deviceId);
      if (late) {
        push(m);
        push(late);
        held.delete(deviceId);
      } else if (pick(5) === 0) held.set(deviceId, m);
      else push(m);
      if (deviceId === 'tracker-1' && i % 12 === 5) {
        const s = (seqs.get(deviceId) ?? 0) + 1;
        seqs.set(deviceId, s);
        push(
          msg(deviceId, 'events/geofence', { ts: ts + 1000, seq: s, data: { zone: `z${i}`, entered: true } }),
        );
      }
    }
  }
  for (const m of held.values()) push(m);

  // Resends: the same bytes again (a lost PUBACK), for three earlier messages.
  for (const deviceId of ['env-1', 'meter-1', 'env-1'] as const) {
    const earlier = sent(deviceId).filter((m) => m.topic.endsWith('/telemetry'));
    const again = earlier[pick(earlier.length)];
    if (again) push({ ...again });
  }
  // A QoS 2 retransmission of a packet still waiting for PUBREL [MQTT-4.3.3-2].
  const lastEnv2 = sent('env-2').at(-1);
  if (lastEnv2) push({ ...lastEnv2, transport: { qos: 2, packetId: 7, dup: true, awaitingRelease: true } });

  // env-2 reboots: its counter starts at 1 again, with new content (a state report, then readings).
  push(msg('env-2', 'state', { ts: T0 + 5 * HOUR + 55 * MIN, seq: 1, state: { firmware: '1.1.0' } }));
  push(msg('env-2', 'telemetry', { ts: T0 + 5 * HOUR + 56 * MIN, seq: 2, temperature: 21.25, humidity: 50 }));
  push(msg('env-2', 'telemetry', { ts: T0 + 5 * HOUR + 57 * MIN, seq: 3, temperature: 21.5, humidity: 51 }));

  // Clocks: one a day ahead (kept at the receive time), one that never synced (1999).
  push(msg('meter-1', 'telemetry', { ts: RECEIVED_FROM + 24 * HOUR, seq: 90, power: 1234.5, voltage: 231 }));
  push(msg('tracker-1', 'telemetry', { ts: Date.UTC(1999, 0, 1), seq: 91, battery: 50, speed: 0 }));

  // A reading from the morning, arriving hours late.
  push(msg('env-1', 'telemetry', { ts: T0 + 15 * MIN, seq: 95, temperature: 5.5, humidity: 99 }));

  // Rejected: bad JSON, an unknown topic, a non-finite number, and a device that sends nothing else.
  push(msg('env-1', 'telemetry', '{"ts": 1, "temperature": '));
  push({ clientId: 'env-2', topic: 'devices/env-2/unknown', payload: Buffer.from('{}') });
  push(msg('meter-1', 'telemetry', '{"power": 1e999}'));
  push(msg(GHOST, 'telemetry', 'not json'));
  push(msg(GHOST, 'state', '[1, 2]'));

  // Presence: tracker-1 goes offline, says so twice (the second is a repeated status), meter-1 too.
  push(msg('tracker-1', 'status', 'offline'));
  push(msg('tracker-1', 'status', 'offline'));
  push(msg('meter-1', 'status', 'offline'));
  return out;
}

/** Arrives after retention ran: a reading from before the horizon (late) and one from now. */
export function lateMessages(): IngestMessage[] {
  return [
    msg('env-1', 'telemetry', { ts: T0 + 30 * MIN, seq: 96, temperature: 6.5, humidity: 98 }),
    msg('env-1', 'telemetry', { ts: T0 + 6 * HOUR + 5 * MIN, seq: 97, temperature: 22, humidity: 45 }),
    msg('meter-1', 'status', 'online'),
  ];
}

/** Every read endpoint, with the parameters a dashboard, the CLI and a user would pass. */
export function readRequests(): string[] {
  const iso = (t: number) => new Date(t).toISOString();
  const urls = [
    '/api/devices?limit=100',
    '/api/devices?limit=2',
    '/api/devices?limit=2&after=env-2',
    '/api/devices?online=true',
    '/api/devices?online=false',
    `/api/devices/${GHOST}`,
    `/api/devices/${GHOST}/accounting`,
    '/api/dead-letters',
    `/api/dead-letters?device=${GHOST}`,
    '/api/projections',
  ];
  for (const d of DEVICES) {
    urls.push(`/api/devices/${d}`, `/api/devices/${d}/accounting`);
    urls.push(`/api/devices/${d}/events?limit=1000`);
    urls.push(`/api/devices/${d}/events?from=${iso(T0 + 1 * HOUR)}&to=${iso(T0 + 2 * HOUR)}`);
    urls.push(
      `/api/devices/${d}/events?from=${iso(T0 + 4 * HOUR + 30 * MIN)}&limit=5&type=TelemetryRecorded`,
    );
    for (const at of [
      T0 - 1,
      T0 + 90 * MIN,
      T0 + 3 * HOUR - 1,
      T0 + 5 * HOUR,
      T0 + 5 * HOUR + 30 * MIN,
      T0 + 8 * HOUR,
    ])
      urls.push(`/api/devices/${d}/state?at=${at}`);
  }
  const range = `from=${iso(T0)}&to=${iso(T0 + 7 * HOUR)}`;
  for (const [d, metric] of [
    ['env-1', 'temperature'],
    ['env-2', 'humidity'],
    ['tracker-1', 'battery'],
    ['meter-1', 'power'],
  ] as const) {
    urls.push(`/api/devices/${d}/series/${metric}?${range}&every=10m&fn=max`);
    urls.push(`/api/devices/${d}/series/${metric}?${range}&every=1h&fn=mean`);
    urls.push(`/api/devices/${d}/series/${metric}?${range}&every=1h&fn=last`);
    urls.push(`/api/devices/${d}/series/${metric}?${range}&every=30s&fn=count`);
  }
  urls.push(
    `/api/devices/env-1/series/temperature?from=${iso(T0 + 5 * HOUR)}&to=${iso(T0 + 7 * HOUR)}&every=1m`,
  );
  urls.push('/api/devices/env-1/series/pressure');
  return urls;
}

const RANDOM_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Presence and duplicate records get random ids (they name no message of their own): replaced by their order of
 * first appearance, so the same run gives the same JSON.
 */
export function normalizeIds(value: unknown, seen = new Map<string, string>()): unknown {
  if (typeof value === 'string' && RANDOM_ID.test(value)) {
    let name = seen.get(value);
    if (name === undefined) seen.set(value, (name = `<random id ${seen.size + 1}>`));
    return name;
  }
  if (Array.isArray(value)) return value.map((v) => normalizeIds(v, seen));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeIds(v, seen)]));
  return value;
}
