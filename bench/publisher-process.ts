/**
 * The load generator, run as its own process (`node dist/bench/publisher-process.js '<json options>'`) so the
 * server under test and the publishers each get a core. Prints one JSON line with what it measured.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { toRanges, type AckedRanges } from './acked-ids.js';

export interface PublisherOptions {
  url: string;
  /** Publishing connections (devices). */
  clients: number;
  /** QoS 1 messages each client keeps in flight. */
  window: number;
  /** Stop after this many ms of sending. */
  durationMs: number;
  /** Total messages per second across all clients; 0 = as fast as acknowledgements allow. */
  rate: number;
  /** Device id prefix; each run should use a fresh one so seqs never collide with an earlier run's. */
  prefix: string;
  /** Print a `connected` line once every client is connected (before sending starts). */
  announce?: boolean;
}

export interface PublisherResult {
  sent: number;
  acked: number;
  errors: number;
  /** From the first publish to the last acknowledgement, ms. */
  elapsedMs: number;
  /** Which messages were acknowledged, per device id: the server side is checked for each (bench/acked-ids.ts). */
  ackedIds: AckedRanges;
}

/**
 * About 200 bytes of the contract's wrapped telemetry form, with six readings a real sensor might send
 * (`sentAt` is the publish time in epoch ms, for latency; `n` repeats `seq` as a reading, so a stored event says
 * which message it was without relying on the shape of event ids).
 */
function payload(seq: number): string {
  const now = performance.timeOrigin + performance.now();
  const v = (seq % 1000) / 10;
  return (
    `{"ts":${Math.round(now)},"seq":${seq},"metrics":{"temperature":${(18 + v / 10).toFixed(2)},"humidity":${(40 + v / 5).toFixed(2)},` +
    `"pressure":${(1000 + v).toFixed(2)},"battery_voltage":${(3.3 + v / 1000).toFixed(3)},"rssi":${-60 - (seq % 30)},"sentAt":${now.toFixed(3)},"n":${seq}}}`
  );
}

async function main(options: PublisherOptions): Promise<PublisherResult> {
  // Connect in chunks: ten thousand simultaneous handshakes only measure the accept queue.
  const clients: MqttClient[] = [];
  for (let i = 0; i < options.clients; i += 200) {
    const chunk = Array.from({ length: Math.min(200, options.clients - i) }, (_, k) =>
      mqtt.connectAsync(options.url, {
        clientId: `${options.prefix}-${i + k}`,
        protocolVersion: 4,
        reconnectPeriod: 0,
        clean: true,
        keepalive: 60,
      }),
    );
    clients.push(...(await Promise.all(chunk)));
  }
  if (options.announce) process.stdout.write('connected\n');
  let sent = 0;
  let acked = 0;
  let errors = 0;
  const started = performance.now();
  let lastAck = started;
  const deadline = started + options.durationMs;
  const seqs = clients.map(() => 0);
  const ackedSeqs: number[][] = clients.map(() => []);

  const publishOne = (i: number, onDone: () => void) => {
    const client = clients[i] as MqttClient;
    const seq = ++(seqs[i] as number);
    sent++;
    client.publish(`devices/${options.prefix}-${i}/telemetry`, payload(seq), { qos: 1 }, (err) => {
      if (err) errors++;
      else {
        acked++;
        ackedSeqs[i]?.push(seq);
        lastAck = performance.now();
      }
      onDone();
    });
  };

  await new Promise<void>((resolve) => {
    let inflight = 0;
    const maybeDone = () => {
      if (inflight === 0 && performance.now() >= deadline) resolve();
    };
    if (options.rate === 0) {
      // Closed loop: every acknowledgement frees a slot in that client's window.
      const pump = (i: number) => {
        if (performance.now() >= deadline) return maybeDone();
        inflight++;
        publishOne(i, () => {
          inflight--;
          pump(i);
        });
      };
      for (let i = 0; i < clients.length; i++) for (let w = 0; w < options.window; w++) pump(i);
    } else {
      // Open loop: a paced schedule, round-robin over clients, checked every millisecond.
      let next = 0;
      const timer = setInterval(() => {
        const due = Math.floor(((performance.now() - started) / 1000) * options.rate);
        while (next < due && performance.now() < deadline) {
          inflight++;
          publishOne(next % clients.length, () => {
            inflight--;
            maybeDone();
          });
          next++;
        }
        if (performance.now() >= deadline) {
          clearInterval(timer);
          maybeDone();
        }
      }, 1);
    }
    // Bounded: never wait more than 30 s past the deadline for acknowledgements.
    setTimeout(resolve, options.durationMs + 30_000).unref();
  });
  await Promise.all(clients.map((c) => c.endAsync(true)));
  const ackedIds: AckedRanges = {};
  ackedSeqs.forEach((list, i) => {
    if (list.length > 0) ackedIds[`${options.prefix}-${i}`] = toRanges(list);
  });
  return { sent, acked, errors, elapsedMs: lastAck - started, ackedIds };
}

const arg = process.argv[2];
if (arg) {
  main(JSON.parse(arg) as PublisherOptions).then(
    (result) => {
      // Exit only once the line is written: stdout to a pipe may still be flushing a quarter of a megabyte.
      process.stdout.write(`result ${JSON.stringify(result)}\n`, () => process.exit(0));
    },
    (err: unknown) => {
      process.stderr.write(`publisher failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
