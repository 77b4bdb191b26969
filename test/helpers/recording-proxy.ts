import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One request the proxy forwarded, as the upstream server answered it. */
export interface RecordedRequest {
  method: string;
  url: string;
  /** The body, gunzipped when it was sent with `content-encoding: gzip`. */
  body: string;
  /** The upstream's status; 0 when the upstream could not be reached (the client's connection was reset). */
  status: number;
}

export interface RecordingProxy {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `target` that records every request with the status the target gave it,
 * so a test sees at the HTTP level what was sent and what the server accepted. When the target is unreachable it
 * resets the client's connection, so the client sees a connection error as it would without the proxy.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString();
      const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', body, status: 0 };
      requests.push(record);
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          record.status = answer.statusCode ?? 0;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on('error', () => req.socket.destroy());
      out.end(raw);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The lines of every write the upstream accepted (2xx), in order. */
export function acceptedLines(requests: readonly RecordedRequest[]): string[] {
  return requests
    .filter((r) => r.status >= 200 && r.status < 300 && r.url.startsWith('/api/v2/write'))
    .flatMap((r) => r.body.split('\n'))
    .filter((l) => l.length > 0);
}
