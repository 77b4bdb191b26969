import type { Logger } from '../core/logger.js';

/** One stored event as the head cache needs it. */
export interface StoredRef {
  id: string;
  deviceId: string;
  seq: number;
  version: number;
}

/** A device's head as loaded from JetStream (the stream's last event of the device and the id index). */
export interface LoadedHead {
  /** Stream sequence of the device's last stored event; 0 when none is stored (or all were removed). */
  seq: number;
  version: number;
  /** The device's most recent ids with their stream sequences, oldest first. */
  recent: readonly (readonly [string, number])[];
  /** The load found ids the persisted index did not have: write it again. */
  stale: boolean;
}

/**
 * What this process knows of one device. The writer is the only part that changes `nextVersion`; the head
 * cache changes the rest when events are confirmed stored (own PubAcks, or events read back).
 */
export interface DeviceHead {
  readonly deviceId: string;
  /** Stream sequence of the device's last event known stored; 0 when none. */
  seq: number;
  /** Version of that event. */
  version: number;
  /** The version the writer assigned last: `version` plus this process's events of the device in flight. */
  nextVersion: number;
  /**
   * The device's most recent ids → stream sequence, oldest first: the last `depth` (and up to a quarter more).
   * The writer marks an id it has in flight with the negated sequence it predicts for it.
   */
  readonly recent: Map<string, number>;
  /** Changed since its id index entry was last written. */
  dirty: boolean;
  /** The device's subject in the events stream, once the writer has worked it out. */
  subject?: string;
}

interface Entry extends DeviceHead {
  state: 'loading' | 'ready' | 'failed';
  /** Bumped by every load started: a load that was overtaken by a newer one is ignored. */
  gen: number;
  /** When the current load's first attempt started, epoch ms. */
  loadingSince: number;
  error?: unknown;
  /** Events confirmed while the load was under way: applied on top of what the load returns. */
  early: StoredRef[];
  /** Events of this device queued or in flight in this process: a pinned entry is never dropped. */
  pins: number;
  waiters: (() => void)[];
}

export interface DeviceHeads {
  /**
   * Holds a device's entry for an event about to be queued, and starts loading it when missing. The entry
   * stays until as many `release` calls: the writer relies on it while events of the device are pending.
   */
  acquire(deviceId: string): void;
  release(deviceId: string): void;
  /** The device's head when loaded; `undefined` while loading; throws the load's error if it failed. */
  ready(deviceId: string): DeviceHead | undefined;
  /** Resolves when the device's load has finished (either way). */
  whenLoaded(deviceId: string): Promise<void>;
  /** An event known to be stored: moves the head forward (if newer) and remembers its id. */
  confirm(event: StoredRef, own: boolean): void;
  /** The writer's own event, acknowledged at `seq`: the same as `confirm`, on the head it already holds. */
  confirmOwn(head: DeviceHead, id: string, seq: number, version: number): void;
  /** An id the server reported stored at `seq` (a duplicate it caught): remembered, the head unchanged. */
  rememberId(deviceId: string, id: string, seq: number): void;
  /** Every in-flight assignment was withdrawn: next versions go back to the confirmed ones. */
  resetTentative(): void;
  /** Forgets everything: unpinned entries are dropped, pinned ones loaded again. */
  reloadAll(): void;
  /** Entries whose id index entry is behind (for the flusher). */
  dirty(): DeviceHead[];
  size(): number;
}

export interface DeviceHeadsOptions {
  load: (deviceId: string) => Promise<LoadedHead>;
  /** Recent ids kept per device (dedup beyond the server's duplicate window). */
  depth: number;
  /** Entries kept when unpinned and clean; the least recently used go first. */
  maxDevices: number;
  /** Loads under way at once. */
  maxLoads?: number;
  /** How long a failing load is retried (a cluster electing a leader answers nothing meanwhile), ms. */
  retryForMs?: number;
  /** Called when a load completes, so the writer can dispatch the events waiting for it. */
  onLoaded: () => void;
  logger: Logger;
}

/**
 * The device-head cache: for each device this process writes to, the version of its last stored event and
 * its recent ids (which make a resend a duplicate after the server's duplicate window has forgotten it).
 * It is exact only together with the writer's fence: the writer keeps it in step with the stream and tells
 * it when it lost track (`reloadAll`). Loads run in parallel, at most `maxLoads` at once.
 */
export function createDeviceHeads(options: DeviceHeadsOptions): DeviceHeads {
  const { depth, maxDevices, logger } = options;
  const maxLoads = options.maxLoads ?? 256;
  const retryForMs = options.retryForMs ?? 20_000;
  // Map order is recency: `touch` moves an entry to the end, eviction takes from the front.
  const entries = new Map<string, Entry>();
  let loadQueue: { e: Entry; gen: number }[] = [];
  let loadNext = 0;
  let loading = 0;

  function remember(e: DeviceHead, id: string, seq: number): void {
    const had = e.recent.get(id);
    if (had === seq) return;
    // An in-flight mark is replaced where it stands (publish order); an id learned again moves to the end.
    if (had !== undefined && had > 0) e.recent.delete(id);
    e.recent.set(id, seq);
    // Trimmed in steps of a quarter, not one id per event: the iterator costs more than the slack.
    if (e.recent.size > depth + (depth >> 2)) {
      let drop = e.recent.size - depth;
      for (const key of e.recent.keys()) {
        if (drop-- <= 0) break;
        e.recent.delete(key);
      }
    }
  }

  function apply(e: Entry, id: string, seq: number, version: number, own: boolean): void {
    remember(e, id, seq);
    if (seq > e.seq) {
      e.seq = seq;
      if (version > e.version) e.version = version;
      if (e.version > e.nextVersion) e.nextVersion = e.version;
    }
    // Own appends are this process's to index; events read back were indexed by whoever wrote them.
    if (own) e.dirty = true;
  }

  function startLoads(): void {
    while (loading < maxLoads && loadNext < loadQueue.length) {
      const { e, gen } = loadQueue[loadNext++] as { e: Entry; gen: number };
      if (loadNext === loadQueue.length) {
        loadQueue = [];
        loadNext = 0;
      }
      if (entries.get(e.deviceId) !== e || e.gen !== gen) continue;
      loading++;
      options.load(e.deviceId).then(
        (loaded) => {
          loading--;
          if (entries.get(e.deviceId) === e && e.gen === gen) {
            e.seq = loaded.seq;
            e.version = loaded.version;
            e.nextVersion = loaded.version;
            e.recent.clear();
            for (const [id, seq] of loaded.recent) remember(e, id, seq);
            e.dirty = loaded.stale;
            for (const ev of e.early) apply(e, ev.id, ev.seq, ev.version, false);
            e.early = [];
            e.state = 'ready';
          }
          finish(e);
        },
        (err: unknown) => {
          loading--;
          if (entries.get(e.deviceId) === e && e.gen === gen) {
            if (Date.now() - e.loadingSince < retryForMs) {
              // Tried again shortly, as the same load: waiters keep waiting.
              setTimeout(() => {
                if (entries.get(e.deviceId) === e && e.gen === gen) {
                  loadQueue.push({ e, gen });
                  startLoads();
                }
              }, 250).unref();
              startLoads();
              return;
            }
            e.state = 'failed';
            e.error = err;
            logger.warn({ err, deviceId: e.deviceId }, 'device head lookup failed');
          }
          finish(e);
        },
      );
    }
  }

  function finish(e: Entry): void {
    const waiters = e.waiters;
    e.waiters = [];
    for (const w of waiters) w();
    startLoads();
    options.onLoaded();
  }

  function startLoad(e: Entry): void {
    e.state = 'loading';
    e.early = [];
    e.gen++;
    e.loadingSince = Date.now();
    loadQueue.push({ e, gen: e.gen });
    startLoads();
  }

  function create(deviceId: string): Entry {
    const e: Entry = {
      deviceId,
      seq: 0,
      version: 0,
      nextVersion: 0,
      recent: new Map(),
      dirty: false,
      state: 'loading',
      gen: 0,
      loadingSince: 0,
      early: [],
      pins: 0,
      waiters: [],
    };
    entries.set(deviceId, e);
    startLoad(e);
    return e;
  }

  function evict(): void {
    if (entries.size <= maxDevices) return;
    for (const [deviceId, e] of entries) {
      if (entries.size <= maxDevices) break;
      if (e.pins === 0 && !e.dirty && e.state !== 'loading') entries.delete(deviceId);
    }
  }

  return {
    acquire(deviceId) {
      let e = entries.get(deviceId);
      if (!e || (e.state === 'failed' && e.pins === 0)) e = create(deviceId);
      else {
        entries.delete(deviceId);
        entries.set(deviceId, e);
      }
      e.pins++;
    },
    release(deviceId) {
      const e = entries.get(deviceId);
      if (!e) return;
      e.pins--;
      if (e.pins === 0 && e.state === 'failed') entries.delete(deviceId);
      else if (e.pins === 0) evict();
    },
    ready(deviceId) {
      const e = entries.get(deviceId);
      if (!e || e.state === 'loading') return undefined;
      if (e.state === 'failed') throw e.error;
      return e;
    },
    whenLoaded(deviceId) {
      const e = entries.get(deviceId);
      if (!e || e.state !== 'loading') return Promise.resolve();
      return new Promise((resolve) => e.waiters.push(resolve));
    },
    confirm(ev, own) {
      const e = entries.get(ev.deviceId);
      if (!e) return; // not cached: a later load reads it from the stream
      if (e.state === 'loading') e.early.push(ev);
      else if (e.state === 'ready') apply(e, ev.id, ev.seq, ev.version, own);
    },
    confirmOwn(head, id, seq, version) {
      const e = head as Entry;
      if (e.state === 'loading') e.early.push({ id, deviceId: e.deviceId, seq, version });
      else if (e.state === 'ready') apply(e, id, seq, version, true);
    },
    rememberId(deviceId, id, seq) {
      const e = entries.get(deviceId);
      if (e?.state === 'ready') remember(e, id, seq);
    },
    resetTentative() {
      for (const e of entries.values()) e.nextVersion = e.version;
    },
    reloadAll() {
      for (const [deviceId, e] of entries) {
        if (e.pins === 0) entries.delete(deviceId);
        else startLoad(e);
      }
    },
    dirty() {
      const out: DeviceHead[] = [];
      for (const e of entries.values()) if (e.dirty && e.state === 'ready') out.push(e);
      return out;
    },
    size: () => entries.size,
  };
}
