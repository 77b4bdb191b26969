import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

/** A raw TCP connection to a broker: everything the server sent, and whether (and when) it closed. */
export interface RawConnection {
  socket: Socket;
  /** Bytes received so far. */
  received(): Buffer;
  /** Resolves true when the server closed the connection, false if it is still open after `ms`. */
  closedWithin(ms: number): Promise<boolean>;
  /** Resolves once `n` bytes have arrived (or rejects after `ms`). */
  bytes(n: number, ms?: number): Promise<Buffer>;
}

export async function openRaw(port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {}); // a reset after the server closes is expected here
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    wake();
  });
  socket.once('close', () => {
    closed = true;
    wake();
  });
  const until = (check: () => boolean, ms: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(check()), ms);
      const poll = () => {
        if (check()) {
          clearTimeout(timer);
          resolve(true);
        } else waiters.push(poll);
      };
      poll();
    });
  return {
    socket,
    received: () => Buffer.concat(chunks),
    closedWithin: (ms) => until(() => closed, ms),
    async bytes(n, ms = 5000) {
      const ok = await until(() => Buffer.concat(chunks).length >= n || closed, ms);
      const all = Buffer.concat(chunks);
      if (!ok || all.length < n) throw new Error(`expected ${n} bytes, got ${all.length}`);
      return all;
    },
  };
}

export const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);

/** A CONNECT for MQTT 3.1.1 with a clean session. */
export function connectPacket(clientId: string, extra: Partial<mqttPacket.IConnectPacket> = {}): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    clientId,
    ...extra,
  });
}

export function publishPacket(
  topic: string,
  payload: string,
  qos: 0 | 1 | 2 = 0,
  messageId?: number,
): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload,
    qos,
    dup: false,
    retain: false,
    ...(qos > 0 ? { messageId: messageId ?? 1 } : {}),
  });
}

/** Connects over a raw socket and waits for CONNACK 0x00. */
export async function openConnected(port: number, clientId: string): Promise<RawConnection> {
  const raw = await openRaw(port);
  raw.socket.write(connectPacket(clientId));
  const got = await raw.bytes(4);
  if (!got.subarray(0, 4).equals(CONNACK_ACCEPTED)) throw new Error(`no CONNACK 0: ${got.toString('hex')}`);
  return raw;
}

/**
 * Sends PINGREQ and resolves true once PINGRESP is the next thing the server sends: it read everything sent
 * before and kept the connection open (an explicit signal, rather than "not closed within a few ms"). Call it
 * once everything else the server would send (CONNACK, acks) has arrived.
 */
export async function answersPing(raw: RawConnection, ms = 5000): Promise<boolean> {
  const before = raw.received().length;
  raw.socket.write(Buffer.from([0xc0, 0x00]));
  try {
    const all = await raw.bytes(before + 2, ms);
    return all.subarray(before).equals(Buffer.from([0xd0, 0x00]));
  } catch {
    return false;
  }
}

/** Packet ids of every PUBACK (0x40) or PUBREC (0x50) in `bytes` (after a 4-byte CONNACK). */
export function acks(bytes: Buffer, type: 0x40 | 0x50): number[] {
  const ids: number[] = [];
  for (let i = 4; i + 4 <= bytes.length; i += 4) {
    if (bytes[i] === type && bytes[i + 1] === 2) ids.push(bytes.readUInt16BE(i + 2));
  }
  return ids;
}

/** The value of one Prometheus sample line, or 0 when absent. */
export async function metric(httpUrl: string, sample: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}
