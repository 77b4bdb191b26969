/**
 * The devices the embedded broker has recorded online, kept on disk so that a server that died without recording
 * them offline (kill -9, power loss) can do so when it starts again: otherwise they would stay "online" in every
 * read model until they happened to reconnect and disconnect. A clean stop records them offline itself.
 */
export interface PresenceStore {
  /** Devices recorded online and not recorded offline since. */
  online(): string[];
  markOnline(deviceId: string): void;
  markOffline(deviceId: string): void;
  close(): void;
}

/** The in-memory twin: nothing survives the process, so nothing is left to recover at start. */
export function createMemoryPresenceStore(): PresenceStore {
  const online = new Set<string>();
  return {
    online: () => [...online],
    markOnline: (deviceId) => void online.add(deviceId),
    markOffline: (deviceId) => void online.delete(deviceId),
    close: () => undefined,
  };
}
