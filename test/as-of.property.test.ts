import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServerConfig, startFleetlog, type RunningFleetlog } from '../app/fleetlog.js';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { naiveDeviceView, type LoggedEvent } from './helpers/naive-device-view.js';

/**
 * "State as of T" through the HTTP API of a whole fleetlog (SQLite log, snapshots on), against the naive view of
 * exactly the events with time ≤ T and seq ≤ the position the answer claims. Probes sit at t − 1, t and t + 1 of
 * events (so a bound off by 1 ms shows), and half of each history is appended while folding is paused, so the
 * answer's position is below the end of the log and the events past it must be left out.
 */

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

const timeArb = fc.oneof(
  // Mostly a few dozen ms apart: equal times, and t ± 1 landing on other events, are common.
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3_600_000 }) },
);

const eventArb = fc.oneof(
  fc.record({
    kind: fc.constant('telemetry' as const),
    time: timeArb,
    metrics: fc.dictionary(fc.constantFrom('a', 'b'), fc.integer({ min: -50, max: 50 }), {
      minKeys: 1,
      maxKeys: 2,
    }),
  }),
  fc.record({
    kind: fc.constant('state' as const),
    time: timeArb,
    state: fc.dictionary(fc.constantFrom('fw', 'mode'), fc.integer({ min: 0, max: 9 }), {
      minKeys: 1,
      maxKeys: 2,
    }),
  }),
  fc.record({ kind: fc.constant('presence' as const), time: timeArb, online: fc.boolean() }),
  fc.record({ kind: fc.constant('event' as const), time: timeArb }),
);
type Spec = typeof eventArb extends fc.Arbitrary<infer T> ? T : never;

function toEvent(deviceId: string, spec: Spec, i: number): NewEvent {
  const base = { id: `${deviceId}/${i}`, deviceId, time: T0 + spec.time, receivedAt: T0 };
  switch (spec.kind) {
    case 'telemetry':
      return { ...base, type: 'TelemetryRecorded', data: { metrics: spec.metrics } };
    case 'state':
      return { ...base, type: 'StateReported', data: { state: spec.state } };
    case 'presence':
      return spec.online
        ? { ...base, type: 'DeviceConnected', data: { source: 'broker' } }
        : { ...base, type: 'DeviceDisconnected', data: { source: 'broker', reason: 'error' } };
    case 'event':
      return { ...base, type: 'DeviceEventReported', data: { name: 'door', data: {} } };
  }
}

interface AsOfAnswer {
  state: unknown;
  position: number;
  basis: { snapshotBoundary: string | null; eventsFolded: number };
}

/** Appends through the log's own interface, in small batches (several fold transactions); returns the stored events. */
async function append(server: RunningFleetlog, events: readonly NewEvent[]): Promise<LoggedEvent[]> {
  const stored: LoggedEvent[] = [];
  for (let i = 0; i < events.length; i += 3) {
    const batch = events.slice(i, i + 3);
    const outcomes = await server.log.append(batch);
    outcomes.forEach((o, j) => {
      const e = batch[j] as NewEvent;
      if (o.status !== 'appended') throw new Error(`event ${e.id} was not appended: ${o.status}`);
      stored.push({ seq: o.seq, version: o.version, type: e.type, time: e.time, data: e.data });
    });
  }
  return stored;
}

/** Asks the API for each probe time and compares with the naive view at the position the answer names. */
async function checkProbes(
  server: RunningFleetlog,
  deviceId: string,
  events: readonly LoggedEvent[],
  probes: readonly number[],
  position: number,
  snapshotEvery: number,
): Promise<void> {
  for (const at of probes) {
    const res = await fetch(`${server.httpUrl}/api/devices/${deviceId}/state?at=${at}`);
    expect(res.status).toBe(200);
    const answer = (await res.json()) as AsOfAnswer;
    expect(answer.position).toBe(position);
    const included = events.filter((e) => e.time <= at && e.seq <= position);
    expect({ at, state: answer.state }).toEqual({ at, state: naiveDeviceView(deviceId, included) });
    // The basis is the documented one: the latest snapshot with boundary ≤ T + 1 (a snapshot holds the events
    // with time below its boundary), plus exactly the events from the boundary through T that the position covers.
    const boundary = latestSnapshot(events, snapshotEvery, at, position);
    expect({ at, snapshotBoundary: answer.basis.snapshotBoundary }).toEqual({
      at,
      snapshotBoundary: boundary === null ? null : new Date(boundary).toISOString(),
    });
    const fromLog = included.filter((e) => boundary === null || e.time >= boundary).length;
    expect({ at, eventsFolded: answer.basis.eventsFolded }).toEqual({ at, eventsFolded: fromLog });
  }
}

/**
 * The snapshot policy (processors' device-state): after every `snapshotEvery` folded events of a device, a
 * snapshot with boundary = the latest event time so far + 1. "As of T" starts from the latest one ≤ T + 1.
 */
function latestSnapshot(
  events: readonly LoggedEvent[],
  snapshotEvery: number,
  at: number,
  position: number,
): number | null {
  let best: number | null = null;
  let maxTime = Number.NEGATIVE_INFINITY;
  events
    .filter((e) => e.seq <= position)
    .forEach((e, i) => {
      maxTime = Math.max(maxTime, e.time);
      const boundary = maxTime + 1;
      if ((i + 1) % snapshotEvery === 0 && boundary <= at + 1 && (best === null || boundary > best))
        best = boundary;
    });
  return best;
}

function probeTimes(events: readonly LoggedEvent[], picks: readonly number[]): number[] {
  const times = events.map((e) => e.time);
  const chosen = picks.map((p) => times[p % times.length] as number);
  const probes = new Set([Math.min(...times) - 1, Math.max(...times) + 1]);
  for (const t of chosen) for (const d of [-1, 0, 1]) probes.add(t + d);
  return [...probes].sort((a, b) => a - b);
}

describe.each([1, 2, 100])('state as of T over the API (snapshot every %i events)', (snapshotEvery) => {
  let server: RunningFleetlog;
  beforeAll(async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-asof-'));
    server = await startFleetlog('serve', localServerConfig(dataDir, { snapshotEvery }), {
      logger: silentLogger(),
      metrics: createMetrics(),
    });
  });
  afterAll(() => server.close());

  it('equals the naive view of the events with time ≤ T and seq ≤ position, at t − 1, t and t + 1', async () => {
    const readSide = server.readSide;
    if (!readSide) throw new Error('processors are off');
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 24 }),
        fc.nat(),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        async (specs, splitSeed, picks) => {
          const deviceId = `asof-${snapshotEvery}-${run++}`;
          const events = specs.map((s, i) => toEvent(deviceId, s, i));
          const split = 1 + (splitSeed % events.length); // at least one event folded before the pause
          const first = await append(server, events.slice(0, split));
          const folded = await server.log.lastSeq();
          await readSide.runner.waitFor(folded);

          // Folding paused: the rest goes into the log but not into the read models, so answers stop at `folded`.
          let all: LoggedEvent[] = first;
          await readSide.runner.exclusive(async () => {
            all = [...first, ...(await append(server, events.slice(split)))];
            await checkProbes(server, deviceId, all, probeTimes(all, picks), folded, snapshotEvery);
          });

          const end = await server.log.lastSeq();
          await readSide.runner.waitFor(end);
          await checkProbes(server, deviceId, all, probeTimes(all, picks), end, snapshotEvery);
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});

describe('state as of T over the API, a long history', () => {
  it('folds every page of the log past the snapshot (more events than one page of 10,000)', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-asof-long-'));
    const server = await startFleetlog(
      'serve',
      localServerConfig(dataDir, { eventLog: 'memory', snapshotEvery: 1_000_000 }),
      { logger: silentLogger(), metrics: createMetrics() },
    );
    try {
      const count = 10_050;
      for (let i = 0; i < count; i += 1000) {
        await server.log.append(
          Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({
            id: `long/${i + k}`,
            deviceId: 'long',
            type: 'TelemetryRecorded' as const,
            time: T0 + i + k,
            receivedAt: T0,
            data: { metrics: { v: 1 } },
          })),
        );
      }
      await server.readSide?.runner.waitFor(count);
      const res = await fetch(`${server.httpUrl}/api/devices/long/state?at=${T0 + count}`);
      const answer = (await res.json()) as AsOfAnswer & { state: { events: number } };
      expect([answer.state.events, answer.basis.eventsFolded, answer.basis.snapshotBoundary]).toEqual([
        count,
        count,
        null,
      ]);
    } finally {
      await server.close();
    }
  }, 60_000);
});
