import type { DesiredState } from './fold.js';
import type { DesiredChange, DesiredStateStore } from './store.js';

/** The in-memory twin of the SQLite store: documents and changes as JSON text, selected as the SQL does. */
export function createMemoryDesiredStateStore(): DesiredStateStore {
  type Tables = { states: Map<string, string>; changes: Map<string, string> };
  let live: Tables = { states: new Map(), changes: new Map() };
  let kept: Tables = { states: new Map(), changes: new Map() };
  let foldedThrough = 0;
  let keptThrough = 0;
  const copy = (t: Tables): Tables => ({ states: new Map(t.states), changes: new Map(t.changes) });
  return {
    load(deviceId) {
      const json = live.states.get(deviceId);
      return json === undefined ? undefined : (JSON.parse(json) as DesiredState);
    },
    save(states, changes, through) {
      for (const s of states) live.states.set(s.deviceId, JSON.stringify(s));
      for (const c of changes) {
        // The primary key of desired_changes; INSERT OR IGNORE keeps the first.
        const key = JSON.stringify([c.deviceId, c.version, c.seq]);
        if (!live.changes.has(key)) live.changes.set(key, JSON.stringify(c));
      }
      foldedThrough = through;
    },
    asOf(deviceId, at) {
      let best: DesiredChange | undefined;
      for (const json of live.changes.values()) {
        const c = JSON.parse(json) as DesiredChange;
        if (c.deviceId !== deviceId || c.time > at) continue;
        if (!best || c.version > best.version || (c.version === best.version && c.seq > best.seq)) best = c;
      }
      return (
        best && { deviceId, version: best.version, state: best.state, updatedAt: best.time, seq: best.seq }
      );
    },
    all: () =>
      [...live.states.values()]
        .map((json) => JSON.parse(json) as DesiredState)
        .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0)),
    keptThrough: () => keptThrough,
    keepWhole() {
      kept = copy(live);
      keptThrough = foldedThrough;
    },
    reset() {
      live = copy(kept);
      foldedThrough = keptThrough;
    },
  };
}
