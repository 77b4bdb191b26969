import type { Aedes, AuthenticateHandler, AuthorizeSubscribeHandler, Client, PublishPacket } from 'aedes';
import type { Counter } from 'prom-client';
import type { Logger } from '../core/logger.js';
import { parseTopic } from '../core/topics.js';
import type { DeviceCredentials, DeviceRole } from './device-credentials.js';
import { createLoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

/** Why the broker turned a client down; the `reason` label of fleetlog_mqtt_auth_refusals_total. */
export type RefusalReason =
  | 'no_credentials'
  | 'unknown_device'
  | 'wrong_secret'
  | 'throttled'
  | 'revoked'
  | 'client_id_mismatch'
  | 'will_denied'
  | 'publish_denied'
  | 'subscribe_denied'
  | 'store_failed';

/** MQTT 3.1.1 §3.2.2.3 CONNACK return codes a refusal can carry. */
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Long enough for any valid device id; keeps a hostile username from bloating a log line. */
const LOGGED_CHARS = 128;

export interface Identity {
  deviceId: string;
  role: DeviceRole;
}

export interface BrokerAuthOptions {
  credentials: DeviceCredentials;
  refusals: Counter<'reason'>;
  logger: Logger;
  /** Failed logins per source address before its logins are limited to known-good secrets. */
  throttle?: LoginThrottleOptions;
  /**
   * Whether `commandId` was issued to `deviceId` (the command side's read model): a device may publish on
   * `devices/{id}/replies/{commandId}` only for its own commands. Absent, no reply is allowed.
   */
  isCommandOf?: (deviceId: string, commandId: string) => boolean;
}

export interface BrokerAuth {
  /** Aedes' authenticate hook: username = device id, password = its secret. */
  authenticate: AuthenticateHandler;
  /** Null when the client may publish there; otherwise the error to hand Aedes, which then closes the connection. */
  checkPublish(client: Client, packet: PublishPacket): Error | null;
  /** Aedes' authorizeSubscribe hook: a refused filter gets SUBACK 0x80 and the connection stays open. */
  authorizeSubscribe: AuthorizeSubscribeHandler;
  /** Disconnects a device's clients the moment its credential is revoked. */
  attach(aedes: Aedes): void;
}

/**
 * A device may publish only under its own `devices/{id}/`, and not on its downlink topics (`desired`,
 * `commands/…`): those are the server's, written by the command side after it recorded the change. An operator
 * publishes nothing: commands go through the API (`POST /api/devices/:id/commands`), which records them first.
 */
export function mayPublish(identity: Identity, topic: string): boolean {
  if (identity.role === 'operator') return false;
  if (!topic.startsWith(`devices/${identity.deviceId}/`)) return false;
  const match = parseTopic(topic);
  return match.match !== 'downlink';
}

/**
 * A device may subscribe only to its own commands (`devices/{id}/commands/#` or a narrower filter under it; device
 * ids cannot contain wildcards, so a prefix test suffices) and its own desired document (`devices/{id}/desired`).
 * An operator may subscribe to anything.
 */
export function maySubscribe(identity: Identity, filter: string): boolean {
  if (identity.role === 'operator') return true;
  const own = `devices/${identity.deviceId}/commands`;
  return filter === own || filter.startsWith(`${own}/`) || filter === `devices/${identity.deviceId}/desired`;
}

export function createBrokerAuth(options: BrokerAuthOptions): BrokerAuth {
  const { credentials, refusals } = options;
  const logger = options.logger.child({ component: 'broker-auth' });
  const identities = new WeakMap<Client, Identity>();
  const throttle = createLoginThrottle(options.throttle);
  /** Where a login comes from: the peer address (TCP, TLS), else the user name (streams without one). */
  const sourceOf = (client: Client, username: string) =>
    (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? `user:${username}`;

  function refused(client: Client, username: string | undefined, reason: RefusalReason, detail: object) {
    refusals.inc({ reason });
    logger.warn(
      {
        clientId: client.id.slice(0, LOGGED_CHARS),
        username: username?.slice(0, LOGGED_CHARS),
        reason,
        ...detail,
      },
      'mqtt client refused',
    );
  }

  /** A reply only for a command issued to this device; every other topic is not a reply. */
  function mayReply(identity: Identity, topic: string): boolean {
    const match = parseTopic(topic);
    if (match.match !== 'device' || match.topic.kind !== 'reply') return true;
    return options.isCommandOf?.(identity.deviceId, match.topic.commandId) ?? false;
  }

  const authenticate: AuthenticateHandler = (client, username, password, callback) => {
    const refuse = (reason: RefusalReason, returnCode: number, message: string) => {
      refused(client, username, reason, { returnCode });
      callback(Object.assign(new Error(message), { returnCode }), false);
    };
    if (username === undefined || username === '' || password === undefined) {
      refuse(
        'no_credentials',
        BAD_USERNAME_OR_PASSWORD,
        'a username (device id) and password (secret) are required',
      );
      return;
    }
    const source = sourceOf(client, username);
    credentials.verify(username, password, { cachedOnly: throttle.throttled(source) }).then(
      (result) => {
        if (!result.ok) {
          if (result.reason === 'throttled') {
            // 0x03 (server unavailable): try again later; this answer cost no hash.
            refuse(
              'throttled',
              SERVER_UNAVAILABLE,
              'too many failed logins from this address; try again later',
            );
            return;
          }
          if (result.reason === 'unknown_device' || result.reason === 'wrong_secret') throttle.failed(source);
          // 0x05 for a revoked device tells it that retrying the same secret is pointless; an unknown id
          // and a wrong secret share 0x04 so the answer does not reveal which device ids exist.
          if (result.reason === 'revoked') refuse('revoked', NOT_AUTHORIZED, 'this credential was revoked');
          else refuse(result.reason, BAD_USERNAME_OR_PASSWORD, 'bad user name or password');
          return;
        }
        const identity: Identity = { deviceId: username, role: result.role };
        // A device's client id is its device id: presence and the topic contract key on it.
        if (result.role === 'device' && client.id !== username) {
          refuse(
            'client_id_mismatch',
            IDENTIFIER_REJECTED,
            'a device must connect with its device id as client id',
          );
          return;
        }
        // Aedes keeps the CONNECT's will in _will before it authenticates; a will is a publish like any other.
        const will = (client as unknown as { _will?: { topic?: string } | null })._will;
        if (will?.topic !== undefined && !mayPublish(identity, will.topic)) {
          refuse('will_denied', NOT_AUTHORIZED, `not authorized to publish the will to ${will.topic}`);
          return;
        }
        identities.set(client, identity);
        callback(null, true);
      },
      (err: unknown) => {
        logger.error({ err, clientId: client.id }, 'credential check failed');
        refuse('store_failed', SERVER_UNAVAILABLE, 'credentials cannot be checked right now');
      },
    );
  };

  return {
    authenticate,
    checkPublish(client, packet) {
      const identity = identities.get(client);
      if (identity && mayPublish(identity, packet.topic) && mayReply(identity, packet.topic)) return null;
      refused(client, identity?.deviceId, 'publish_denied', { topic: packet.topic.slice(0, 256) });
      // [MQTT-3.3.5-2]: a server that does not authorize a PUBLISH must either acknowledge it as usual or close
      // the network connection; Aedes closes it when this hook calls back with an error, so no PUBACK is sent.
      return new Error(`not authorized to publish to ${packet.topic}`);
    },
    authorizeSubscribe(client, sub, callback) {
      const identity = client ? identities.get(client) : undefined;
      if (client && (!identity || !maySubscribe(identity, sub.topic))) {
        refused(client, identity?.deviceId, 'subscribe_denied', { filter: sub.topic.slice(0, 256) });
        // A null subscription is Aedes' way to answer SUBACK 0x80 (failure), MQTT 3.1.1 §3.9.3.
        callback(null, null);
        return;
      }
      callback(null, sub);
    },
    attach(aedes) {
      credentials.onRevoke((deviceId) => {
        // Aedes keeps connected clients by client id in `clients` without typing it.
        const clients = (aedes as unknown as { clients: Record<string, Client> }).clients;
        for (const client of Object.values(clients)) {
          if (identities.get(client)?.deviceId !== deviceId) continue;
          identities.delete(client);
          logger.info({ clientId: client.id, deviceId }, 'credential revoked: disconnecting');
          client.close();
        }
      });
    },
  };
}
