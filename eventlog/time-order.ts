import type { TimeCursor } from './event-log.js';

interface Timed {
  time: number;
  seq: number;
}

export function byTimeThenSeq(a: Timed, b: Timed): number {
  return a.time - b.time || a.seq - b.seq;
}

/** True when `e` comes strictly after the cursor in (time, seq) order. */
export function afterCursor(e: Timed, cursor: TimeCursor): boolean {
  return e.time > cursor.time || (e.time === cursor.time && e.seq > cursor.seq);
}
