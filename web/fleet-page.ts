import {
  deadLetterTotal,
  getJson,
  isAbort,
  listAllDevices,
  seriesUrl,
  type Series,
  type StoredEvent,
} from './api.js';
import { h, setText } from './dom.js';
import {
  applyAccounting,
  applyStreamed,
  applyView,
  deviceAlerts,
  compareDevices,
  newFleetDevice,
  ratePerMinute,
  SPARK_EVERY_MS,
  type FleetDevice,
  type SortKey,
} from './fleet-model.js';
import { formatAgo, formatNumber, formatStatus } from './format.js';
import { openLiveStream } from './live-stream.js';
import { createSparkline, type Sparkline } from './sparkline.js';
import { streamPill } from './stream-pill.js';

/** The sparkline covers the last hour in 1-minute windows: served from the 1-minute rollups, cheap for a fleet. */
const SPARK_SPAN_MS = 3_600_000;
/** Live events are batched into one render at most this often. */
const RENDER_DELAY_MS = 250;
const DEAD_LETTER_POLL_MS = 5_000;
/** Counter resets are found by the server's accounting fold: the list is read again this often for them. */
const ACCOUNTING_POLL_MS = 15_000;
/** Sparkline requests in flight at once, so a large fleet does not queue the dashboard's other requests. */
const SPARK_CONCURRENCY = 4;

const COLUMNS: { key: SortKey | null; label: string }[] = [
  { key: 'id', label: 'Device' },
  { key: 'status', label: 'Status' },
  { key: 'lastSeen', label: 'Last seen' },
  { key: 'rate', label: 'Msg/min' },
  { key: null, label: 'Last hour' },
  { key: 'events', label: 'Events' },
];

interface Row {
  device: FleetDevice;
  tr: HTMLTableRowElement;
  cells: {
    status: HTMLElement;
    alerts: HTMLElement;
    lastSeen: HTMLElement;
    rate: HTMLElement;
    last: HTMLElement;
    events: HTMLElement;
  };
  sparkline: Sparkline;
}

export function mountFleetPage(root: HTMLElement): () => void {
  const aborter = new AbortController();
  const rows = new Map<string, Row>();
  const openedAt = Date.now();
  let metric = '';
  let sortKey: SortKey = 'id';
  let sortDir: 1 | -1 = 1;
  let shownOrder = '';
  let loaded = false;
  const buffered: StoredEvent[] = [];

  const pill = streamPill();
  const deadLetters = h(
    'a',
    { href: '/api/dead-letters', class: 'dead-letters', 'data-testid': 'dead-letters' },
    '…',
  );
  const filter = h('input', {
    type: 'search',
    id: 'filter',
    placeholder: 'device id contains…',
    autocomplete: 'off',
    oninput: () => render(true),
  });
  const statusFilter = h(
    'select',
    { id: 'status-filter', onchange: () => render(true) },
    h('option', { value: '' }, 'all'),
    h('option', { value: 'online' }, 'online'),
    h('option', { value: 'offline' }, 'offline'),
  );
  const sparkHeader = h('span', {}, 'Last hour');
  const metricSelect = h('select', {
    id: 'metric',
    onchange: () => {
      metric = metricSelect.value;
      setText(sparkHeader, `${metric} · last hour`);
      void loadSparklines();
    },
  });
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const message = h('p', { class: 'message', role: 'status' });
  const sortButtons = new Map<SortKey, HTMLButtonElement>();
  const headers = COLUMNS.map(({ key, label }) => {
    if (key === null) return h('th', { scope: 'col' }, sparkHeader);
    const button = h('button', { type: 'button', class: 'sort', onclick: () => sortBy(key) }, label);
    sortButtons.set(key, button);
    return h('th', { scope: 'col' }, button);
  });
  const tbody = h('tbody');

  root.append(
    h(
      'header',
      { class: 'top' },
      h('h1', { tabindex: -1 }, 'Fleet'),
      pill.el,
      h('span', { class: 'spacer' }),
      h('span', {}, 'Dead letters: ', deadLetters),
    ),
    h(
      'main',
      {},
      h(
        'div',
        { class: 'toolbar' },
        h('label', { for: 'filter' }, 'Filter', filter),
        h('label', { for: 'status-filter' }, 'Status', statusFilter),
        h('label', { for: 'metric' }, 'Sparkline', metricSelect),
      ),
      summary,
      message,
      h(
        'div',
        { class: 'table-wrap' },
        h('table', { class: 'fleet' }, h('thead', {}, h('tr', {}, ...headers)), tbody),
      ),
    ),
  );

  function sortBy(key: SortKey): void {
    // A second click reverses; numbers and times start with the largest, names and status with the first.
    sortDir = sortKey === key ? (-sortDir as 1 | -1) : key === 'id' || key === 'status' ? 1 : -1;
    sortKey = key;
    render(true);
  }

  function rowFor(id: string): Row {
    const existing = rows.get(id);
    if (existing) return existing;
    const cells = {
      status: h('span'),
      alerts: h('span', { class: 'alerts', 'data-field': 'alerts' }),
      lastSeen: h('td', { 'data-label': 'Last seen' }),
      rate: h('td', { 'data-label': 'Msg/min', class: 'num' }),
      last: h('span', { class: 'spark-last' }),
      events: h('td', { 'data-label': 'Events', class: 'num' }),
    };
    const sparkHost = h('div', { class: 'spark' });
    const tr = h(
      'tr',
      { 'data-device': id },
      h(
        'td',
        { 'data-label': 'Device', class: 'device' },
        h('a', { href: `#/devices/${encodeURIComponent(id)}` }, id),
      ),
      h('td', { 'data-label': 'Status' }, cells.status, cells.alerts),
      cells.lastSeen,
      cells.rate,
      h('td', { 'data-label': 'Last hour', class: 'spark-cell' }, sparkHost, cells.last),
      cells.events,
    );
    const row: Row = { device: newFleetDevice(id), tr, cells, sparkline: createSparkline(sparkHost) };
    rows.set(id, row);
    return row;
  }

  function apply(e: StoredEvent): void {
    const { applied, newMetrics } = applyStreamed(rowFor(e.deviceId).device, e, metric, Date.now());
    if (newMetrics.length > 0) updateMetricChoices();
    if (applied) scheduleRender();
  }

  function updateMetricChoices(): void {
    const names = [...new Set([...rows.values()].flatMap((r) => [...r.device.metrics]))].sort();
    if (metric === '' && names.length > 0) {
      metric = names.includes('temperature') ? 'temperature' : (names[0] as string);
      setText(sparkHeader, `${metric} · last hour`);
    }
    if (names.join('\n') === [...metricSelect.options].map((o) => o.value).join('\n')) return;
    metricSelect.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
    metricSelect.value = metric;
  }

  function drawSparkline(row: Row, now: number): void {
    const d = row.device;
    for (const w of d.spark.keys()) {
      if (w >= now - SPARK_SPAN_MS) continue;
      d.spark.delete(w);
      d.sparkDirty = true;
    }
    if (!d.sparkDirty) return;
    d.sparkDirty = false;
    const windows = [...d.spark.entries()].sort(([a], [b]) => a - b);
    row.sparkline.set(
      windows.map(([w]) => w / 1000),
      windows.map(([, b]) => b.sum / b.count),
    );
  }

  async function loadSparklines(): Promise<void> {
    const chosen = metric;
    const queue = [...rows.values()];
    for (const { device } of queue) {
      device.spark.clear();
      device.sparkDirty = true;
    }
    const worker = async () => {
      for (let row = queue.shift(); row; row = queue.shift()) {
        const d = row.device;
        if (d.metrics.has(chosen)) {
          const now = Date.now();
          const w = { from: now - SPARK_SPAN_MS, to: now, every: `${SPARK_EVERY_MS / 60_000}m` };
          const series = await getJson<Series>(seriesUrl(d.id, chosen, w, 'mean'), aborter.signal);
          if (chosen !== metric) return; // another metric was chosen meanwhile; its own load takes over
          d.spark = new Map(
            series.points.map((p) => [Date.parse(p.time), { sum: p.value * p.count, count: p.count }]),
          );
          d.sparkDirty = true;
        }
        drawSparkline(row, Date.now());
      }
    };
    try {
      await Promise.all(Array.from({ length: SPARK_CONCURRENCY }, worker));
      render(false);
    } catch (err) {
      if (!isAbort(err)) setText(message, `Could not load sparklines: ${String(err)}`);
    }
  }

  let renderTimer: number | undefined;
  function scheduleRender(): void {
    renderTimer ??= window.setTimeout(() => {
      renderTimer = undefined;
      render(false);
    }, RENDER_DELAY_MS);
  }

  function render(resort: boolean): void {
    if (!loaded) return;
    const now = Date.now();
    const rate = (d: FleetDevice) => ratePerMinute(d, now, openedAt);
    const text = filter.value.trim().toLowerCase();
    const status = statusFilter.value;
    const all = [...rows.values()];
    const visible = all.filter(
      ({ device: d }) =>
        d.id.toLowerCase().includes(text) &&
        (status === '' || (status === 'online' ? d.online === true : d.online !== true)),
    );
    visible.sort((a, b) => sortDir * compareDevices(a.device, b.device, sortKey, (d) => rate(d) ?? 0));
    const order = visible.map((r) => r.device.id).join('\n');
    if (resort || order !== shownOrder) {
      tbody.replaceChildren(...visible.map((r) => r.tr));
      if (visible.length === 0) {
        const empty = all.length > 0 ? 'No device matches.' : 'No devices yet.';
        tbody.append(h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'empty' }, empty)));
      }
      shownOrder = order;
    }
    for (const [key, button] of sortButtons) {
      const th = button.parentElement as HTMLElement;
      if (key === sortKey) th.setAttribute('aria-sort', sortDir === 1 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    for (const row of visible) {
      const d = row.device;
      const s = formatStatus(d.online);
      setText(row.cells.status, s.text);
      row.cells.status.className = s.className;
      setText(row.cells.alerts, deviceAlerts(d, now, (t) => formatAgo(t, now)).join(' · '));
      setText(row.cells.lastSeen, Number.isFinite(d.lastSeen) ? formatAgo(d.lastSeen, now) : '—');
      const perMinute = rate(d);
      setText(row.cells.rate, perMinute === null ? '…' : formatNumber(Math.round(perMinute * 10) / 10));
      const last = d.last.get(metric);
      setText(row.cells.last, last ? formatNumber(last.value) : '—');
      setText(row.cells.events, String(d.events));
      drawSparkline(row, now);
    }
    const online = all.filter((r) => r.device.online === true).length;
    const count = visible.length === all.length ? `${all.length}` : `${visible.length} of ${all.length}`;
    setText(summary, `${count} devices · ${online} online`);
  }

  async function pollDeadLetters(): Promise<void> {
    try {
      setText(deadLetters, String(await deadLetterTotal(aborter.signal)));
    } catch (err) {
      if (!isAbort(err)) setText(deadLetters, '?');
    }
  }

  async function pollAccounting(): Promise<void> {
    if (!loaded) return;
    try {
      for (const v of await listAllDevices(aborter.signal)) applyAccounting(rowFor(v.deviceId).device, v);
      scheduleRender();
    } catch {
      // The next poll tries again; the stream pill already says when the server is gone.
    }
  }

  async function load(): Promise<void> {
    try {
      for (const v of await listAllDevices(aborter.signal)) applyView(rowFor(v.deviceId).device, v);
    } catch (err) {
      if (isAbort(err)) return;
      setText(message, `Could not load devices: ${String(err)}`);
    }
    loaded = true;
    for (const e of buffered.splice(0)) apply(e);
    updateMetricChoices();
    render(true);
    await loadSparklines();
  }

  // The stream opens before the list is read, so nothing falls between the two; events that come first wait.
  const closeStream = openLiveStream(
    '',
    (e) => (loaded ? apply(e) : buffered.push(e)),
    (s) => pill.set(s),
  );
  void load();
  void pollDeadLetters();
  const poll = window.setInterval(() => void pollDeadLetters(), DEAD_LETTER_POLL_MS);
  const accountingPoll = window.setInterval(() => void pollAccounting(), ACCOUNTING_POLL_MS);
  // "3 s ago" and the rates move with the clock, not only with events.
  const tick = window.setInterval(() => render(false), 1000);
  return () => {
    closeStream();
    aborter.abort();
    clearInterval(poll);
    clearInterval(accountingPoll);
    clearInterval(tick);
    clearTimeout(renderTimer);
    for (const r of rows.values()) r.sparkline.destroy();
  };
}
