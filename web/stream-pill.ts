import { h, setText } from './dom.js';
import type { StreamStatus } from './live-stream.js';

/** Shows whether the page is following the live stream. */
export function streamPill(): { el: HTMLElement; set(s: StreamStatus): void } {
  const el = h('span', { class: 'pill connecting', role: 'status', 'data-testid': 'stream' }, 'connecting…');
  return {
    el,
    set(s) {
      el.className = `pill ${s}`;
      setText(el, s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'reconnecting…');
    },
  };
}
