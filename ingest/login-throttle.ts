/**
 * Failed logins per source address in a fixed window. Each wrong secret or unknown device id costs the server
 * one scrypt (tens of ms on libuv's four-thread pool), so a client guessing secrets could slow every other
 * login. Past `maxFailures` in `windowMs`, that source's logins are checked only against secrets that already
 * verified in this process (microseconds); anything else is refused without hashing until the window ends.
 * Devices that reconnect with a good secret behind the same address (a NAT) keep getting in.
 */
export interface LoginThrottleOptions {
  /** Failed logins a source may have in one window before it is throttled. Default 20. */
  maxFailures?: number;
  /** Window length, ms. Default 60 000. */
  windowMs?: number;
  /** Most sources tracked at once; the oldest window is dropped first. Default 10 000. */
  maxSources?: number;
  now?: () => number;
}

export interface LoginThrottle {
  /** True while `source` is over its failure budget for the current window. */
  throttled(source: string): boolean;
  /** Records one failed login that cost a hash. */
  failed(source: string): void;
}

export function createLoginThrottle(options: LoginThrottleOptions = {}): LoginThrottle {
  const maxFailures = options.maxFailures ?? 20;
  const windowMs = options.windowMs ?? 60_000;
  const maxSources = options.maxSources ?? 10_000;
  const now = options.now ?? Date.now;
  // Insertion order is window-start order, so the first entry is the oldest.
  const windows = new Map<string, { start: number; failures: number }>();

  const current = (source: string) => {
    const w = windows.get(source);
    if (w && now() - w.start >= windowMs) {
      windows.delete(source);
      return undefined;
    }
    return w;
  };

  return {
    throttled(source) {
      return (current(source)?.failures ?? 0) >= maxFailures;
    },
    failed(source) {
      const w = current(source);
      if (w) {
        w.failures++;
        return;
      }
      if (windows.size >= maxSources) windows.delete(windows.keys().next().value ?? '');
      windows.set(source, { start: now(), failures: 1 });
    },
  };
}
