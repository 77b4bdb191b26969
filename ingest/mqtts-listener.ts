import type { AddressInfo, Socket } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../core/logger.js';
import type { TlsFiles } from '../core/tls-files.js';
import type { EmbeddedBroker } from './embedded-broker.js';

export interface MqttsListener {
  /** The port actually bound. */
  port: number;
  close(): Promise<void>;
}

/**
 * MQTT over TLS beside the plain TCP listener: the same Aedes, so authentication and topic rules are the
 * same on both, and the same admission (connection cap, socket guard, rate limit) on the decrypted stream.
 * A failed handshake (wrong protocol, untrusted client) only closes that socket.
 */
export async function startMqttsListener(options: {
  broker: Pick<EmbeddedBroker, 'aedes' | 'admit'>;
  host: string;
  port: number;
  tls: TlsFiles;
  logger: Logger;
}): Promise<MqttsListener> {
  const logger = options.logger.child({ component: 'mqtts' });
  // Tracked for the same reason as the plain listener's: sockets that never sent CONNECT keep close() waiting.
  const sockets = new Set<Socket>();
  const server = createServer({ cert: options.tls.cert, key: options.tls.key }, (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const admitted = options.broker.admit(socket);
    if (admitted) options.broker.aedes.handle(admitted);
  });
  server.on('tlsClientError', (err, socket) => {
    logger.debug({ err, remote: socket.remoteAddress }, 'TLS handshake failed');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
