import { CliError, requestJson, type ApiTarget } from './api-client.js';

export type FleetCredentials = Record<string, { username: string; password: string }>;

/**
 * Gives each simulated device a credential through the server's API (`POST /api/devices/:id/credentials`), so
 * a fleet can run against `--auth required`. A device id that already has one is revoked and issued a new
 * secret: simulated devices keep no secrets between runs. Secrets live only in this process.
 */
export async function provisionCredentials(
  api: ApiTarget,
  deviceIds: readonly string[],
  concurrency = 8,
): Promise<FleetCredentials> {
  const credentials: FleetCredentials = {};
  let next = 0;
  const issue = async (deviceId: string): Promise<string> => {
    const path = `/api/devices/${encodeURIComponent(deviceId)}/credentials`;
    try {
      return (await requestJson<{ secret: string }>(api, 'POST', path)).secret;
    } catch (err) {
      if (!(err instanceof CliError && err.message.startsWith('409 '))) throw err;
      await requestJson(api, 'DELETE', path);
      return (await requestJson<{ secret: string }>(api, 'POST', path)).secret;
    }
  };
  const worker = async () => {
    while (next < deviceIds.length) {
      const deviceId = deviceIds[next++] as string;
      credentials[deviceId] = { username: deviceId, password: await issue(deviceId) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, deviceIds.length) }, worker));
  return credentials;
}
