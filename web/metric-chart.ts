import uPlot from 'uplot';
import type { Series } from './api.js';
import { formatNumber } from './format.js';

const HEIGHT = 200;
/** Markers on the line only while they stay apart; a dense line reads better without them. */
const MAX_MARKED_POINTS = 60;

export interface MetricChart {
  /** Draws a series answer; `query` is the request it came from, kept on the element for inspection. */
  show(series: Series, query: string): void;
  resize(): void;
  destroy(): void;
}

/**
 * One metric over time. The figure carries `data-query` (the request) and, once uPlot has drawn,
 * `data-points` (how many points it drew), so a test can hold the picture against the API answer.
 */
export function createMetricChart(figure: HTMLElement, host: HTMLElement, metric: string): MetricChart {
  let plot: uPlot | undefined;
  const width = () => Math.max(240, host.clientWidth);

  const options = (points: number): uPlot.Options => ({
    width: width(),
    height: HEIGHT,
    legend: { show: true, live: true },
    scales: { x: { time: true } },
    axes: [{}, { values: (_u, ticks) => ticks.map(formatNumber), size: 56 }],
    series: [
      {},
      {
        label: metric,
        stroke: '#2563eb',
        fill: 'rgba(37, 99, 235, 0.08)',
        width: 1.5,
        points: { show: points <= MAX_MARKED_POINTS, size: 5 },
        value: (_u, v) => (v === null ? '—' : formatNumber(v)),
      },
    ],
    hooks: {
      draw: [(u) => (figure.dataset.points = String(u.data[0].length))],
    },
  });

  return {
    show(series, query) {
      const xs = series.points.map((p) => Date.parse(p.time) / 1000);
      const ys = series.points.map((p) => p.value);
      delete figure.dataset.points;
      figure.dataset.query = query;
      figure.dataset.source = series.source;
      // A new plot per answer: the marker setting depends on the point count and uPlot fixes it at creation.
      plot?.destroy();
      plot = new uPlot(options(xs.length), [xs, ys], host);
    },
    resize() {
      plot?.setSize({ width: width(), height: HEIGHT });
    },
    destroy() {
      plot?.destroy();
    },
  };
}
