import type { WriteHealth } from '../core/write-health.js';
import type { RejectReason } from './parse-message.js';

/** A message ingest turned away, kept so an operator can see what was sent and why. */
export interface DeadLetter {
  /** Position in the dead-letter store, from 1. */
  id: number;
  /** When it was received, epoch ms. */
  receivedAt: number;
  clientId: string;
  topic: string;
  deviceId?: string;
  reason: RejectReason;
  detail: string;
  /** Size of the whole payload, bytes. */
  payloadBytes: number;
  /** The first bytes of the payload (see `payloadEncoding`); bounded so a hostile payload cannot fill the disk. */
  payload: string;
  payloadEncoding: 'utf8' | 'base64';
  truncated: boolean;
}

export type NewDeadLetter = Omit<DeadLetter, 'id'>;

export interface DeadLetterQuery {
  /** Only letters with `id` greater than this. */
  after?: number;
  reason?: RejectReason;
  deviceId?: string;
  limit: number;
}

export interface DeadLetterStore {
  /** Resolves once the letter is durable: only then is the message acknowledged to the device. */
  add(letter: NewDeadLetter): Promise<void>;
  list(query: DeadLetterQuery): Promise<DeadLetter[]>;
  /** Totals by reason since the store was created: the whole fleet's, or one device's when `deviceId` is given. */
  counts(deviceId?: string): Promise<Partial<Record<RejectReason, number>>>;
  /** Whether letters reach the disk right now (stores on a local disk report it; /healthz answers 503 when not). */
  writeHealth?(): WriteHealth;
  close(): Promise<void>;
}

/** Bytes of a rejected payload kept in its dead letter. */
export const DEAD_LETTER_PAYLOAD_BYTES = 1024;

/** Builds the bounded copy of a payload: UTF-8 text when it is text, base64 otherwise. */
export function boundedPayload(
  payload: Buffer,
): Pick<DeadLetter, 'payload' | 'payloadEncoding' | 'truncated' | 'payloadBytes'> {
  const head = payload.subarray(0, DEAD_LETTER_PAYLOAD_BYTES);
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head);
  } catch {
    // Cutting at the limit may split a multi-byte character; only call it binary if the cut is not the reason.
    if (payload.length > DEAD_LETTER_PAYLOAD_BYTES) {
      text = new TextDecoder('utf-8', { fatal: false }).decode(head).replace(/\uFFFD+$/, '');
      if (text.includes('\uFFFD')) text = undefined;
    }
  }
  return {
    payload: text ?? head.toString('base64'),
    payloadEncoding: text === undefined ? 'base64' : 'utf8',
    truncated: payload.length > DEAD_LETTER_PAYLOAD_BYTES,
    payloadBytes: payload.length,
  };
}
