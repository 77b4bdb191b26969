import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { evolveDevice, initialDeviceAggregate } from '../processors/device-state/fold.js';
import { viewDevice } from '../processors/device-state/queries.js';
import { openReadSide } from '../processors/read-side.js';
import { AGGREGATES } from '../processors/telemetry-series/fold.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const SPAN = 3 * 3_600_000; // three hours, so 1-hour rollups get exercised too

const eventArb = fc.oneof(
  fc.record({
    kind: fc.constant('t' as const),
    offset: fc.integer({ min: 0, max: SPAN }),
    value: fc.integer({ min: -50, max: 50 }),
    metric: fc.constantFrom('a', 'b'),
  }),
  fc.record({
    kind: fc.constant('s' as const),
    offset: fc.integer({ min: 0, max: SPAN }),
    key: fc.constantFrom('fw', 'mode'),
    value: fc.integer({ min: 0, max: 9 }),
  }),
  fc.record({
    kind: fc.constant('p' as const),
    offset: fc.integer({ min: 0, max: SPAN }),
    online: fc.boolean(),
  }),
);

type Spec = typeof eventArb extends fc.Arbitrary<infer T> ? T : never;

function toEvent(e: Spec, i: number): NewEvent {
  const base = { id: `dev:${i}`, deviceId: 'dev', time: T0 + e.offset, receivedAt: T0 };
  switch (e.kind) {
    case 't':
      return { ...base, type: 'TelemetryRecorded', data: { metrics: { [e.metric]: e.value } } };
    case 's':
      return { ...base, type: 'StateReported', data: { state: { [e.key]: e.value } } };
    case 'p':
      return e.online
        ? { ...base, type: 'DeviceConnected', data: { source: 'broker' } }
        : { ...base, type: 'DeviceDisconnected', data: { source: 'broker', reason: 'error' } };
  }
}

describe('read side properties', () => {
  it('state as of T equals a plain fold over the events with time ≤ T; series equal a brute-force computation', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.integer({ min: -60_000, max: SPAN + 60_000 }), { minLength: 3, maxLength: 3 }),
        fc.constantFrom(10_000, 60_000, 300_000, 3_600_000),
        fc.constantFrom(...AGGREGATES),
        async (specs, snapshotEvery, probes, everyMs, fn) => {
          const log = createMemoryEventLog();
          const readSide = await openReadSide(log, {
            dataDir: null,
            snapshotEvery,
            logger: silentLogger(),
          });
          try {
            // Append in several batches, so the runner folds in more than one transaction.
            const events = specs.map(toEvent);
            for (let i = 0; i < events.length; i += 7) await log.append(events.slice(i, i + 7));
            await readSide.runner.waitFor(events.length);
            const stored = await log.readAll({ after: 0, limit: 1000 });

            // Probing exactly at an event's time checks that "as of T" includes events at T.
            for (const probe of [...probes, specs[specs.length - 1]?.offset ?? 0]) {
              const at = T0 + probe;
              const expected = stored
                .filter((e) => e.time <= at)
                .reduce(evolveDevice, initialDeviceAggregate('dev'));
              // Folded through the end of the log: the answer is consistent with position events.length.
              const answer = await readSide.readModels.devices.asOf('dev', at);
              expect(answer.position).toBe(events.length);
              expect(answer.state).toEqual(expected.events === 0 ? null : viewDevice(expected));
            }

            const from = T0 + Math.min(...probes.map((p) => Math.max(p, 0)));
            const to = from + SPAN;
            const series = await readSide.readModels.series.query({
              deviceId: 'dev',
              metric: 'a',
              from,
              to,
              everyMs,
              fn,
            });
            const start = Math.floor(from / everyMs) * everyMs;
            const end = Math.ceil(to / everyMs) * everyMs;
            const windows = new Map<number, { v: number; time: number; seq: number }[]>();
            for (const e of stored) {
              if (
                e.type !== 'TelemetryRecorded' ||
                e.data.metrics.a === undefined ||
                e.time < start ||
                e.time >= end
              )
                continue;
              const w = Math.floor(e.time / everyMs) * everyMs;
              windows.set(w, [...(windows.get(w) ?? []), { v: e.data.metrics.a, time: e.time, seq: e.seq }]);
            }
            const brute = [...windows.entries()]
              .sort(([x], [y]) => x - y)
              .map(([w, pts]) => {
                const vs = pts.map((p) => p.v);
                const last = [...pts].sort((x, y) => x.time - y.time || x.seq - y.seq).at(-1)?.v as number;
                const sum = vs.reduce((s, v) => s + v, 0);
                const value = {
                  mean: sum / vs.length,
                  min: Math.min(...vs),
                  max: Math.max(...vs),
                  sum,
                  count: vs.length,
                  last,
                }[fn];
                return { time: new Date(w).toISOString(), value, count: vs.length };
              });
            expect(series.points).toEqual(brute);
          } finally {
            await readSide.close();
            await log.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 60_000);

  it('folds to the same aggregate in any order (so late data cannot change the answer)', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 30 }), fc.integer(), (specs, salt) => {
        const events = specs.map((s, i) => ({ ...toEvent(s, i), seq: i + 1, version: i + 1 }));
        const shuffled = [...events].sort(
          (x, y) => ((x.seq * 7919 + salt) % 101) - ((y.seq * 7919 + salt) % 101),
        );
        const inOrder = events.reduce(evolveDevice, initialDeviceAggregate('dev'));
        const outOfOrder = shuffled.reduce(evolveDevice, initialDeviceAggregate('dev'));
        expect(viewDevice(outOfOrder)).toEqual(viewDevice(inOrder));
      }),
      { numRuns: 300 },
    );
  });
});
