import { jsonEqual } from '../core/merge-patch.js';
import type { DesiredState } from '../processors/read-models.js';

/** What GET /api/devices/:id/desired answers, and (without `deviceId` and `reported`) the aggregate's `desired`. */
export interface DesiredView {
  deviceId: string;
  /** 0 while none was set. Also the ETag: send it back as If-Match. */
  version: number;
  state: Record<string, unknown>;
  /** The device's reported state (the aggregate's shadow). */
  reported: Record<string, unknown>;
  /** What the device has yet to apply: the desired keys whose reported value differs; empty when in sync. */
  delta: Record<string, unknown>;
  /** When the current version was set, ISO 8601; null while none was set. */
  updatedAt: string | null;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The desired keys that the reported state does not match, as AWS IoT shadows compute it: objects on both sides are
 * compared key by key (only differing members are kept), anything else (numbers, strings, arrays) as a whole.
 * Keys only the device reports are not part of it.
 */
export function desiredDelta(
  desired: Record<string, unknown>,
  reported: Record<string, unknown>,
): Record<string, unknown> {
  const delta: Record<string, unknown> = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = Object.hasOwn(reported, key) ? reported[key] : undefined;
    let differs: unknown;
    if (isObject(want) && isObject(have)) {
      const inner = desiredDelta(want, have);
      if (Object.keys(inner).length > 0) differs = inner;
    } else if (!jsonEqual(want, have)) differs = want;
    if (differs !== undefined) {
      Object.defineProperty(delta, key, {
        value: differs,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return delta;
}

export function viewDesired(
  deviceId: string,
  desired: DesiredState | undefined,
  reported: Record<string, unknown> | undefined,
): DesiredView {
  const state = desired?.state ?? {};
  const have = reported ?? {};
  return {
    deviceId,
    version: desired?.version ?? 0,
    state,
    reported: have,
    delta: desiredDelta(state, have),
    updatedAt: desired?.updatedAt == null ? null : new Date(desired.updatedAt).toISOString(),
  };
}

/** The aggregate's `desired`: the view without what the aggregate shows already. */
export function desiredSummary(view: DesiredView): Omit<DesiredView, 'deviceId' | 'reported'> {
  return { version: view.version, state: view.state, delta: view.delta, updatedAt: view.updatedAt };
}
