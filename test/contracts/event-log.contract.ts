import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import type { NewEvent } from '../../core/event.js';
import type { EventLog } from '../../eventlog/event-log.js';

/** Builds a fresh, empty log for each test; `reopen` closes it and opens the same storage again (if durable). */
export interface EventLogFactory {
  name: string;
  open(): Promise<EventLog>;
  reopen?: (log: EventLog) => Promise<EventLog>;
}

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

export function telemetry(deviceId: string, seq: number, time = T0 + seq * 1000, value = seq): NewEvent {
  return {
    id: `${deviceId}:${seq}`,
    deviceId,
    type: 'TelemetryRecorded',
    time,
    receivedAt: T0,
    data: { metrics: { temperature: value } },
  };
}

/** The one suite every EventLog backend must pass. */
export function eventLogContract(factory: EventLogFactory): void {
  describe(`EventLog contract: ${factory.name}`, () => {
    let log: EventLog;
    beforeEach(async () => {
      log = await factory.open();
    });
    afterEach(async () => {
      await log.close();
    });

    it('assigns gapless global seq and per-device version in append order', async () => {
      const outcomes = await log.append([telemetry('a', 1), telemetry('b', 1), telemetry('a', 2)]);
      expect(outcomes).toEqual([
        { status: 'appended', seq: 1, version: 1 },
        { status: 'appended', seq: 2, version: 1 },
        { status: 'appended', seq: 3, version: 2 },
      ]);
      const all = await log.readAll({ after: 0, limit: 10 });
      expect(all.map((e) => [e.seq, e.deviceId, e.version, e.id])).toEqual([
        [1, 'a', 1, 'a:1'],
        [2, 'b', 1, 'b:1'],
        [3, 'a', 2, 'a:2'],
      ]);
      expect(await log.lastSeq()).toBe(3);
    });

    it('keeps the whole envelope and payload', async () => {
      const event: NewEvent = {
        id: 'dev-1:7',
        deviceId: 'dev-1',
        type: 'StateReported',
        time: T0 + 5,
        receivedAt: T0 + 9,
        data: { state: { firmware: '1.2.0', location: { lat: 52.5, lon: 13.4 } } },
      };
      await log.append([event]);
      const [stored] = await log.readAll({ after: 0, limit: 1 });
      expect(stored).toEqual({ ...event, seq: 1, version: 1 });
    });

    it('treats an id already in the log as a duplicate, reporting the original seq', async () => {
      await log.append([telemetry('a', 1), telemetry('a', 2)]);
      const outcomes = await log.append([telemetry('a', 2), telemetry('a', 3)]);
      expect(outcomes).toEqual([
        { status: 'duplicate', seq: 2 },
        { status: 'appended', seq: 3, version: 3 },
      ]);
      expect(await log.lastSeq()).toBe(3);
    });

    it('treats a repeated id within one batch as a duplicate', async () => {
      const outcomes = await log.append([telemetry('a', 1), telemetry('a', 1)]);
      expect(outcomes).toEqual([
        { status: 'appended', seq: 1, version: 1 },
        { status: 'duplicate', seq: 1 },
      ]);
    });

    it('keeps call order for concurrent appends and resolves each with its own outcomes', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => log.append([telemetry('c', i + 1), telemetry('d', i + 1)])),
      );
      results.forEach((outcomes, i) => {
        expect(outcomes).toEqual([
          { status: 'appended', seq: 2 * i + 1, version: i + 1 },
          { status: 'appended', seq: 2 * i + 2, version: i + 1 },
        ]);
      });
      const stream = await log.readStream('c', { fromVersion: 1, limit: 100 });
      expect(stream.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => `c:${i + 1}`));
    });

    it('reads from a global position with a limit', async () => {
      await log.append(Array.from({ length: 10 }, (_, i) => telemetry('a', i + 1)));
      const page = await log.readAll({ after: 4, limit: 3 });
      expect(page.map((e) => e.seq)).toEqual([5, 6, 7]);
      expect(await log.readAll({ after: 10, limit: 5 })).toEqual([]);
    });

    it("reads one device's stream by version", async () => {
      await log.append([telemetry('a', 1), telemetry('b', 1), telemetry('a', 2), telemetry('a', 3)]);
      const stream = await log.readStream('a', { fromVersion: 2, limit: 10 });
      expect(stream.map((e) => [e.version, e.seq])).toEqual([
        [2, 3],
        [3, 4],
      ]);
      expect(await log.readStream('nobody', { fromVersion: 1, limit: 10 })).toEqual([]);
    });

    it("reads one device's stream by event time, out-of-order arrivals included, with a cursor", async () => {
      // version order 1..5, event times out of order: 3 arrives late.
      const times = [10, 20, 40, 30, 50].map((s) => T0 + s * 1000);
      await log.append(times.map((t, i) => telemetry('a', i + 1, t)));
      await log.append([telemetry('b', 1, T0 + 25_000)]);
      const first = await log.readStreamByTime('a', { from: T0 + 15_000, to: T0 + 50_000, limit: 2 });
      expect(first.events.map((e) => e.time - T0)).toEqual([20_000, 30_000]);
      expect(first.next).toEqual({ time: T0 + 30_000, seq: 4 });
      const second = await log.readStreamByTime('a', {
        from: T0 + 15_000,
        to: T0 + 50_000,
        limit: 2,
        after: first.next,
      });
      expect(second.events.map((e) => e.time - T0)).toEqual([40_000]);
      expect(second.next).toBeUndefined();
    });

    it('filters a device stream by event type', async () => {
      await log.append([
        telemetry('a', 1),
        {
          id: 'a:2',
          deviceId: 'a',
          type: 'DeviceConnected',
          time: T0 + 2000,
          receivedAt: T0,
          data: { source: 'broker' },
        },
        telemetry('a', 3),
      ]);
      const page = await log.readStreamByTime('a', { types: ['DeviceConnected'], limit: 10 });
      expect(page.events.map((e) => e.id)).toEqual(['a:2']);
    });

    it('tails newly durable events to subscribers in seq order', async () => {
      const seen: number[] = [];
      const unsubscribe = log.subscribe((events) => seen.push(...events.map((e) => e.seq)));
      await log.append([telemetry('a', 1)]);
      await log.append([telemetry('a', 2), telemetry('a', 1)]);
      unsubscribe();
      await log.append([telemetry('a', 3)]);
      expect(seen).toEqual([1, 2]);
    });

    it('removes the events before a time in steps (retention): every one, or a prefix where the log says so', async () => {
      const times = [10, 20, 30, 50, 5, 60].map((s) => T0 + s * 1000);
      await log.append(times.map((t, i) => telemetry(i % 2 === 0 ? 'a' : 'b', i + 1, t)));
      await log.append([]); // nothing: no-op
      if (log.removes === 'every-match') {
        // Removal before 45 s takes seq 1-3 and the late seq 5 (5 s): seq 4 (50 s) between them holds nothing back.
        expect(await log.removeBefore({ time: T0 + 45_000, maxSeq: 6, limit: 2 })).toBe(2);
        expect(await log.removeBefore({ time: T0 + 45_000, maxSeq: 6, limit: 100 })).toBe(2);
        expect(await log.removeBefore({ time: T0 + 45_000, maxSeq: 6, limit: 100 })).toBe(0);
        expect((await log.readAll({ after: 0, limit: 10 })).map((e) => e.seq)).toEqual([4, 6]);
        expect((await log.readAll({ after: 4, limit: 10 })).map((e) => e.seq)).toEqual([6]);
        expect(await log.readStream('a', { fromVersion: 1, limit: 10 })).toEqual([]);
        expect((await log.readStream('b', { fromVersion: 3, limit: 10 })).map((e) => e.seq)).toEqual([6]);
      } else {
        // A prefix: removal before 45 s takes seq 1-3 and stops at seq 4 (50 s), keeping the late seq 5 (5 s).
        expect(await log.removeBefore({ time: T0 + 45_000, maxSeq: 6, limit: 2 })).toBe(2);
        expect(await log.removeBefore({ time: T0 + 45_000, maxSeq: 6, limit: 100 })).toBe(1);
        expect(await log.removeBefore({ time: T0 + 45_000, maxSeq: 6, limit: 100 })).toBe(0);
        expect((await log.readAll({ after: 0, limit: 10 })).map((e) => e.seq)).toEqual([4, 5, 6]);
        expect((await log.readStream('a', { fromVersion: 1, limit: 10 })).map((e) => e.version)).toEqual([3]);
      }
      expect((await log.readStreamByTime('b', { limit: 10 })).events.map((e) => e.seq)).toEqual([4, 6]);
      expect(await log.lastSeq()).toBe(6);
      // The log goes on from where it was; a removed id is forgotten, so its resend is new.
      const outcomes = await log.append([telemetry('a', 7), telemetry('a', 1)]);
      expect(outcomes).toEqual([
        { status: 'appended', seq: 7, version: 4 },
        { status: 'appended', seq: 8, version: 5 },
      ]);
    });

    it('removes only up to maxSeq', async () => {
      await log.append([1, 2, 3].map((n) => telemetry('a', n, T0)));
      expect(await log.removeBefore({ time: T0 + 1, maxSeq: 2, limit: 100 })).toBe(2);
      expect((await log.readAll({ after: 0, limit: 10 })).map((e) => e.seq)).toEqual([3]);
    });

    it('rejects appends after close', async () => {
      await log.close();
      await expect(log.append([telemetry('a', 1)])).rejects.toMatchObject({ code: 'ERR_LOG_CLOSED' });
      log = await factory.open();
    });

    if (factory.reopen) {
      const reopen = factory.reopen;
      it('keeps events, versions and dedup across a reopen', async () => {
        await log.append([telemetry('a', 1), telemetry('a', 2), telemetry('b', 1)]);
        log = await reopen(log);
        expect(await log.lastSeq()).toBe(3);
        const outcomes = await log.append([telemetry('a', 2), telemetry('a', 3)]);
        expect(outcomes).toEqual([
          { status: 'duplicate', seq: 2 },
          { status: 'appended', seq: 4, version: 3 },
        ]);
        const stream = await log.readStream('a', { fromVersion: 1, limit: 10 });
        expect(stream.map((e) => e.version)).toEqual([1, 2, 3]);
      });
    }
  });
}
