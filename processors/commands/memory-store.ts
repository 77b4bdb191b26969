import { isOpen, type CommandRecord } from './fold.js';
import type { CommandStore } from './store.js';

/** The in-memory twin of the SQLite store: rows as JSON text, selected and ordered as the SQL does. */
export function createMemoryCommandStore(): CommandStore {
  let rows = new Map<string, string>();
  let kept = new Map<string, string>();
  let foldedThrough = 0;
  let keptThrough = 0;
  const all = () => [...rows.values()].map((json) => JSON.parse(json) as CommandRecord);
  return {
    get(commandId) {
      const json = rows.get(commandId);
      return json === undefined ? undefined : (JSON.parse(json) as CommandRecord);
    },
    save(records, through) {
      for (const r of records) rows.set(r.commandId, JSON.stringify(r));
      foldedThrough = through;
    },
    list(deviceId, q) {
      return all()
        .filter(
          (r) =>
            r.deviceId === deviceId &&
            (q.statuses === undefined || q.statuses.length === 0 || q.statuses.includes(r.status)) &&
            (q.beforeSeq === undefined || r.issuedSeq < q.beforeSeq) &&
            (q.issuedBy === undefined || r.issuedAt <= q.issuedBy),
        )
        .sort((a, b) => b.issuedSeq - a.issuedSeq)
        .slice(0, q.limit);
    },
    open: () =>
      all()
        .filter((r) => isOpen(r.status))
        .sort((a, b) => a.expiresAt - b.expiresAt || a.issuedSeq - b.issuedSeq),
    openFor: (deviceId) =>
      all()
        .filter((r) => r.deviceId === deviceId && isOpen(r.status))
        .sort((a, b) => a.issuedSeq - b.issuedSeq),
    keptThrough: () => keptThrough,
    keepWhole() {
      kept = new Map(rows);
      keptThrough = foldedThrough;
    },
    reset() {
      rows = new Map(kept);
      foldedThrough = keptThrough;
    },
  };
}
