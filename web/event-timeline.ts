import { EVENT_TYPES, type EventType } from '../core/event.js';
import { eventsUrl, getJson, isAbort, type EventPage, type StoredEvent } from './api.js';
import { h, setText } from './dom.js';
import { formatTime, summarize } from './format.js';

const PAGE_SIZE = 20;
/** Telemetry would bury the rarer events a timeline is for; it is one click away. */
const DEFAULT_TYPES: readonly EventType[] = EVENT_TYPES.filter((t) => t !== 'TelemetryRecorded');

export interface EventTimeline {
  el: HTMLElement;
  /** Shows events from this time on, from the first page. */
  setFrom(fromMs: number): void;
  /** A streamed event: shown at once when it belongs on the page being read. */
  live(e: StoredEvent): void;
  destroy(): void;
}

/**
 * One device's events in event-time order, a page at a time from GET /api/devices/:id/events. The API pages
 * forward with a cursor, so "previous" replays the cursors that led here.
 */
export function createEventTimeline(deviceId: string, fromMs: number): EventTimeline {
  const aborter = new AbortController();
  let from = fromMs;
  const types = new Set<EventType>(DEFAULT_TYPES);
  /** Cursors of the pages before the current one; the first page has none. */
  let cursors: (string | null)[] = [];
  let current: string | null = null;
  let shown: StoredEvent[] = [];
  let next: string | null = null;
  let ticket = 0;

  const list = h('ol', { class: 'timeline', 'data-testid': 'timeline' });
  const prev = h(
    'button',
    { type: 'button', onclick: () => void go(cursors.pop() ?? null, false) },
    '← Previous',
  );
  const nextButton = h('button', { type: 'button', onclick: () => void go(next, true) }, 'Next →');
  const pageInfo = h('span', { class: 'muted' });
  const toggles = EVENT_TYPES.map((type) =>
    h(
      'label',
      { class: 'check' },
      h('input', {
        type: 'checkbox',
        value: type,
        checked: types.has(type),
        onchange: (ev) => {
          if ((ev.target as HTMLInputElement).checked) types.add(type);
          else types.delete(type);
          cursors = [];
          void go(null, false);
        },
      }),
      type,
    ),
  );

  function item(e: StoredEvent): HTMLLIElement {
    const data = e.type === 'DeviceEventReported' ? { [e.data.name]: e.data.data } : e.data;
    return h(
      'li',
      { 'data-seq': e.seq },
      h('time', { datetime: new Date(e.time).toISOString() }, formatTime(e.time)),
      h('span', { class: `type ${e.type}` }, e.type),
      h('code', {}, summarize(data)),
    );
  }

  function draw(): void {
    list.replaceChildren(...shown.map(item));
    if (shown.length === 0)
      list.append(h('li', { class: 'muted' }, 'No events of these types in this range.'));
    prev.disabled = cursors.length === 0;
    nextButton.disabled = next === null;
    setText(pageInfo, `page ${cursors.length + 1}`);
  }

  async function go(after: string | null, forward: boolean): Promise<void> {
    const mine = ++ticket;
    if (types.size === 0) {
      // The API reads an empty type list as "every type"; none ticked means none shown.
      [cursors, current, shown, next] = [[], null, [], null];
      draw();
      return;
    }
    try {
      const page = await getJson<EventPage>(
        eventsUrl(deviceId, { from, types: [...types], after, limit: PAGE_SIZE }),
        aborter.signal,
      );
      if (mine !== ticket) return;
      if (forward) cursors.push(current);
      current = after;
      shown = page.events;
      next = page.next;
      draw();
    } catch (err) {
      if (!isAbort(err)) setText(pageInfo, `Could not load events: ${String(err)}`);
    }
  }

  void go(null, false);
  return {
    el: h(
      'div',
      {},
      h('fieldset', { class: 'types' }, h('legend', {}, 'Show'), ...toggles),
      list,
      h('div', { class: 'pager' }, prev, pageInfo, nextButton),
    ),
    setFrom(t) {
      from = t;
      cursors = [];
      void go(null, false);
    },
    live(e) {
      // Only on the last page and only if it sorts last: otherwise it shows up when paging gets there.
      const last = shown.at(-1);
      if (next !== null || !types.has(e.type) || e.time < from) return;
      if (last && (e.time < last.time || (e.time === last.time && e.seq <= last.seq))) return;
      if (shown.length < PAGE_SIZE) {
        shown.push(e);
      } else if (last) {
        next = `${last.time}_${last.seq}`;
      }
      draw();
    },
    destroy() {
      aborter.abort();
    },
  };
}
