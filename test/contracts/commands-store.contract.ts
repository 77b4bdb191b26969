import { describe, expect, it } from 'vitest';
import type { CommandRecord, CommandStatus } from '../../processors/commands/fold.js';
import type { CommandStore } from '../../processors/commands/store.js';

function command(
  commandId: string,
  deviceId: string,
  issuedSeq: number,
  status: CommandStatus,
  expiresAt = 10_000 + issuedSeq,
): CommandRecord {
  const issuedAt = 1000 * issuedSeq;
  return {
    commandId,
    deviceId,
    name: 'reboot',
    params: { delay: issuedSeq },
    timeoutMs: expiresAt - issuedAt,
    issuedAt,
    issuedSeq,
    expiresAt,
    status,
    deliveries: status === 'pending' ? 0 : 1,
    deliveredAt: status === 'pending' ? null : issuedAt + 1,
    completedAt: status === 'pending' || status === 'delivered' ? null : issuedAt + 2,
    changes: [{ status: 'pending', time: issuedAt, seq: issuedSeq }],
    lateReplies: 0,
  };
}

/** The one suite every commands store passes: the SQLite store and its memory twin. */
export function commandsStoreContract(name: string, open: () => CommandStore): void {
  describe(`commands store contract: ${name}`, () => {
    it('saves and gets each command; a save replaces it', () => {
      const store = open();
      expect(store.get('c1')).toBeUndefined();
      store.save([command('c1', 'a', 1, 'pending')], 1);
      store.save([command('c1', 'a', 1, 'succeeded')], 2);
      expect(store.get('c1')).toEqual(command('c1', 'a', 1, 'succeeded'));
    });

    it("lists one device's commands newest first, by status, before a position and issued by a time", () => {
      const store = open();
      const all = [
        command('c1', 'a', 1, 'succeeded'),
        command('c2', 'b', 2, 'pending'),
        command('c3', 'a', 3, 'failed'),
        command('c4', 'a', 4, 'pending'),
        command('c5', 'a', 5, 'expired'),
      ];
      store.save(all, 5);
      const ids = (records: CommandRecord[]) => records.map((r) => r.commandId);
      expect(ids(store.list('a', { limit: 10 }))).toEqual(['c5', 'c4', 'c3', 'c1']);
      expect(ids(store.list('a', { limit: 2 }))).toEqual(['c5', 'c4']);
      expect(ids(store.list('a', { statuses: ['pending', 'failed'], limit: 10 }))).toEqual(['c4', 'c3']);
      expect(ids(store.list('a', { statuses: [], limit: 10 }))).toEqual(['c5', 'c4', 'c3', 'c1']);
      expect(ids(store.list('a', { beforeSeq: 4, limit: 10 }))).toEqual(['c3', 'c1']);
      expect(ids(store.list('a', { issuedBy: 3000, limit: 10 }))).toEqual(['c3', 'c1']);
      expect(ids(store.list('c', { limit: 10 }))).toEqual([]);
    });

    it('lists open commands: all by soonest expiry, one device by issue order', () => {
      const store = open();
      store.save(
        [
          command('c1', 'a', 1, 'delivered', 50_000),
          command('c2', 'b', 2, 'pending', 20_000),
          command('c3', 'a', 3, 'succeeded', 10_000),
          command('c4', 'a', 4, 'pending', 30_000),
          command('c5', 'a', 5, 'expired', 5_000),
        ],
        5,
      );
      expect(store.open().map((r) => r.commandId)).toEqual(['c2', 'c4', 'c1']);
      expect(store.openFor('a').map((r) => r.commandId)).toEqual(['c1', 'c4']);
      expect(store.openFor('c')).toEqual([]);
    });

    it('keeps a whole copy with the position it was folded through; a reset restores it', () => {
      const store = open();
      expect(store.keptThrough()).toBe(0);
      store.save([command('c1', 'a', 1, 'pending')], 7);
      store.keepWhole();
      expect(store.keptThrough()).toBe(7);
      store.save([command('c1', 'a', 1, 'succeeded'), command('c2', 'a', 2, 'pending')], 9);
      store.reset();
      expect([store.get('c1'), store.get('c2'), store.openFor('a').length]).toEqual([
        command('c1', 'a', 1, 'pending'),
        undefined,
        1,
      ]);
      // Folding goes on from the kept position: keeping again keeps that, not a stale mark.
      store.save([command('c2', 'a', 2, 'pending')], 11);
      store.keepWhole();
      expect(store.keptThrough()).toBe(11);
    });
  });
}
