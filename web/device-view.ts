import type { DeviceView } from './api.js';
import { h } from './dom.js';
import { formatIso, formatNumber, formatStatus } from './format.js';

/**
 * A device aggregate as facts, reported state and a metric table. Used for the current state and for
 * "state as of", so the two read the same; `data-field` names the values for tests.
 */
export function renderDeviceView(v: DeviceView): HTMLElement {
  const status = formatStatus(v.online);
  const counts = Object.entries(v.counts)
    .map(([type, n]) => `${type} ${n}`)
    .join(' · ');
  const fact = (label: string, field: string, ...value: (Node | string)[]) => [
    h('dt', {}, label),
    h('dd', { 'data-field': field }, ...value),
  ];
  const metrics = Object.entries(v.metrics).sort(([a], [b]) => (a < b ? -1 : 1));
  return h(
    'div',
    { class: 'device-view' },
    h(
      'dl',
      { class: 'facts' },
      ...fact(
        'Status',
        'status',
        h('span', { class: status.className }, status.text),
        v.onlineChangedAt === null ? '' : ` since ${formatIso(v.onlineChangedAt)}`,
      ),
      ...fact('First seen', 'firstSeen', formatIso(v.firstSeen)),
      ...fact('Last seen', 'lastSeen', formatIso(v.lastSeen)),
      ...fact('Version', 'version', String(v.version)),
      ...fact('Events', 'events', String(v.events)),
      ...fact('By type', 'counts', counts || '—'),
    ),
    h('h3', {}, 'Reported state'),
    h('pre', { class: 'reported', 'data-field': 'reported' }, JSON.stringify(v.reported, null, 2)),
    h('h3', {}, 'Metrics'),
    metrics.length === 0
      ? h('p', { class: 'muted' }, 'No telemetry yet.')
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'metrics' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['Metric', 'Last', 'Min', 'Max', 'Mean', 'Count'].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            h(
              'tbody',
              {},
              ...metrics.map(([name, m]) =>
                h(
                  'tr',
                  { 'data-metric': name },
                  h('th', { scope: 'row' }, name),
                  // When the last value was taken is a hover away: the table has to fit half a laptop screen.
                  h(
                    'td',
                    { class: 'num', 'data-field': 'last', title: `at ${formatIso(m.lastAt)}` },
                    formatNumber(m.last),
                  ),
                  h('td', { class: 'num' }, formatNumber(m.min)),
                  h('td', { class: 'num' }, formatNumber(m.max)),
                  h('td', { class: 'num' }, formatNumber(m.mean)),
                  h('td', { class: 'num', 'data-field': 'count' }, String(m.count)),
                ),
              ),
            ),
          ),
        ),
  );
}
