import type Database from 'better-sqlite3';

/** A device of the log: its key in the indexes, and the last `version` of its stream. */
export interface Device {
  key: number;
  id: string;
  lastVersion: number;
}

/**
 * The log's devices, in memory: id ↔ key for the indexes, and each stream's last version. Loaded from `devices` on
 * open; the writer owns the versions (it hands them out) and registers devices once their first event committed;
 * the reader and the remover only look keys up. The writer and the appending side each keep one
 * (sqlite-log-writer.ts, sqlite-event-log.ts): the writer's is the one with versions.
 */
export interface DeviceRegistry {
  byId(deviceId: string): Device | undefined;
  byKey(key: number): Device | undefined;
  /** The device id of a key (`#key` for a key the registry does not know, which the writer never produces). */
  idOf(key: number): string;
  /** Inserts a device row (inside the writer's transaction); not registered until `committed`. */
  insert(deviceId: string): Device;
  /** A transaction committed: these devices (new ones included) now end at these versions. */
  committed(versions: ReadonlyMap<Device, number>): void;
  /** A device the log's writer inserted: the appending side's registry learns its key (not its versions). */
  learn(deviceId: string, key: number): void;
  /** Every device key, ascending. */
  keys(): number[];
}

export function loadDeviceRegistry(db: Database.Database): DeviceRegistry {
  const byId = new Map<string, Device>();
  const byKey = new Map<number, Device>();
  for (const row of db.prepare('SELECT device_key, device_id, last_version FROM devices').all() as {
    device_key: number;
    device_id: string;
    last_version: number;
  }[]) {
    const device = { key: row.device_key, id: row.device_id, lastVersion: row.last_version };
    byId.set(device.id, device);
    byKey.set(device.key, device);
  }
  const insert = db
    .prepare('INSERT INTO devices (device_id, last_version) VALUES (?, 0) RETURNING device_key')
    .pluck();
  return {
    byId: (deviceId) => byId.get(deviceId),
    byKey: (key) => byKey.get(key),
    idOf: (key) => byKey.get(key)?.id ?? `#${key}`,
    insert: (deviceId) => ({ key: insert.get(deviceId) as number, id: deviceId, lastVersion: 0 }),
    committed(versions) {
      for (const [device, version] of versions) {
        device.lastVersion = version;
        byId.set(device.id, device);
        byKey.set(device.key, device);
      }
    },
    learn(deviceId, key) {
      const device = { key, id: deviceId, lastVersion: 0 };
      byId.set(deviceId, device);
      byKey.set(key, device);
    },
    keys: () => [...byKey.keys()].sort((a, b) => a - b),
  };
}
