import {
  deviceUrl,
  getJson,
  isAbort,
  seriesUrl,
  type DeviceView,
  type Series,
  type StoredEvent,
} from './api.js';
import { createAsOfSlider, type AsOfSlider } from './as-of-slider.js';
import { createControlPanel } from './control-panel.js';
import { h, setText } from './dom.js';
import { renderDeviceView } from './device-view.js';
import { createEventTimeline, type EventTimeline } from './event-timeline.js';
import { formatStatus } from './format.js';
import { openLiveStream } from './live-stream.js';
import { createMetricChart, type MetricChart } from './metric-chart.js';
import { CHART_RANGES, DEFAULT_RANGE_KEY, findRange, seriesWindow, type ChartRange } from './series-plan.js';
import { streamPill } from './stream-pill.js';

/** The aggregate is re-read at most this often while events stream in. */
const REFRESH_MS = 1_000;
/** Charts ending "now" are redrawn at most this often while telemetry streams in. */
const CHART_REFRESH_MS = 15_000;
const FNS = ['mean', 'min', 'max', 'last', 'count'] as const;

export function mountDevicePage(root: HTMLElement, deviceId: string): () => void {
  const aborter = new AbortController();
  const pill = streamPill();
  const badge = h('span', { class: 'badge unknown' }, '…');
  const message = h('p', { class: 'message', role: 'status' });
  const current = h('div', { 'data-testid': 'current' }, h('p', { class: 'muted' }, 'Loading…'));
  const asOfHost = h('div', { 'data-testid': 'as-of' });
  const chartsHost = h('div', { class: 'charts' });
  const timelineHost = h('div');
  const timelineTitle = h('h2', {}, 'Timeline');
  const control = createControlPanel(deviceId);
  let range: ChartRange = findRange(DEFAULT_RANGE_KEY);
  let fn: (typeof FNS)[number] = 'mean';
  let view: DeviceView | undefined;
  let charts: MetricChart[] = [];
  let slider: AsOfSlider | undefined;
  let timeline: EventTimeline | undefined;
  let refreshTimer: number | undefined;
  let chartTimer: number | undefined;
  /** Bumped per redraw, so an answer to an earlier range or function is dropped. */
  let chartGeneration = 0;

  const rangeButtons = CHART_RANGES.map((r) =>
    h(
      'button',
      {
        type: 'button',
        class: 'range',
        'data-range': r.key,
        'aria-pressed': r.key === range.key ? 'true' : 'false',
        onclick: () => {
          range = r;
          for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b.dataset.range === r.key));
          void drawCharts();
          timeline?.setFrom(Date.now() - range.spanMs);
          setText(timelineTitle, timelineHeading());
        },
      },
      r.label,
    ),
  );
  const fnSelect = h(
    'select',
    {
      id: 'fn',
      onchange: () => {
        fn = fnSelect.value as (typeof FNS)[number];
        void drawCharts();
      },
    },
    ...FNS.map((f) => h('option', { value: f }, f)),
  );
  const timelineHeading = () => `Timeline · last ${range.label}, oldest first`;
  setText(timelineTitle, timelineHeading());

  root.append(
    h(
      'header',
      { class: 'top' },
      h('a', { href: '#/', class: 'back' }, '← Fleet'),
      h('h1', { tabindex: -1, class: 'device-id' }, deviceId),
      badge,
      pill.el,
    ),
    h(
      'main',
      {},
      message,
      h(
        'div',
        { class: 'columns' },
        h('section', { class: 'card', 'aria-labelledby': 'now-h' }, h('h2', { id: 'now-h' }, 'Now'), current),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'asof-h' },
          h('h2', { id: 'asof-h' }, 'History'),
          asOfHost,
        ),
      ),
      h('div', { class: 'columns' }, ...control.els),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'charts-h' },
        h('h2', { id: 'charts-h' }, 'Charts'),
        h(
          'div',
          { class: 'toolbar' },
          h('div', { role: 'group', 'aria-label': 'Range', class: 'ranges' }, ...rangeButtons),
          h('label', { for: 'fn' }, 'Per window', fnSelect),
        ),
        chartsHost,
      ),
      h('section', { class: 'card' }, timelineTitle, timelineHost),
    ),
  );

  function showView(v: DeviceView): void {
    view = v;
    const s = formatStatus(v.online);
    badge.className = s.className;
    setText(badge, s.text);
    current.replaceChildren(renderDeviceView(v));
    if (v.lastSeen !== null) slider?.extendTo(Date.parse(v.lastSeen));
  }

  async function drawCharts(): Promise<void> {
    if (!view) return;
    const generation = ++chartGeneration;
    for (const c of charts) c.destroy();
    const metrics = Object.keys(view.metrics).sort();
    const w = seriesWindow(range, Date.now());
    const figures = metrics.map((metric) => {
      const host = h('div', { class: 'chart' });
      const caption = h('figcaption', {}, metric);
      const figure = h('figure', { 'data-metric': metric }, caption, host);
      return { metric, figure, caption, chart: createMetricChart(figure, host, metric) };
    });
    charts = figures.map((f) => f.chart);
    chartsHost.replaceChildren(
      ...(figures.length ? figures.map((f) => f.figure) : [h('p', { class: 'muted' }, 'No telemetry yet.')]),
    );
    await Promise.all(
      figures.map(async ({ metric, caption, chart }) => {
        const url = seriesUrl(deviceId, metric, w, fn);
        try {
          const series = await getJson<Series>(url, aborter.signal);
          if (generation !== chartGeneration) return;
          const from = series.source === 'raw' ? 'raw events' : `${series.source.slice(7)} rollups`;
          setText(
            caption,
            `${metric} · ${fn} per ${range.every} · ${series.points.length} points from ${from}`,
          );
          chart.show(series, url);
        } catch (err) {
          if (!isAbort(err)) setText(caption, `${metric}: ${String(err)}`);
        }
      }),
    );
  }

  async function refresh(): Promise<void> {
    try {
      showView(await getJson<DeviceView>(deviceUrl(deviceId), aborter.signal));
    } catch (err) {
      if (!isAbort(err)) setText(message, `Could not refresh: ${String(err)}`);
    }
  }

  function onLive(e: StoredEvent): void {
    timeline?.live(e);
    control.live(e);
    refreshTimer ??= window.setTimeout(() => {
      refreshTimer = undefined;
      void refresh();
    }, REFRESH_MS);
    if (e.type === 'TelemetryRecorded') {
      chartTimer ??= window.setTimeout(() => {
        chartTimer = undefined;
        void drawCharts();
      }, CHART_REFRESH_MS);
    }
  }

  async function load(): Promise<void> {
    try {
      const v = await getJson<DeviceView>(deviceUrl(deviceId), aborter.signal);
      const first = v.firstSeen === null ? Date.now() : Date.parse(v.firstSeen);
      const last = v.lastSeen === null ? Date.now() : Date.parse(v.lastSeen);
      slider = createAsOfSlider(deviceId, first, last);
      asOfHost.replaceChildren(slider.el);
      timeline = createEventTimeline(deviceId, Date.now() - range.spanMs);
      timelineHost.replaceChildren(timeline.el);
      showView(v);
      await drawCharts();
    } catch (err) {
      if (isAbort(err)) return;
      current.replaceChildren(h('p', {}, String(err instanceof Error ? err.message : err)));
    }
  }

  const resize = () => {
    for (const c of charts) c.resize();
  };
  window.addEventListener('resize', resize);
  const closeStream = openLiveStream(`?device=${encodeURIComponent(deviceId)}`, onLive, (s) => pill.set(s));
  void load();
  return () => {
    closeStream();
    aborter.abort();
    window.removeEventListener('resize', resize);
    clearTimeout(refreshTimer);
    clearTimeout(chartTimer);
    for (const c of charts) c.destroy();
    slider?.destroy();
    timeline?.destroy();
    control.destroy();
  };
}
