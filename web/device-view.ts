import type { AccountingView, DeviceView } from './api.js';
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
    ...(v.accounting ? renderAccounting(v.accounting) : []),
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

/** What became of the device's messages; it adds up: received = appended + duplicates + dead-lettered. */
function renderAccounting(a: AccountingView): HTMLElement[] {
  const fact = (label: string, field: string, value: string) => [
    h('dt', {}, label),
    h('dd', { 'data-field': field }, value),
  ];
  const dead = Object.entries(a.deadLettered?.byReason ?? {})
    .map(([reason, n]) => `${reason} ${n}`)
    .join(' · ');
  const when = (iso: string | null) => (iso === null ? '' : `, last ${formatIso(iso)}`);
  return [
    h('h3', {}, 'Messages'),
    h(
      'dl',
      { class: 'facts accounting' },
      ...fact('Received', 'received', a.received === null ? `? (${a.note ?? ''})` : String(a.received)),
      ...fact('Appended', 'appended', String(a.appended)),
      ...fact(
        'Duplicates',
        'duplicates',
        `${a.duplicates.total} (resend ${a.duplicates.resend} · retransmission ${a.duplicates.retransmission} · status ${a.duplicates.status})${when(a.last.resendAt)}`,
      ),
      ...fact(
        'Dead-lettered',
        'deadLettered',
        a.deadLettered === null ? '?' : `${a.deadLettered.total}${dead ? ` (${dead})` : ''}`,
      ),
      ...fact('Counter resets', 'counterResets', `${a.counterResets}${when(a.last.counterResetAt)}`),
      ...fact(
        'Clock corrected',
        'clockCorrected',
        `${a.clockCorrected.total} (ahead ${a.clockCorrected.ahead} · unsynced ${a.clockCorrected.unsynced})${when(a.last.clockCorrectedAt)}`,
      ),
    ),
  ];
}
