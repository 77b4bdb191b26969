import { CliError } from './api-client.js';

/**
 * CONNACK codes that refuse a client's credentials: MQTT 3.1.1 0x04 (bad user name or password) and 0x05 (not
 * authorized) [MQTT-3.2.2.3], MQTT 5 0x86 and 0x87. mqtt.js puts the code on the error it emits.
 */
const CREDENTIALS_REFUSED = new Set([0x04, 0x05, 0x86, 0x87]);

/**
 * What to tell a user whose simulated fleet could not connect: a broker that refused the credentials is
 * running, so "is it running?" would send them the wrong way.
 */
export function brokerConnectError(err: Error): CliError {
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'number' && CREDENTIALS_REFUSED.has(code)) {
    return new CliError(
      `${err.message}\nThe broker requires credentials (it runs with --auth required). For a simulated fleet add --provision ` +
        '(each device gets a credential through --api, with --api-token if the API has one); for one device use ' +
        '--username ID --password SECRET, as `fleetlog devices add ID` printed them.',
    );
  }
  return new CliError(`${err.message}\nIs the broker running? Point to it with --url or FLEETLOG_MQTT_URL.`);
}
