import { hostname } from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { deviceTopics, parseTopic } from '../core/topics.js';
import type { CommandMessage, DesiredDocument, DeviceReady, Downlink } from './downlink.js';

export interface MqttDownlinkOptions {
  /** The external broker: mqtt://, mqtts://, ws:// or wss:// (credentials may ride in the URL). */
  brokerUrl: string;
  /** Default `fleetlog-commands-<host>`. */
  clientId?: string;
  /** How long start waits for the first connection, ms. Default 10 000. */
  connectTimeoutMs?: number;
}

/**
 * The command side's way to devices through an external MQTT broker (the `fleetlog ingest --broker` deployment):
 * an MQTT 5 client that publishes desired documents (retained) and commands at QoS 1, and follows
 * `devices/+/status` to learn when a device is (back) online. A broker reports no per-subscriber PUBACK to other
 * clients, so here a command goes from pending straight to its reply; `delivered` is never recorded. Devices must
 * subscribe to their commands before they say `online` (the simulator does), since that is the signal to send.
 */
export async function startMqttDownlink(options: MqttDownlinkOptions, logger: Logger): Promise<Downlink> {
  const log = logger.child({ component: 'downlink' });
  const clientId =
    options.clientId ??
    `fleetlog-commands-${hostname()
      .replace(/[^A-Za-z0-9_.:-]/g, '_')
      .slice(0, 40)}`;
  const client: MqttClient = mqtt.connect(options.brokerUrl, {
    protocolVersion: 5,
    clientId,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
  });
  const readyListeners: ((ready: DeviceReady) => void)[] = [];
  /** Per device, its connection as the last `online` announced it; absent once it said `offline`. */
  const online = new Map<string, object>();

  client.on('error', (err) => log.warn({ err }, 'broker connection error'));
  client.on('connect', () => {
    // Retained statuses arrive at once: every device online now becomes ready (their open commands are sent).
    client.subscribe('devices/+/status', { qos: 1 }, (err) => {
      if (err) log.error({ err }, 'subscribe to devices/+/status refused; check the broker ACL');
    });
  });
  client.on('message', (topic, payload) => {
    const match = parseTopic(topic);
    if (match.match !== 'device' || match.topic.kind !== 'status') return;
    const { deviceId } = match.topic;
    const status = payload.toString().trim();
    if (status === 'offline') {
      online.delete(deviceId);
      return;
    }
    if (status !== 'online') return;
    const connection = {};
    online.set(deviceId, connection);
    const ready: DeviceReady = { deviceId, connection, covers: () => true };
    for (const listener of readyListeners) listener(ready);
  });

  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end(true);
      const shown = new URL(options.brokerUrl);
      if (shown.password) shown.password = '***';
      reject(
        new FleetlogError(
          'ERR_BROKER_UNREACHABLE',
          `could not connect to ${shown.toString()} within ${timeoutMs} ms to publish desired state and commands`,
        ),
      );
    }, timeoutMs);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  const publish = (topic: string, payload: unknown, retain: boolean) =>
    client.publishAsync(topic, JSON.stringify(payload), { qos: 1, retain }).then(() => undefined);

  return {
    reportsDelivery: false,
    publishDesired: (deviceId, document: DesiredDocument) =>
      publish(deviceTopics.desired(deviceId), document, true),
    publishCommand: (deviceId, name, message: CommandMessage) =>
      publish(deviceTopics.command(deviceId, name), message, false),
    connectionFor: (deviceId) => online.get(deviceId),
    onReady(listener) {
      readyListeners.push(listener);
    },
    onDelivered() {
      // No per-subscriber acknowledgement through an external broker (see above).
    },
    async close() {
      await client.endAsync();
    },
  };
}
