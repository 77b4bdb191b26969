import mqtt, { type MqttClient } from 'mqtt';
import { contentEventId } from '../core/event-id.js';
import { messageFingerprint } from '../simulator/message-fingerprint.js';
import { createSeededRandom } from '../simulator/seeded-random.js';
import type { AckedMessage } from '../simulator/verify.js';

export interface SoakLoadOptions {
  url: string;
  /** Device ids are `{prefix}-{i}`: fresh per run, so seqs never meet an earlier run's. */
  prefix: string;
  devices: number;
  /** Messages per second across all devices (paced, open loop). */
  rate: number;
  /** QoS 1 messages one device keeps in flight; a device with a full window skips its turn. */
  window: number;
  /** Every this many ms, `churnDevices` devices disconnect (half cleanly, half by dropping the socket). */
  churnEveryMs: number;
  churnDevices: number;
  seed: number;
}

export interface SoakLoadCounts {
  sent: number;
  acked: number;
  /** Messages sent again after their connection went away unacknowledged. */
  resent: number;
  /** Turns skipped because the device's window was full or it was reconnecting. */
  skipped: number;
  reconnects: number;
  /** Connections that failed to reconnect at once (retried). */
  connectErrors: number;
}

export interface SoakLoad {
  counts(): SoakLoadCounts;
  /** Stops sending, waits (bounded) for acknowledgements, disconnects every device cleanly. */
  stop(): Promise<void>;
  /** Per device, the acknowledged messages: what `verifyAgainstApi` checks. */
  acked(): Record<string, AckedMessage[]>;
}

interface Device {
  id: string;
  client?: MqttClient;
  nextSeq: number;
  inflight: number;
  /** Seqs whose connection closed before their PUBACK: a real device sends them again. */
  resend: number[];
  acked: AckedMessage[];
}

const T0 = Date.UTC(2026, 0, 1);

/** The same bytes every time for one (device, seq): a resend must be byte-identical. */
function payload(seq: number): string {
  const v = (seq % 1000) / 10;
  return `{"ts":${T0 + seq * 100},"seq":${seq},"metrics":{"temperature":${(18 + v / 10).toFixed(2)},"humidity":${(40 + v / 5).toFixed(2)},"rssi":${-60 - (seq % 30)}}}`;
}

/** What the log must hold for one acknowledged message: its content-derived id and its content. */
function ackedMessage(deviceId: string, seq: number): AckedMessage {
  const topic = `devices/${deviceId}/telemetry`;
  const text = payload(seq);
  const { ts, metrics } = JSON.parse(text) as { ts: number; metrics: Record<string, number> };
  return {
    id: contentEventId(deviceId, seq, topic, text),
    seq,
    fingerprint: messageFingerprint('TelemetryRecorded', ts, { metrics }),
  };
}

/** Sustained QoS 1 load from devices that keep connecting and disconnecting, as a flaky fleet does. */
export async function startSoakLoad(options: SoakLoadOptions): Promise<SoakLoad> {
  const rng = createSeededRandom(options.seed);
  const counts: SoakLoadCounts = {
    sent: 0,
    acked: 0,
    resent: 0,
    skipped: 0,
    reconnects: 0,
    connectErrors: 0,
  };
  const devices: Device[] = Array.from({ length: options.devices }, (_, i) => ({
    id: `${options.prefix}-${i}`,
    nextSeq: 1,
    inflight: 0,
    resend: [],
    acked: [],
  }));
  let stopping = false;
  const churning = new Set<Promise<void>>();

  async function connect(device: Device): Promise<void> {
    for (let attempt = 0; attempt < 20 && !stopping; attempt++) {
      try {
        const client = await mqtt.connectAsync(options.url, {
          clientId: device.id,
          protocolVersion: 4,
          reconnectPeriod: 0,
          clean: true,
          keepalive: 30,
          will: {
            topic: `devices/${device.id}/status`,
            payload: Buffer.from('offline'),
            qos: 1,
            retain: true,
          },
        });
        client.on('error', () => undefined);
        device.client = client;
        client.publish(`devices/${device.id}/status`, 'online', { qos: 1, retain: true });
        return;
      } catch {
        counts.connectErrors++;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  function publish(device: Device): void {
    const client = device.client;
    if (!client?.connected || device.inflight >= options.window) {
      counts.skipped++;
      return;
    }
    const resend = device.resend.shift();
    const seq = resend ?? device.nextSeq++;
    if (resend !== undefined) counts.resent++;
    device.inflight++;
    counts.sent++;
    client.publish(`devices/${device.id}/telemetry`, payload(seq), { qos: 1 }, (err) => {
      device.inflight--;
      if (err) {
        device.resend.push(seq);
        return;
      }
      counts.acked++;
      device.acked.push(ackedMessage(device.id, seq));
    });
  }

  async function churn(device: Device): Promise<void> {
    const client = device.client;
    if (!client) return;
    device.client = undefined;
    if (rng.chance(0.5)) await client.endAsync(false).catch(() => undefined);
    // Forced: the socket drops without DISCONNECT, so the broker publishes the will; MQTT.js fails the
    // unacknowledged messages (clean session, no reconnect), which go to the resend queue.
    else await client.endAsync(true).catch(() => undefined);
    await new Promise((r) => setTimeout(r, rng.int(50, 500)));
    counts.reconnects++;
    await connect(device);
  }

  for (let i = 0; i < devices.length; i += 100) await Promise.all(devices.slice(i, i + 100).map(connect));

  const started = performance.now();
  let due = 0;
  let turn = 0;
  const pacer = setInterval(() => {
    const target = Math.floor(((performance.now() - started) / 1000) * options.rate);
    // Bounded per tick: after a stall, catch up by at most one second of messages instead of a burst.
    for (let n = 0; due < target && n < options.rate; n++, due++) {
      publish(devices[turn % devices.length] as Device);
      turn++;
    }
    due = Math.max(due, target - options.rate);
  }, 10);
  const churner = setInterval(() => {
    for (let n = 0; n < options.churnDevices; n++) {
      const device = devices[rng.int(0, devices.length - 1)] as Device;
      if (!device.client) continue;
      const pending = churn(device).finally(() => churning.delete(pending));
      churning.add(pending);
    }
  }, options.churnEveryMs);

  return {
    counts: () => ({ ...counts }),
    acked: () => Object.fromEntries(devices.map((d) => [d.id, d.acked])),
    async stop() {
      clearInterval(pacer);
      clearInterval(churner);
      stopping = true;
      await Promise.all(churning);
      const deadline = Date.now() + 15_000;
      while (devices.some((d) => d.inflight > 0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      await Promise.all(
        devices.flatMap((d) => (d.client ? [d.client.endAsync(false).catch(() => undefined)] : [])),
      );
    },
  };
}
