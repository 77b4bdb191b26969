import { FleetlogError } from '../core/errors.js';
import { contentEventId } from '../core/event-id.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { describeError } from './describe-error.js';
import { DAY_MS } from './device-profile.js';
import { createMessageGenerator, type SimulatedMessage } from './message-generator.js';
import { messageFingerprint } from './message-fingerprint.js';
import { createPacer } from './pacer.js';
import { planFleet } from './plan-fleet.js';
import { createRateMeter } from './rate-meter.js';
import { createSeededRandom } from './seeded-random.js';
import { createSimulatedDevice, type SimulatedDevice } from './simulated-device.js';
import { resolveSimulatorOptions, type SimulatorOptions } from './simulator-options.js';
import type { AckedMessage } from './verify.js';

export type { SimulatorOptions };

export interface SimulatorDeps {
  logger?: Logger;
  /** Wall clock for payload `ts`, epoch ms. Pacing uses the monotonic clock regardless. */
  now?: () => number;
}

export interface SimulatorStats {
  /** Data messages published (status messages are not counted). */
  sent: number;
  /** Acknowledged: PUBACK received (QoS 1) or written to the socket (QoS 0). */
  acked: number;
  /** Publishes that failed while running. */
  errors: number;
  /** Sent, then lost with a rebooting device's memory (never acknowledged). */
  lost: number;
  /** Device reboots (`rebootEveryMs`). */
  reboots: number;
  /** Turns skipped because the device was offline, had too much in flight, or the process fell behind. */
  skipped: number;
  /** Sent, not yet acknowledged. */
  inflight: number;
  /** Devices currently connected. */
  connected: number;
  /** Messages sent per second over the last second. */
  rate: number;
  /** Since sending started, ms. */
  elapsedMs: number;
}

export interface SimulatorSummary {
  sent: number;
  acked: number;
  errors: number;
  /** Lost in reboots: sent, never acknowledged. */
  lost: number;
  reboots: number;
  /** Sent but neither acknowledged nor failed when the connections were closed. */
  unacked: number;
  skipped: number;
  /** Time spent sending, ms. */
  durationMs: number;
  devices: number;
}

export interface Simulator {
  /** Every device id, in fleet order; each is also its MQTT client id. */
  readonly deviceIds: readonly string[];
  /**
   * Per device, what this run had acknowledged, in acknowledgement order: each message's event id and content
   * fingerprint, which no other run's messages share (their `ts` differ). Empty with trackAcked off.
   */
  readonly acked: Readonly<Record<string, readonly AckedMessage[]>>;
  /** Wall-clock time the fleet started sending, epoch ms (undefined before). */
  readonly startedAt: number | undefined;
  /** Resolves when durationMs has elapsed, or when stop() is called. */
  readonly finished: Promise<void>;
  /** Connects the whole fleet, then starts sending. Rejects with ERR_BROKER_UNREACHABLE if it cannot connect. */
  start(): Promise<void>;
  /** Stops sending, waits (bounded) for outstanding acks, closes every connection. Safe to call more than once. */
  stop(): Promise<SimulatorSummary>;
  stats(): SimulatorStats;
}

export function createSimulator(options: SimulatorOptions, deps: SimulatorDeps = {}): Simulator {
  const o = resolveSimulatorOptions(options);
  const logger = (deps.logger ?? silentLogger()).child({ component: 'simulator' });
  const now = deps.now ?? Date.now;
  const planned = planFleet({ devices: o.devices, seed: o.seed, idPrefix: o.idPrefix, profiles: o.profiles });
  // With credentials the one device is the one they belong to: a device's user name is its id.
  const username = o.credentials?.username;
  const specs = username === undefined ? planned : planned.map((s) => ({ ...s, deviceId: username }));
  const clockStartMs = createSeededRandom(o.seed).int(0, DAY_MS - 1);
  const intervalMs = (o.devices * 1000) / o.rate;
  const acked: Record<string, AckedMessage[]> = Object.fromEntries(specs.map((s) => [s.deviceId, []]));
  const counts = { sent: 0, acked: 0, errors: 0, lost: 0, reboots: 0, skipped: 0 };
  let startedAtWall: number | undefined;
  /** Per device (by index), when it reboots next (ms of sending time); empty without rebootEveryMs. */
  const nextReboot: number[] = [];
  const rateMeter = createRateMeter();
  const devices: SimulatedDevice[] = [];
  let timer: NodeJS.Timeout | undefined;
  let startedAt: number | undefined;
  let stoppedAt: number | undefined;
  let stopping: Promise<SimulatorSummary> | undefined;
  /** Set when start() gives up or stop() is called, so the connect workers stop opening connections. */
  let abandoned = false;
  /** Next device in the round-robin. */
  let cursor = 0;
  let markFinished = (): void => undefined;
  const finished = new Promise<void>((resolve) => (markFinished = resolve));

  const elapsed = () => (startedAt === undefined ? 0 : (stoppedAt ?? performance.now()) - startedAt);

  function createDevice(index: number): SimulatedDevice {
    const spec = specs[index];
    if (spec === undefined) throw new RangeError(`no device ${index}`);
    const list = acked[spec.deviceId] ?? [];
    return createSimulatedDevice(
      spec.deviceId,
      createMessageGenerator(spec, clockStartMs, intervalMs),
      {
        sent: () => void counts.sent++,
        acked: (message) => {
          counts.acked++;
          if (o.trackAcked) list.push(ackedMessage(spec.deviceId, message));
        },
        lost: () => void counts.lost++,
        rebooted: () => void counts.reboots++,
        failed: (err) => {
          counts.errors++;
          logger.debug({ err, deviceId: spec.deviceId }, 'publish failed');
        },
      },
      {
        url: o.url,
        qos: o.qos,
        maxInflight: o.maxInflightPerDevice,
        now,
        credentials: o.fleetCredentials?.[spec.deviceId] ?? o.credentials,
        fleetIntervalMs: intervalMs,
      },
      logger.child({ deviceId: spec.deviceId }),
    );
  }

  async function connectFleet(): Promise<void> {
    // One device first: an unreachable broker then fails fast with its real error, instead of N copies of it.
    const probe = createDevice(0);
    devices.push(probe);
    await probe.firstConnect;
    let next = 1;
    const worker = async () => {
      while (next < specs.length && !abandoned) {
        const device = createDevice(next++);
        devices.push(device);
        // Later errors are retried by mqtt.js; the overall deadline decides when to give up.
        await device.firstConnect.catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.connectConcurrency, specs.length) }, worker));
    // Devices whose first attempt failed keep retrying; wait for them until the deadline.
    while (devices.some((d) => !d.connected) && !abandoned) await delay(50);
  }

  function tick(pacer: ReturnType<typeof createPacer>): void {
    const t = elapsed();
    const { send, dropped } = pacer.step(t);
    counts.skipped += dropped;
    for (let i = 0; i < send; i++) {
      // Round-robin across the fleet keeps every device at rate / devices. A device whose desired state set
      // its own interval lets its turn pass (the others keep their pace) and sends on its own schedule below.
      const device = devices[cursor];
      cursor = (cursor + 1) % devices.length;
      if (device?.intervalMs !== undefined) continue;
      if (device === undefined || !device.send()) counts.skipped++;
    }
    sendOwnPaced(t);
    if (o.rebootEveryMs !== undefined) rebootDue(t, o.rebootEveryMs);
    rateMeter.record(t, counts.sent);
    if (o.durationMs !== undefined && t >= o.durationMs) {
      clearInterval(timer);
      timer = undefined;
      stoppedAt ??= performance.now();
      markFinished();
    }
  }

  /** Per device (by index), when a device on its own interval sends next (ms of sending time). */
  const ownDue = new Map<number, number>();

  /** Devices whose desired state set a report interval send every that many ms, whatever the fleet's rate. */
  function sendOwnPaced(t: number): void {
    if (o.durationMs !== undefined && t >= o.durationMs) return;
    for (let i = 0; i < devices.length; i++) {
      const device = devices[i];
      const every = device?.intervalMs;
      if (!device || every === undefined) {
        ownDue.delete(i);
        continue;
      }
      let due = ownDue.get(i) ?? t;
      if (due > t) continue;
      if (!device.send()) counts.skipped++;
      due += every;
      // Fallen far behind (the device was offline): start again from now rather than catch up in a burst.
      ownDue.set(i, due < t - every ? t + every : due);
    }
  }

  /**
   * Each device reboots every `everyMs`, the first time at a point spread over the first period (from the seed),
   * so a fleet does not reboot all at once.
   */
  function rebootDue(t: number, everyMs: number): void {
    if (nextReboot.length === 0) {
      const random = createSeededRandom(o.seed + 1);
      for (let i = 0; i < devices.length; i++) nextReboot.push(random.int(1, Math.max(1, everyMs)));
    }
    for (let i = 0; i < devices.length; i++) {
      const device = devices[i];
      if (!device || (nextReboot[i] ?? Infinity) > t) continue;
      nextReboot[i] = (nextReboot[i] ?? 0) + everyMs;
      if (!device.connected) continue;
      device.reboot();
    }
  }

  return {
    deviceIds: specs.map((s) => s.deviceId),
    acked,
    get startedAt() {
      return startedAtWall;
    },
    finished,
    async start() {
      if (startedAt !== undefined || devices.length > 0) throw new Error('simulator already started');
      logger.debug(
        { url: o.url, devices: o.devices, rate: o.rate, qos: o.qos, seed: o.seed },
        'connecting fleet',
      );
      try {
        await withDeadline(connectFleet(), o.connectTimeoutMs);
      } catch (err) {
        if (abandoned) return; // stop() was called while connecting; it closes the devices
        abandoned = true;
        const cause = devices.find((d) => d.lastError !== undefined)?.lastError ?? err;
        await Promise.all(devices.map((d) => d.close(100)));
        throw new FleetlogError(
          'ERR_BROKER_UNREACHABLE',
          `cannot connect to ${o.url}: ${describeError(cause)}`,
          { cause },
        );
      }
      if (abandoned) return;
      startedAt = performance.now();
      startedAtWall = now();
      const pacer = createPacer(o.rate, o.durationMs);
      timer = setInterval(() => tick(pacer), o.tickMs);
      logger.info({ devices: devices.length }, 'fleet connected, sending');
    },
    stop() {
      stopping ??= (async () => {
        abandoned = true;
        clearInterval(timer);
        timer = undefined;
        if (startedAt !== undefined) stoppedAt ??= performance.now();
        markFinished();
        const drainUntil = performance.now() + o.drainTimeoutMs;
        while (devices.some((d) => d.inflight > 0) && performance.now() < drainUntil) await delay(10);
        await Promise.all(devices.map((d) => d.close(o.drainTimeoutMs)));
        const summary: SimulatorSummary = {
          ...counts,
          unacked: counts.sent - counts.acked - counts.errors - counts.lost,
          // The last tick runs a few ms past a bounded run's end; the messages were due within durationMs.
          durationMs: Math.round(o.durationMs === undefined ? elapsed() : Math.min(elapsed(), o.durationMs)),
          devices: o.devices,
        };
        logger.info(summary, 'simulator stopped');
        return summary;
      })();
      return stopping;
    },
    stats() {
      const inflight = devices.reduce((sum, d) => sum + d.inflight, 0);
      const connected = devices.reduce((sum, d) => sum + (d.connected ? 1 : 0), 0);
      return { ...counts, inflight, connected, rate: rateMeter.rate(), elapsedMs: Math.round(elapsed()) };
    },
  };
}

/** What the log must hold for an acknowledged message: the id ingest derives from it, and its content. */
function ackedMessage(deviceId: string, m: SimulatedMessage): AckedMessage {
  return {
    id: contentEventId(deviceId, m.seq, m.topic, m.payload),
    seq: m.seq,
    fingerprint: messageFingerprint(m.expected.type, m.ts, m.expected.data),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the fleet did not connect within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
