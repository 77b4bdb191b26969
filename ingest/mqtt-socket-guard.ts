import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';

/** Why the guard closed a connection; the `reason` label of `fleetlog_mqtt_protocol_violations_total`. */
export type ProtocolViolation =
  | 'malformed_packet'
  | 'unacceptable_protocol_level'
  | 'packet_too_large'
  | 'invalid_utf8'
  | 'null_character'
  | 'qos2_without_pubrel';

export const PROTOCOL_VIOLATIONS: readonly ProtocolViolation[] = [
  'malformed_packet',
  'unacceptable_protocol_level',
  'packet_too_large',
  'invalid_utf8',
  'null_character',
  'qos2_without_pubrel',
];

export interface MqttGuardOptions {
  /** Largest remaining length a fixed header may announce, bytes; larger packets close the connection. */
  maxPacketBytes: number;
  /** Inbound QoS 2 PUBLISHes a connection may leave without PUBREL before it is closed. */
  maxQos2AwaitingPubrel: number;
  /**
   * Called with the packet id of each PUBACK the client sends, and its connection, before Aedes reads it. Aedes'
   * own `ack` event names neither the packet id nor the packet for a clean session; the command side needs to know
   * which of its QoS 1 commands a device acknowledged (control/aedes-downlink.ts).
   */
  onPuback?: (packetId: number, stream: Duplex) => void;
}

export interface ViolationReport {
  reason: ProtocolViolation;
  detail: string;
  /** The client id of the connection's CONNECT, once seen. */
  clientId?: string;
}

/** Space a PUBLISH needs besides its payload: topic (MQTT string, ≤ 65,535 bytes + 2), packet id, MQTT 5 properties. */
export const PACKET_OVERHEAD_BYTES = 2 + 65_535 + 2 + 1_024;

const CONNECT = 1;
const PUBLISH = 3;
const PUBACK = 4;
const PUBREL = 6;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;

/** Thrown only inside `inspect` when a packet ends before a field it announces; always caught in the guard. */
class Truncated extends Error {}

/** Result of inspecting a packet's body prefix: fine, a violation, or "give me this many bytes first". */
type Verdict = undefined | { reason: ProtocolViolation; detail: string; reply?: Buffer } | { need: number };

/** CONNACK with return code 0x01, unacceptable protocol version [MQTT-3.1.2-2]. */
const CONNACK_UNACCEPTABLE_PROTOCOL = Buffer.from([0x20, 0x02, 0x00, 0x01]);

interface PacketState {
  protocolLevel: number;
  clientId: string | undefined;
  /** Created with the first QoS 2 PUBLISH: most devices never send one. */
  qos2Awaiting: Set<number> | undefined;
}

/**
 * Sits between a connection and `aedes.handle`: follows MQTT framing (fixed header, remaining-length varint)
 * across chunk boundaries and closes the connection on what Aedes 1.2 would accept but MQTT 3.1.1 forbids.
 * Aedes reads its connection only through `read()` (on 'readable'), so wrapping that one method sees every chunk
 * before Aedes parses it, without a second stream and without copying: packets that lie inside one chunk are
 * inspected in place; only the few header bytes of a packet split across chunks are copied.
 * Returns the stream itself, for `aedes.handle(guardMqttStream(socket, …))`. What it keeps per connection is one
 * object (a fleet of idle devices is many connections): `options` and `onViolation` may be shared by all of them.
 */
export function guardMqttStream<T extends Duplex>(
  stream: T,
  options: MqttGuardOptions,
  onViolation: (report: ViolationReport) => void,
): T {
  // Kept unbound (a bound copy per connection is what this avoids) and called on the stream (StreamGuard.read).
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const guard = new StreamGuard(stream, stream.read, options, onViolation);
  stream.read = (size?: number): unknown => guard.read(size);
  return stream;
}

/** One connection's framing state, carried from one chunk to the next. */
class StreamGuard implements PacketState {
  protocolLevel = 4;
  clientId: string | undefined = undefined;
  qos2Awaiting: Set<number> | undefined = undefined;
  /** First byte of the current packet's fixed header; -1 = between packets. */
  private headerByte = -1;
  /** Remaining length, decoded so far. */
  private length = 0;
  /** Varint bytes consumed. */
  private lengthBytes = 0;
  /** Weight of the next varint byte. */
  private multiplier = 1;
  /** Body bytes of the current packet still to come; -1 while the length is being read. */
  private remaining = -1;
  /** Body bytes the inspector needs before it can judge the packet; 0 = judged. */
  private want = 0;
  /** Copies of the first body bytes of a packet split across chunks. */
  private prefix: Buffer[] | undefined = undefined;
  private prefixLength = 0;
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    private readonly originalRead: Duplex['read'],
    private readonly options: MqttGuardOptions,
    private readonly onViolation: (report: ViolationReport) => void,
  ) {}

  read(size?: number): unknown {
    if (this.closed) return null;
    const chunk = this.originalRead.call(this.stream, size) as unknown;
    if (!Buffer.isBuffer(chunk)) return chunk;
    return this.scan(chunk) ? chunk : null;
  }

  private fail(reason: ProtocolViolation, detail: string, reply?: Buffer): false {
    this.closed = true;
    this.onViolation({ reason, detail, ...(this.clientId === undefined ? {} : { clientId: this.clientId }) });
    const stream = this.stream;
    if (reply) stream.end(reply, () => stream.destroy());
    else stream.destroy();
    return false;
  }

  /** Judges a packet from its first body bytes; false after a violation (the connection is closed). */
  private judge(buf: Buffer, start: number, count: number): boolean {
    let verdict: Verdict;
    try {
      verdict =
        this.headerByte >> 4 === PUBLISH
          ? inspectPublish(this.headerByte, buf, start, count, this.length, this, this.options)
          : inspect(
              this.headerByte,
              buf.subarray(start, start + count),
              this.length,
              this,
              this.options,
              this.stream,
            );
    } catch (err) {
      if (!(err instanceof Truncated)) throw err;
      return this.fail('malformed_packet', 'a field runs past the end of its packet');
    }
    if (verdict === undefined) this.want = 0;
    else if ('reason' in verdict) return this.fail(verdict.reason, verdict.detail, verdict.reply);
    else this.want = verdict.need; // always more than the bytes judged, and at most `length`
    return true;
  }

  /** Walks one chunk; false after a violation. */
  private scan(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.headerByte < 0) {
        this.headerByte = chunk[i++] as number;
        this.length = 0;
        this.lengthBytes = 0;
        this.multiplier = 1;
        this.remaining = -1;
        continue;
      }
      if (this.remaining < 0) {
        const b = chunk[i++] as number;
        this.length += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (b & 0x80) {
          // The remaining length takes at most four bytes (MQTT 3.1.1 §2.2.3).
          if (this.lengthBytes === 4)
            return this.fail('malformed_packet', 'remaining length is longer than 4 bytes');
          continue;
        }
        // Closed before the body arrives, so an oversize packet is never buffered.
        if (this.length > this.options.maxPacketBytes) {
          return this.fail(
            'packet_too_large',
            `packet announces ${this.length} bytes; the limit is ${this.options.maxPacketBytes}`,
          );
        }
        this.remaining = this.length;
        this.want = initialWant(this.headerByte >> 4, this.length);
        this.prefix = undefined;
        this.prefixLength = 0;
        if (this.remaining === 0) this.headerByte = -1;
        continue;
      }
      const available = Math.min(this.remaining, chunk.length - i);
      if (this.want > 0) {
        if (this.prefixLength === 0 && available >= this.want) {
          // The common case: everything to inspect is in this chunk; judge it in place.
          if (!this.judge(chunk, i, available)) return false;
          if (this.want > available) {
            this.prefix = [Buffer.from(chunk.subarray(i, i + available))];
            this.prefixLength = available;
          }
        } else {
          // Split across chunks: copy just the bytes the inspector asks for, possibly in several rounds.
          const prefix = (this.prefix ??= []);
          let used = 0;
          while (this.want > this.prefixLength && used < available) {
            const take = Math.min(available - used, this.want - this.prefixLength);
            prefix.push(Buffer.from(chunk.subarray(i + used, i + used + take)));
            used += take;
            this.prefixLength += take;
            if (this.prefixLength >= this.want) {
              const body = Buffer.concat(prefix, this.prefixLength);
              if (!this.judge(body, 0, body.length)) return false;
              prefix.length = 0;
              prefix.push(body);
            }
          }
        }
      }
      i += available;
      this.remaining -= available;
      if (this.remaining === 0) {
        this.headerByte = -1;
        this.prefix = undefined;
        this.prefixLength = 0;
      }
    }
    return true;
  }
}

/** How many body bytes of a packet of this type the guard looks at first. */
function initialWant(type: number, length: number): number {
  switch (type) {
    case PUBLISH:
    case PUBREL:
    case PUBACK:
      return Math.min(2, length);
    case CONNECT:
    case SUBSCRIBE:
    case UNSUBSCRIBE:
      return length; // small control packets, bounded by maxPacketBytes: read whole
    default:
      return 0;
  }
}

/**
 * The hot path: only the topic of a PUBLISH (and the packet id of QoS 2) is looked at, in place, at `start` of
 * `buf` where `available` bytes of the packet's body are.
 */
function inspectPublish(
  header: number,
  buf: Buffer,
  start: number,
  available: number,
  length: number,
  state: PacketState,
  options: MqttGuardOptions,
): Verdict {
  const qos = (header >> 1) & 3;
  if (qos === 3) return { reason: 'malformed_packet', detail: 'PUBLISH with QoS 3 [MQTT-3.3.1-4]' };
  const topicLength = ((buf[start] as number) << 8) | (buf[start + 1] as number);
  const need = 2 + topicLength + (qos > 0 ? 2 : 0);
  if (need > length) throw new Truncated();
  if (available < need) return { need };
  const problem = checkString(buf, start + 2, start + 2 + topicLength, 'topic');
  if (problem) return problem;
  if (qos === 2) {
    const at = start + 2 + topicLength;
    const awaiting = (state.qos2Awaiting ??= new Set());
    awaiting.add(((buf[at] as number) << 8) | (buf[at + 1] as number));
    // MQTT 3.1.1 §4.3.3: the receiver keeps the packet id until PUBREL; a client that never sends it grows
    // the broker's state without bound (and its QoS 2 PUBLISHes would be ingested without ever completing).
    if (awaiting.size > options.maxQos2AwaitingPubrel) {
      return {
        reason: 'qos2_without_pubrel',
        detail: `more than ${options.maxQos2AwaitingPubrel} QoS 2 messages awaiting PUBREL`,
      };
    }
  }
  return undefined;
}

function inspect(
  header: number,
  body: Buffer,
  length: number,
  state: PacketState,
  options: MqttGuardOptions,
  stream: Duplex,
): Verdict {
  const type = header >> 4;
  switch (type) {
    case PUBLISH:
      return inspectPublish(header, body, 0, body.length, length, state, options);
    case PUBREL:
      if (body.length < 2) throw new Truncated();
      state.qos2Awaiting?.delete(body.readUInt16BE(0));
      return undefined;
    case PUBACK:
      if (body.length < 2) throw new Truncated();
      options.onPuback?.(body.readUInt16BE(0), stream);
      return undefined;
    case CONNECT:
      return inspectConnect(new FieldReader(body), state);
    case SUBSCRIBE:
    case UNSUBSCRIBE: {
      const reader = new FieldReader(body);
      reader.skip(2); // packet id
      if (state.protocolLevel === 5) reader.skip(reader.varint());
      while (!reader.done()) {
        const [start, end] = reader.string();
        const problem = checkString(body, start, end, 'topic filter');
        if (problem) return problem;
        if (type === SUBSCRIBE) reader.skip(1); // requested QoS / options
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function inspectConnect(reader: FieldReader, state: PacketState): Verdict {
  const body = reader.buffer;
  const [nameStart, nameEnd] = reader.string();
  const name = body.toString('latin1', nameStart, nameEnd);
  const rawLevel = reader.byte();
  // [MQTT-3.1.2-2]: an unsupported level gets CONNACK 0x01 and a close. mqtt-packet only errors on it, so
  // Aedes would close without the CONNACK. (A wrong protocol name is left to Aedes: no CONNACK then [MQTT-3.1.2-1].)
  // The high bit marks a bridge connection (Mosquitto); the level is in the low bits.
  const level = rawLevel & 0x7f;
  state.protocolLevel = level;
  if ((name === 'MQTT' && level !== 4 && level !== 5) || (name === 'MQIsdp' && level !== 3)) {
    return {
      reason: 'unacceptable_protocol_level',
      detail: `protocol level ${rawLevel} is not supported [MQTT-3.1.2-2]`,
      reply: CONNACK_UNACCEPTABLE_PROTOCOL,
    };
  }
  const flags = reader.byte();
  reader.skip(2); // keep alive
  if (state.protocolLevel === 5) reader.skip(reader.varint());
  const [idStart, idEnd] = reader.string();
  const idProblem = checkString(body, idStart, idEnd, 'client id');
  if (idProblem) return idProblem;
  state.clientId = body.toString('utf8', idStart, idEnd);
  if (flags & 0x04) {
    if (state.protocolLevel === 5) reader.skip(reader.varint()); // will properties
    const [start, end] = reader.string();
    const problem = checkString(body, start, end, 'will topic');
    if (problem) return problem;
    reader.string(); // will payload: binary data, not checked
  }
  if (flags & 0x80) {
    const [start, end] = reader.string();
    const problem = checkString(body, start, end, 'username');
    if (problem) return problem;
  }
  return undefined;
}

/**
 * [MQTT-1.5.3-1]: a UTF-8 string must be well-formed (no surrogates, no overlongs) or the connection closes;
 * [MQTT-1.5.3-2]: it must not contain U+0000. ASCII, the usual case, is checked byte by byte without decoding.
 */
function checkString(
  body: Buffer,
  start: number,
  end: number,
  what: string,
): { reason: ProtocolViolation; detail: string } | undefined {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = body[i] as number;
    if (b === 0) return { reason: 'null_character', detail: `${what} contains U+0000 [MQTT-1.5.3-2]` };
    if (b >= 0x80) ascii = false;
  }
  if (!ascii && !isUtf8(body.subarray(start, end))) {
    return { reason: 'invalid_utf8', detail: `${what} is not well-formed UTF-8 [MQTT-1.5.3-1]` };
  }
  return undefined;
}

/** Reads MQTT fields from a packet body; throws Truncated when a field runs past its end. */
class FieldReader {
  private at = 0;
  constructor(readonly buffer: Buffer) {}
  done(): boolean {
    return this.at >= this.buffer.length;
  }
  skip(n: number): void {
    if (this.at + n > this.buffer.length) throw new Truncated();
    this.at += n;
  }
  byte(): number {
    this.skip(1);
    return this.buffer[this.at - 1] as number;
  }
  /** An MQTT string or binary field: returns its [start, end) within the buffer. */
  string(): [number, number] {
    this.skip(2);
    const len = this.buffer.readUInt16BE(this.at - 2);
    const start = this.at;
    this.skip(len);
    return [start, start + len];
  }
  varint(): number {
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const b = this.byte();
      value += (b & 0x7f) * 128 ** i;
      if (!(b & 0x80)) return value;
    }
    throw new Truncated();
  }
}
