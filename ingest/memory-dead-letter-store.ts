import type { DeadLetter, DeadLetterStore } from './dead-letter-store.js';
import type { RejectReason } from './parse-message.js';

/** In-memory twin of the dead-letter store, for unit tests and `--event-log memory`. */
export function createMemoryDeadLetterStore(): DeadLetterStore {
  const letters: DeadLetter[] = [];
  return {
    add(letter) {
      letters.push({ ...letter, id: letters.length + 1 });
      return Promise.resolve();
    },
    list({ after, reason, deviceId, limit }) {
      return Promise.resolve(
        letters
          .filter(
            (l) =>
              l.id > (after ?? 0) &&
              (!reason || l.reason === reason) &&
              (!deviceId || l.deviceId === deviceId),
          )
          .slice(0, limit),
      );
    },
    counts(deviceId) {
      const counts: Partial<Record<RejectReason, number>> = {};
      for (const l of letters) {
        if (deviceId === undefined || l.deviceId === deviceId) counts[l.reason] = (counts[l.reason] ?? 0) + 1;
      }
      return Promise.resolve(counts);
    },
    close() {
      return Promise.resolve();
    },
  };
}
