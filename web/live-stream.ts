import { EVENT_TYPES } from '../core/event.js';
import type { StoredEvent } from './api.js';

export type StreamStatus = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows GET /api/stream. The server names each message after its event type, so one listener per type.
 * EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed across a short outage.
 * Returns a function that closes the stream.
 */
export function openLiveStream(
  query: string,
  onEvent: (e: StoredEvent) => void,
  onStatus: (s: StreamStatus) => void,
): () => void {
  const source = new EventSource(`/api/stream${query}`);
  onStatus('connecting');
  source.addEventListener('open', () => onStatus('live'));
  source.addEventListener('error', () => onStatus('reconnecting'));
  const handle = (m: MessageEvent<string>) => onEvent(JSON.parse(m.data) as StoredEvent);
  for (const type of EVENT_TYPES) source.addEventListener(type, handle);
  return () => source.close();
}
