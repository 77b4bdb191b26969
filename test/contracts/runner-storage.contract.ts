import { describe, expect, it } from 'vitest';
import type { RunnerStorage } from '../../processors/runner/storage.js';

/** The one suite every runner storage passes: SQLite (readmodels.db) and memory. */
export function runnerStorageContract(name: string, open: () => RunnerStorage): void {
  describe(`runner storage contract: ${name}`, () => {
    it('keeps checkpoints per read model, and the retention marks', () => {
      const storage = open();
      expect(storage.checkpoint('a')).toBeUndefined();
      storage.setCheckpoint('a', { version: 1, position: 5 });
      storage.setCheckpoint('b', { version: 2, position: 7 });
      storage.setCheckpoint('a', { version: 1, position: 9 });
      expect([storage.checkpoint('a'), storage.checkpoint('b')]).toEqual([
        { version: 1, position: 9 },
        { version: 2, position: 7 },
      ]);
      expect(storage.retentionBase()).toEqual({ horizon: 0, position: 0 });
      expect(storage.retentionProgress()).toEqual({ removedBefore: null, removed: 0, lastRunAt: null });
      storage.setRetentionBase({ horizon: 3_600_000, position: 40 });
      storage.setRetentionProgress({ removedBefore: 3_600_000, removed: 12, lastRunAt: 99 });
      expect(storage.retentionBase()).toEqual({ horizon: 3_600_000, position: 40 });
      expect(storage.retentionProgress()).toEqual({ removedBefore: 3_600_000, removed: 12, lastRunAt: 99 });
      storage.close();
    });

    it("keeps each sink's memo apart, upserting entries and clearing on null", () => {
      const storage = open();
      storage.saveSinkMemo(
        'influx',
        new Map([
          ['a', 'ENV-100'],
          ['b', 'PM-3'],
        ]),
      );
      storage.saveSinkMemo('other', new Map([['a', 'x']]));
      storage.saveSinkMemo('influx', new Map([['a', 'ENV-200']]));
      expect([...storage.sinkMemo('influx')].sort()).toEqual([
        ['a', 'ENV-200'],
        ['b', 'PM-3'],
      ]);
      storage.saveSinkMemo('influx', null);
      expect([storage.sinkMemo('influx').size, storage.sinkMemo('other').get('a')]).toEqual([0, 'x']);
      storage.close();
    });

    it('runs work atomically inside an open transaction and commits it', () => {
      const storage = open();
      storage.begin();
      storage.atomically(() => storage.setCheckpoint('a', { version: 1, position: 1 }));
      storage.commit();
      expect(storage.checkpoint('a')).toEqual({ version: 1, position: 1 });
      storage.close();
    });
  });
}

/** Only a durable storage can undo: a failed savepoint and a rolled-back transaction leave nothing. */
export function runnerStorageRollbackContract(name: string, open: () => RunnerStorage): void {
  describe(`runner storage rollback: ${name}`, () => {
    it('undoes a savepoint that throws, and a rolled-back transaction', () => {
      const storage = open();
      storage.begin();
      storage.setCheckpoint('a', { version: 1, position: 1 });
      expect(() =>
        storage.atomically(() => {
          storage.setCheckpoint('a', { version: 1, position: 2 });
          throw new Error('fold failed');
        }),
      ).toThrow('fold failed');
      expect(storage.checkpoint('a')).toEqual({ version: 1, position: 1 });
      storage.rollback();
      expect(storage.checkpoint('a')).toBeUndefined();
      storage.close();
    });
  });
}
