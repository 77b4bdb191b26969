import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMessageGenerator, type SimulatedMessage } from '../simulator/message-generator.js';
import { planFleet } from '../simulator/plan-fleet.js';
import { hasCommand } from './helpers/has-command.js';
import { startNatsServer, type NatsServer } from './helpers/start-nats-server.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';
import { kill9, spawnServe } from './helpers/spawn-server.js';
import { spawnProcess } from './helpers/spawn-process.js';

const available = hasCommand('nats-server');
const SKIP = 'needs nats-server: apt-get install nats-server (.ci/run installs it)';

/** The simulated clock: every message's `ts` is derived from it, never from the wall clock. */
const T0 = Date.UTC(2026, 10, 25, 8, 0, 0);
const INTERVAL_MS = 15_000;
const PER_DEVICE = 40;

interface Outgoing {
  topic: string;
  payload: string;
}

/**
 * A seeded simulator run, fixed clock: 6 devices (env, tracker, meter) × 40 messages, one every 15 s of
 * simulated time, interleaved across devices. Every 7th message of a device arrives 3 messages late (its
 * `ts` is older than what came before: out-of-order data), every 10th is sent a second time at the end
 * (a resend: same id, must be one event), and 3 malformed messages are dead-lettered.
 */
function seededRun(): { messages: Outgoing[]; events: number; late: number; resent: number } {
  const fleet = planFleet({
    devices: 6,
    seed: 42,
    idPrefix: 'eq',
    profiles: { env: 1, tracker: 1, meter: 1 },
  });
  const perDevice = fleet.map((spec) => {
    const gen = createMessageGenerator(spec, 8 * 3_600_000, INTERVAL_MS);
    const list: SimulatedMessage[] = [];
    for (let i = 0; i < PER_DEVICE; i++) list.push(gen.next(T0 + i * INTERVAL_MS));
    return list;
  });
  const messages: Outgoing[] = [];
  const resends: Outgoing[] = [];
  let late = 0;
  const held = new Map<number, { msg: SimulatedMessage; due: number }[]>();
  for (let i = 0; i < PER_DEVICE; i++) {
    perDevice.forEach((list, d) => {
      const msg = list[i] as SimulatedMessage;
      const waiting = held.get(d) ?? [];
      if (msg.seq % 7 === 0) {
        waiting.push({ msg, due: i + 3 });
        late++;
      } else messages.push({ topic: msg.topic, payload: msg.payload });
      for (const w of waiting.filter((x) => x.due <= i))
        messages.push({ topic: w.msg.topic, payload: w.msg.payload });
      held.set(
        d,
        waiting.filter((x) => x.due > i),
      );
      if (msg.seq % 10 === 0) resends.push({ topic: msg.topic, payload: msg.payload });
    });
  }
  for (const waiting of held.values())
    for (const w of waiting) messages.push({ topic: w.msg.topic, payload: w.msg.payload });
  messages.push(
    { topic: 'devices/eq-env-0001/telemetry', payload: '{"seq":999,"temperature":' },
    { topic: 'devices/eq-env-0001/telemetry', payload: '{"seq":998,"temperature":"hot"}' },
    { topic: 'devices/eq-bad/nonsense', payload: '{}' },
  );
  return {
    messages: [...messages, ...resends],
    events: fleet.length * PER_DEVICE,
    late,
    resent: resends.length,
  };
}

/** Publishes one by one, each after the previous PUBACK, so both logs receive the same order. */
async function feed(mqttUrl: string, messages: readonly Outgoing[]): Promise<void> {
  const client = await mqtt.connectAsync(mqttUrl, { clientId: 'equality-feeder', reconnectPeriod: 0 });
  try {
    for (const m of messages) await client.publishAsync(m.topic, m.payload, { qos: 1 });
  } finally {
    await client.endAsync();
  }
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/**
 * `receivedAt` is the ingest wall clock (each server received the messages at a different moment) and is the
 * only field that legitimately differs: in events, and in dead letters. Everything else (seq, version, ids,
 * positions, snapshot boundaries) must be equal, because both logs got the same messages in the same order.
 */
function withoutReceivedAt(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutReceivedAt);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !RECEIVE_TIMES.has(k))
      .map(([k, v]) => [k, withoutReceivedAt(v)]),
  );
}
/** Fields that are receive times: `receivedAt`, and the accounting's "last duplicate / reset / correction at". */
const RECEIVE_TIMES = new Set(['receivedAt', 'resendAt', 'counterResetAt', 'clockCorrectedAt']);
/**
 * History pages walk every type but DuplicateReceived: its event time is the receive time (it records when a
 * resend arrived), so its place in time order, and the cursors around it, differ between the two servers.
 */
const HISTORY_TYPES =
  'TelemetryRecorded,StateReported,DeviceEventReported,DeviceConnected,DeviceDisconnected';

interface DeviceListBody {
  devices: {
    deviceId: string;
    events: number;
    metrics: Record<string, unknown>;
    accounting: { appended: number; duplicates: { resend: number } };
  }[];
}

/** Every read-side answer the comparison covers, by URL path (without the host). */
async function readSideAnswers(httpUrl: string): Promise<Map<string, unknown>> {
  const answers = new Map<string, unknown>();
  const ask = async (url: string) => {
    const { status, body } = await getJson(`${httpUrl}${url}`);
    expect(status, url).toBe(200);
    answers.set(url, withoutReceivedAt(body));
    return body;
  };
  const list = (await ask('/api/devices?limit=1000')) as DeviceListBody;
  const end = T0 + PER_DEVICE * INTERVAL_MS;
  const iso = (ms: number) => new Date(ms).toISOString();
  for (const { deviceId, metrics } of list.devices) {
    await ask(`/api/devices/${deviceId}`);
    // Before the first event, inside the run (between snapshots, around late arrivals), after the last.
    for (const at of [T0 - 60_000, T0 + 95_000, T0 + 7 * INTERVAL_MS, T0 + 301_000, end])
      await ask(`/api/devices/${deviceId}/state?at=${at}`);
    for (const metric of Object.keys(metrics)) {
      for (const q of [
        'every=1m&fn=mean',
        'every=1m&fn=max',
        'every=2m&fn=count',
        'every=30s&fn=last',
        'every=1h&fn=sum',
      ])
        await ask(`/api/devices/${deviceId}/series/${metric}?from=${iso(T0)}&to=${iso(end)}&${q}`);
    }
    // Raw history, walked page by page through the cursor; and one type-filtered page.
    let next: string | null = '';
    for (let page = 0; next !== null && page < 20; page++) {
      const body = (await ask(
        `/api/devices/${deviceId}/events?limit=7&type=${HISTORY_TYPES}${next ? `&after=${next}` : ''}`,
      )) as {
        next: string | null;
      };
      next = body.next;
    }
    expect(next, `history of ${deviceId} ended within 20 pages`).toBeNull();
    await ask(`/api/devices/${deviceId}/events?type=StateReported,DeviceEventReported&from=${T0 + 60_000}`);
  }
  await ask('/api/dead-letters');
  return answers;
}

describe.skipIf(!available)('read side on JetStream gives the same answers as on SQLite', () => {
  let nats: NatsServer;
  const open: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    nats = await startNatsServer();
  }, 30_000);
  afterAll(async () => {
    await nats?.destroy();
  });
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });

  it('aggregates, series, state as of and history pages of a seeded run are equal, except receivedAt', async () => {
    const run = seededRun();
    const sqlite = await startTestServer({ snapshotEvery: 5 });
    open.push(sqlite);
    const jetstream = await startTestServer({ snapshotEvery: 5, eventLog: 'jetstream', natsUrl: nats.url });
    open.push(jetstream);

    await feed(sqlite.mqttUrl, run.messages);
    await feed(jetstream.mqttUrl, run.messages);
    for (const server of [sqlite, jetstream]) {
      const head = await server.log.lastSeq();
      // Every message once, and a DuplicateReceived record per resend; the malformed ones dead-lettered.
      expect(head).toBe(run.events + run.resent);
      await server.readSide?.runner.waitFor(head);
    }

    const fromSqlite = await readSideAnswers(sqlite.httpUrl);
    const fromJetStream = await readSideAnswers(jetstream.httpUrl);
    expect([...fromJetStream.keys()]).toEqual([...fromSqlite.keys()]);
    for (const [url, answer] of fromSqlite) expect(fromJetStream.get(url), url).toEqual(answer);

    // The comparison is about a non-trivial answer set: 6 devices with 40 events each, late data in it.
    const list = fromSqlite.get('/api/devices?limit=1000') as DeviceListBody;
    expect(
      list.devices.map((d) => [d.deviceId, d.accounting.appended, d.accounting.duplicates.resend]),
    ).toEqual([
      ['eq-env-0001', 40, 4],
      ['eq-env-0004', 40, 4],
      ['eq-meter-0003', 40, 4],
      ['eq-meter-0006', 40, 4],
      ['eq-tracker-0002', 40, 4],
      ['eq-tracker-0005', 40, 4],
    ]);
    expect(run.late).toBe(30);
    expect(run.resent).toBe(24);
    expect(fromSqlite.size).toBeGreaterThan(100);
    const letters = fromSqlite.get('/api/dead-letters') as { deadLetters: unknown[] };
    expect(letters.deadLetters).toHaveLength(3);
  }, 120_000);

  it('fleetlog process --event-log jetstream folds what serve --processors off ingested, and serves it', async () => {
    const ingestDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-ingest-'));
    const processDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-process-'));
    const jsEnv = { FLEETLOG_EVENT_LOG: 'jetstream', FLEETLOG_NATS_URL: nats.url };
    // A fresh stream for this test: the first one's events are in FLEETLOG_EVENTS on the same server.
    const own = await startNatsServer();
    open.push({ close: () => own.destroy() });
    const serve = await spawnServe(ingestDir, {
      ...jsEnv,
      FLEETLOG_NATS_URL: own.url,
      FLEETLOG_PROCESSORS: 'off',
    });
    open.push({ close: () => kill9(serve.child) });

    const off = await getJson(`${serve.httpUrl}/api/devices`);
    expect(off.status).toBe(503);
    expect((off.body as { message: string }).message).toContain('fleetlog process --http-port');

    const before = seededRun().messages.slice(0, 60);
    await feed(serve.mqttUrl, before);
    const processor = await spawnProcess({
      ...jsEnv,
      FLEETLOG_NATS_URL: own.url,
      FLEETLOG_DATA_DIR: processDir,
    });
    open.push({ close: async () => void (await processor.stop()) });
    expect(processor.output()).toContain('NATS JetStream at ' + own.url + ', read only');

    const total = (body: DeviceListBody) => body.devices.reduce((n, d) => n + d.events, 0);
    const folded = async (n: number) =>
      waitFor(async () => {
        const { status, body } = await getJson(`${processor.httpUrl}/api/devices?limit=1000`);
        return status === 200 && total(body as DeviceListBody) === n ? (body as DeviceListBody) : undefined;
      }, 15_000);
    // The first 120 messages of the run are all distinct and well-formed (resends and bad ones come last).
    const expectedBefore = before.length;
    await folded(expectedBefore);

    // It follows the log: what arrives after it started is folded too.
    const after = seededRun().messages.slice(60, 120);
    await feed(serve.mqttUrl, after);
    const list = await folded(expectedBefore + after.length);
    expect(list.devices).toHaveLength(6);

    // The same history through the process's API as through serve's (both read the one JetStream log).
    for (const { deviceId } of list.devices) {
      const fromProcess = await getJson(`${processor.httpUrl}/api/devices/${deviceId}/events?limit=1000`);
      const fromServe = await getJson(`${serve.httpUrl}/api/devices/${deviceId}/events?limit=1000`);
      expect(fromProcess).toEqual(fromServe);
    }
    // It never appended: the log's head is what serve ingested.
    const health = (await getJson(`${processor.httpUrl}/healthz`)).body as { log: { lastSeq: number } };
    expect(health.log.lastSeq).toBe(expectedBefore + after.length);
    // Its --data-dir holds no dead letters: it says where they are instead of an empty list.
    const letters = await getJson(`${processor.httpUrl}/api/dead-letters`);
    expect(letters.status).toBe(503);
    expect((letters.body as { message: string }).message).toContain('fleetlog ingest');

    expect(await processor.stop()).toBe(0);
  }, 90_000);
});

if (!available) {
  describe('read side on JetStream gives the same answers as on SQLite', () => {
    it.skip(SKIP, () => undefined);
  });
}
