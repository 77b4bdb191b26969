import { MsgHdrsImpl, type MsgHdrs } from 'nats';
import type { NewEvent, StoredEvent } from '../core/event.js';

/** Header that carries an event's per-device `version` (the stream sequence is its `seq`). */
export const VERSION_HEADER = 'Fleetlog-Version';

// A subject token may not contain `.` (the separator), whitespace, `*` or `>`; device ids may contain `.`.
// Everything outside [A-Za-z0-9_:-] becomes `=` plus the two hex digits of each UTF-8 byte, `=` included,
// so the mapping is reversible and injective.
const SAFE = /^[A-Za-z0-9_:-]$/;

/** The subject token for a device id: `a.b:1` → `a=2Eb:1`. */
export function encodeDeviceToken(deviceId: string): string {
  let out = '';
  for (const ch of deviceId) {
    if (SAFE.test(ch)) out += ch;
    else
      for (const byte of Buffer.from(ch, 'utf8'))
        out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of `encodeDeviceToken`. */
export function decodeDeviceToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The stored body: the whole envelope without the positions (`seq` is the stream's, `version` is a header).
 * Every other field is kept, including optional ones this file does not name, so the envelope round-trips.
 */
export function encodeEvent(event: NewEvent): Uint8Array {
  if (!('seq' in event) && !('version' in event)) return Buffer.from(JSON.stringify(event));
  const envelope: Record<string, unknown> = { ...event };
  delete envelope.seq;
  delete envelope.version;
  return Buffer.from(JSON.stringify(envelope));
}

/**
 * The headers of one event's publish: its id for the server's duplicate window, its version, and the fence
 * (`Nats-Expected-Last-Sequence`): the server stores it only if the stream's last sequence is `after`.
 */
export function publishHeaders(msgId: string, version: number, after: number): MsgHdrs {
  // A header value must not hold CR or LF (it would end the header); the id is the only one not a number.
  if (/[\r\n]/.test(msgId)) throw new Error(`event id ${JSON.stringify(msgId)} holds a line break`);
  // One per event: filled through the class's public map, not `set`, whose key canonicalization and value
  // checks cost about as much as the rest of the encoding.
  const h = new MsgHdrsImpl();
  h.headers.set('Nats-Msg-Id', [msgId]);
  h.headers.set(VERSION_HEADER, [String(version)]);
  h.headers.set('Nats-Expected-Last-Sequence', [String(after)]);
  return h;
}

/** A stored message back into an event; the body was written by `encodeEvent`, so it is trusted. */
export function decodeEvent(seq: number, hdrs: MsgHdrs | undefined, body: Uint8Array): StoredEvent {
  const version = Number(hdrs?.get(VERSION_HEADER) ?? 0);
  const event = JSON.parse(Buffer.from(body).toString('utf8')) as NewEvent;
  return { ...event, seq, version };
}
