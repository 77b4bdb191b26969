import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { FleetlogError } from './errors.js';

/** A certificate and its key, read and checked once at startup; both listeners (MQTT, HTTPS) share them. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** The certificate's path, for startup lines. */
  certPath: string;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the path of a PEM file this process may read`,
      { cause: err },
    );
  }
}

/**
 * Undefined when neither file is set. Fails at startup, naming the file, when only one is set, a file cannot
 * be read, or the key does not belong to the certificate: found now rather than at the first TLS handshake.
 */
export function loadTlsFiles(settings: {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}): TlsFiles | undefined {
  const { tlsCert, tlsKey } = settings;
  if (tlsCert === undefined && tlsKey === undefined) return undefined;
  if (tlsCert === undefined || tlsKey === undefined) {
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `--tls-cert and --tls-key (FLEETLOG_TLS_CERT, FLEETLOG_TLS_KEY) go together; only ${tlsCert === undefined ? '--tls-key' : '--tls-cert'} is set`,
    );
  }
  const cert = readPem('--tls-cert', tlsCert);
  const key = readPem('--tls-key', tlsKey);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `--tls-cert ${tlsCert} and --tls-key ${tlsKey} are not a usable pair (${(err as Error).message}): both must be PEM, and the key must be the certificate's`,
      { cause: err },
    );
  }
  return { cert, key, certPath: tlsCert };
}
