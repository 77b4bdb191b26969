import { getJson, isAbort, stateAtUrl, type StateAsOf } from './api.js';
import { h, setText } from './dom.js';
import { renderDeviceView } from './device-view.js';
import { formatTime } from './format.js';

/** Wait this long after the thumb stops before asking, so dragging does not fire a request per pixel. */
const DEBOUNCE_MS = 150;

export interface AsOfSlider {
  el: HTMLElement;
  /** Widens the slider to the device's latest event time; the chosen time stays put. */
  extendTo(lastSeenMs: number): void;
  destroy(): void;
}

/**
 * A slider over the device's history, in whole seconds from its first event. Moving it asks
 * GET /api/devices/:id/state?at= and shows the answer; the panel carries `data-at` (epoch ms asked for).
 */
export function createAsOfSlider(deviceId: string, firstSeenMs: number, lastSeenMs: number): AsOfSlider {
  const aborter = new AbortController();
  const base = Math.floor(firstSeenMs / 1000) * 1000;
  const seconds = (t: number) => Math.max(0, Math.ceil((t - base) / 1000));
  const slider = h('input', {
    type: 'range',
    id: 'as-of',
    min: 0,
    max: seconds(lastSeenMs),
    step: 1,
    value: seconds(lastSeenMs),
  });
  const output = h('output', { for: 'as-of' });
  const note = h('p', { class: 'muted', 'data-field': 'note' });
  const panel = h('div', { class: 'as-of-panel', 'aria-live': 'polite' });
  let timer: number | undefined;
  let asked = 0;

  const atOf = () => base + Number(slider.value) * 1000;
  const label = () => {
    const text = formatTime(atOf());
    setText(output, text);
    slider.setAttribute('aria-valuetext', text);
  };

  async function show(): Promise<void> {
    const at = atOf();
    const ticket = ++asked;
    try {
      const answer = await getJson<StateAsOf>(stateAtUrl(deviceId, at), aborter.signal);
      if (ticket !== asked) return; // a later move already asked again
      panel.dataset.at = String(at);
      panel.replaceChildren(answer.state ? renderDeviceView(answer.state) : h('p', {}, 'Nothing yet.'));
      setText(note, answer.note ?? `log position ${answer.position}`);
    } catch (err) {
      if (!isAbort(err)) setText(note, `Could not load the state: ${String(err)}`);
    }
  }

  slider.addEventListener('input', () => {
    label();
    clearTimeout(timer);
    timer = window.setTimeout(() => void show(), DEBOUNCE_MS);
  });
  label();
  void show();

  const el = h(
    'div',
    { class: 'as-of' },
    h('label', { for: 'as-of', class: 'as-of-label' }, 'State as of ', output),
    slider,
    h(
      'div',
      { class: 'range-ends muted' },
      h('span', {}, formatTime(base)),
      h('span', {}, 'use ← → Home End'),
    ),
    note,
    panel,
  );
  return {
    el,
    extendTo(t) {
      const max = seconds(t);
      if (max > Number(slider.max)) slider.max = String(max);
    },
    destroy() {
      aborter.abort();
      clearTimeout(timer);
    },
  };
}
