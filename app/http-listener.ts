import type { AddressInfo } from 'node:net';
import { apiBindHost } from '../query/api-token.js';

export interface Listening {
  /** The URL to print, with the port actually bound. */
  url: string;
  address: AddressInfo;
  /** What the operator should know about how it is exposed. */
  securityNotes: string[];
}

/** The host to show in URLs: a wildcard bind is reached as localhost. */
export function shownHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : host;
}

/**
 * Starts an HTTP server, the same way for every role. The query API (`api: true`) stays on loopback without an API
 * token, whatever --host says (query/api-token.ts); a probe-only server (ingest's /healthz) binds --host as given.
 */
export async function listenHttp(
  app: { listen(options: { host: string; port: number }): Promise<unknown>; server: { address(): unknown } },
  options: { host: string; port: number; apiToken?: string; api: boolean; tls?: boolean },
): Promise<Listening> {
  const bind = options.api
    ? apiBindHost(options.host, options.apiToken)
    : { host: options.host, restricted: false };
  await app.listen({ host: bind.host, port: options.port });
  const address = app.server.address() as AddressInfo;
  const host = bind.restricted ? bind.host : shownHost(options.host);
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}`,
    address,
    securityNotes: bind.restricted
      ? [
          `HTTP API bound to ${bind.host} only: set --api-token (FLEETLOG_API_TOKEN) to serve it on ${options.host}`,
        ]
      : [],
  };
}
