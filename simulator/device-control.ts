import { deviceTopics } from '../core/topics.js';

/** What a simulated device does with its desired state and commands: the device side of the command side. */
export interface DeviceControl {
  /** Topics to subscribe to (QoS 1) before saying `online`. */
  readonly topics: readonly string[];
  /** Handles a message on one of them; ignores anything else. */
  onMessage(topic: string, payload: Buffer): void;
}

export interface DeviceControlDeps {
  deviceId: string;
  /** Applies a report interval (ms), or goes back to the fleet's pace (undefined). */
  setInterval(ms: number | undefined): void;
  /** Publishes a reply, QoS 1; `then` runs once it is acknowledged (or failed). */
  reply(commandId: string, body: Record<string, unknown>, then?: () => void): void;
  /** Restarts the device: new connection, counter back at 1. */
  reboot(): void;
  /** Time since this boot, ms. */
  uptimeMs(): number;
  /** The fleet's pace for this device, ms between messages: reported when no desired interval applies. */
  fleetIntervalMs: number;
  now(): number;
  /** Tells the device to carry these attributes in its state reports from now on. */
  reportAlso(attributes: Record<string, unknown>): void;
}

/** Shortest and longest report interval a simulated device accepts, seconds. */
const MIN_INTERVAL_S = 0.05;
const MAX_INTERVAL_S = 86_400;
/** Replies remembered, so a command delivered again (after a reconnect) gets the same answer, not a second run. */
const REMEMBERED_REPLIES = 100;

/**
 * The simulated device obeys: desired `reportIntervalS` sets how often it sends (and it reports the value it
 * applied in its next state report, so the delta empties); commands `ping` (replies with its uptime) and `reboot`
 * (replies, then restarts once the reply is acknowledged); anything else is answered `error` with the reason.
 * Commands past their `expiresAt` are ignored (the server records them expired).
 */
export function createDeviceControl(deps: DeviceControlDeps): DeviceControl {
  const desiredTopic = deviceTopics.desired(deps.deviceId);
  const commandPrefix = `devices/${deps.deviceId}/commands/`;
  const answered = new Map<string, Record<string, unknown>>();

  function remember(commandId: string, body: Record<string, unknown>): void {
    answered.set(commandId, body);
    if (answered.size > REMEMBERED_REPLIES) answered.delete(answered.keys().next().value as string);
  }

  function applyDesired(payload: Buffer): void {
    let doc: { state?: { reportIntervalS?: unknown } };
    try {
      doc = JSON.parse(payload.toString()) as typeof doc;
    } catch {
      return;
    }
    const wanted = doc.state?.reportIntervalS;
    if (typeof wanted === 'number' && wanted >= MIN_INTERVAL_S && wanted <= MAX_INTERVAL_S) {
      deps.setInterval(Math.round(wanted * 1000));
      deps.reportAlso({ reportIntervalS: wanted });
    } else if (wanted === undefined) {
      deps.setInterval(undefined);
      deps.reportAlso({ reportIntervalS: deps.fleetIntervalMs / 1000 });
    }
  }

  function run(name: string, payload: Buffer): void {
    let command: { id?: unknown; expiresAt?: unknown };
    try {
      command = JSON.parse(payload.toString()) as typeof command;
    } catch {
      return;
    }
    const { id, expiresAt } = command;
    if (typeof id !== 'string') return;
    const earlier = answered.get(id);
    if (earlier) {
      deps.reply(id, earlier);
      return;
    }
    if (typeof expiresAt === 'number' && expiresAt < deps.now()) return;
    switch (name) {
      case 'ping': {
        const body = { status: 'ok', result: { uptimeS: Math.round(deps.uptimeMs() / 1000) } };
        remember(id, body);
        deps.reply(id, body);
        return;
      }
      case 'reboot': {
        const body = { status: 'ok', result: { rebooting: true } };
        remember(id, body);
        deps.reply(id, body, () => deps.reboot());
        return;
      }
      default: {
        const body = {
          status: 'error',
          message: `unknown command "${name}": this device knows ping and reboot`,
        };
        remember(id, body);
        deps.reply(id, body);
      }
    }
  }

  return {
    topics: [desiredTopic, `${commandPrefix}#`],
    onMessage(topic, payload) {
      if (topic === desiredTopic) applyDesired(payload);
      else if (topic.startsWith(commandPrefix)) run(topic.slice(commandPrefix.length), payload);
    },
  };
}
