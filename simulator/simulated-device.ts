import { connect, type MqttClient } from 'mqtt';
import type { Logger } from '../core/logger.js';
import { deviceTopics } from '../core/topics.js';
import { createDeviceControl } from './device-control.js';
import type { MessageGenerator, SimulatedMessage } from './message-generator.js';

/** What a device tells the simulator about each data message. */
export interface DeviceReport {
  sent(): void;
  acked(message: SimulatedMessage): void;
  failed(err: Error): void;
  /** Sent, then lost with the device's memory in a reboot: neither acknowledged nor an error. */
  lost(): void;
  /** The device rebooted (a `reboot` command, or the simulator's --reboot-every). */
  rebooted(): void;
}

export interface SimulatedDeviceOptions {
  url: string;
  qos: 0 | 1;
  maxInflight: number;
  /** Wall clock for `ts`, epoch ms. */
  now: () => number;
  /** MQTT user name and password, for a broker with `--auth required`. */
  credentials?: { username: string; password: string } | undefined;
  /** The fleet's pace for this device, ms between its messages (it reports this when no desired interval applies). */
  fleetIntervalMs: number;
}

export interface SimulatedDevice {
  readonly id: string;
  readonly connected: boolean;
  /** Data messages published but not yet acknowledged (or, for QoS 0, not yet written). */
  readonly inflight: number;
  /** The last connection error, for telling the user why the broker cannot be reached. */
  readonly lastError: Error | undefined;
  /**
   * Resolves at the first CONNACK; rejects on the first connection error (mqtt.js keeps retrying regardless)
   * or when closed before connecting.
   */
  readonly firstConnect: Promise<void>;
  /** Publishes this device's next message; false if it has to skip its turn (offline or too much in flight). */
  send(): boolean;
  /**
   * The report interval its desired state set, ms; undefined while it follows the fleet's pace. A device with
   * one sends on its own schedule instead of its turn in the fleet's round-robin.
   */
  readonly intervalMs: number | undefined;
  /**
   * Power-cycles the device: the connection drops without a DISCONNECT (the broker publishes its will), what was
   * in flight is lost with its memory, and it connects again as a new boot, its counter back at 1.
   */
  reboot(): void;
  /** Reboots so far. */
  readonly reboots: number;
  /** Says `offline` (retained), disconnects cleanly, and falls back to dropping the socket after `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

const RECONNECT_PERIOD_MS = 1000;
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a rebooting device stays off the network. */
const REBOOT_DOWNTIME_MS = 300;

export function createSimulatedDevice(
  id: string,
  generator: MessageGenerator,
  report: DeviceReport,
  options: SimulatedDeviceOptions,
  logger: Logger,
): SimulatedDevice {
  const statusTopic = deviceTopics.status(id);
  let connected = false;
  let closing = false;
  let inflight = 0;
  let lastError: Error | undefined;
  /** Bumped at each reboot: callbacks of an earlier boot's connection are ignored. */
  let boot = 0;
  let bootedAt = performance.now();
  let intervalMs: number | undefined;
  let reboots = 0;
  const control = createDeviceControl({
    deviceId: id,
    setInterval: (ms) => {
      intervalMs = ms;
    },
    reportAlso: (attributes) => generator.reportAlso(attributes),
    reply: (commandId, body, then) => {
      const thisBoot = boot;
      client.publish(deviceTopics.reply(id, commandId), JSON.stringify(body), { qos: 1 }, (err) => {
        if (err) logger.debug({ err, commandId }, 'reply not acknowledged');
        if (thisBoot === boot) then?.();
      });
    },
    reboot: () => reboot(),
    uptimeMs: () => performance.now() - bootedAt,
    fleetIntervalMs: options.fleetIntervalMs,
    now: options.now,
  });

  function open(): MqttClient {
    const thisBoot = boot;
    const c = connect(options.url, {
      clientId: id,
      ...(options.credentials ?? {}),
      protocolVersion: 4, // MQTT 3.1.1: what Aedes speaks
      clean: true,
      reconnectPeriod: RECONNECT_PERIOD_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepalive: 30,
      // Without this a QoS 0 message sent while offline would sit in memory and go out late, out of pace.
      queueQoSZero: false,
      will: { topic: statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    c.on('connect', () => {
      if (thisBoot !== boot) return;
      connected = true;
      generator.reportStateNext();
      // Subscribed before `online`: through an external broker, `online` is the server's cue to send commands.
      c.subscribe([...control.topics], { qos: 1 }, (err) => {
        if (err) logger.debug({ err }, 'subscribe to desired state and commands failed');
        c.publish(statusTopic, 'online', { qos: 1, retain: true }, (e) => {
          if (e) logger.debug({ err: e }, 'online status not acknowledged');
        });
      });
    });
    c.on('message', (topic, payload) => {
      if (thisBoot === boot) control.onMessage(topic, payload);
    });
    c.on('close', () => {
      if (thisBoot === boot) connected = false;
    });
    c.on('error', (err) => {
      lastError = err;
      logger.debug({ err }, 'connection error');
    });
    return c;
  }

  let client = open();

  /** Power-cycle: see SimulatedDevice.reboot. */
  function reboot(): void {
    if (closing || !connected) return;
    boot++;
    reboots++;
    report.rebooted();
    for (; inflight > 0; inflight--) report.lost();
    connected = false;
    generator.restartCounter();
    // A new boot starts at the fleet's pace, reporting nothing it applied, until its retained desired state
    // arrives again.
    intervalMs = undefined;
    generator.reportAlso({});
    // Forced: no DISCONNECT, as when power goes; the broker publishes the will and records the drop. The new
    // boot connects after a pause, as a real one does: connecting at once would take over the old session
    // while the broker may still be publishing its will.
    client.end(true, {}, () => {
      setTimeout(() => {
        if (closing) return;
        bootedAt = performance.now();
        client = open();
      }, REBOOT_DOWNTIME_MS).unref();
    });
  }

  const firstConnect = new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('end', () => reject(new Error('closed before it connected')));
  });
  // The simulator may never await it (for example when stopped while connecting).
  firstConnect.catch(() => undefined);

  return {
    id,
    get connected() {
      return connected;
    },
    get inflight() {
      return inflight;
    },
    get lastError() {
      return lastError;
    },
    get reboots() {
      return reboots;
    },
    get intervalMs() {
      return intervalMs;
    },
    firstConnect,
    send() {
      if (closing || !connected || inflight >= options.maxInflight) return false;
      const message = generator.next(options.now());
      const thisBoot = boot;
      inflight++;
      report.sent();
      // QoS 1: the callback runs on PUBACK; QoS 0: once the packet is written to the socket.
      client.publish(message.topic, message.payload, { qos: options.qos }, (err) => {
        if (thisBoot !== boot) return; // counted as lost at the reboot
        inflight--;
        // Callbacks failed by our own close are unacked, not errors; the simulator counts those at the end.
        if (err) {
          if (!closing) report.failed(err);
        } else report.acked(message);
      });
      return true;
    },
    reboot() {
      reboot();
    },
    async close(timeoutMs) {
      closing = true;
      if (connected) {
        await withTimeout(
          new Promise<void>((resolve) =>
            client.publish(statusTopic, 'offline', { qos: 1, retain: true }, () => resolve()),
          ),
          timeoutMs,
        );
      }
      // A graceful end waits for outstanding acks, which never come while disconnected: force it then.
      const ended = await withTimeout(
        new Promise<boolean>((resolve) => client.end(!connected, {}, () => resolve(true))),
        timeoutMs,
      );
      if (ended !== true) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
