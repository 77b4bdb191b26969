import uPlot from 'uplot';

const WIDTH = 120;
const HEIGHT = 28;

export interface Sparkline {
  /** xs in epoch seconds (uPlot's time unit), ys the values. */
  set(xs: number[], ys: number[]): void;
  destroy(): void;
}

/** A bare uPlot line: no axes, legend or cursor, sized for a table cell. */
export function createSparkline(container: HTMLElement): Sparkline {
  const plot = new uPlot(
    {
      width: WIDTH,
      height: HEIGHT,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: '#2563eb', width: 1.5, points: { show: false } }],
    },
    [[], []],
    container,
  );
  return {
    set(xs, ys) {
      plot.setData([xs, ys]);
    },
    destroy() {
      plot.destroy();
    },
  };
}
