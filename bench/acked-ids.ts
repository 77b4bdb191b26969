/**
 * Which messages the publishers had acknowledged, and which the server side holds, by message identity (device
 * and the message number the publisher put in it), so a benchmark that loses one acknowledged message and stores
 * another twice is caught although its counts add up.
 */

/** Per device id, the acknowledged message numbers as sorted, disjoint [first, last] ranges (compact in JSON). */
export type AckedRanges = Record<string, [number, number][]>;

export function toRanges(numbers: readonly number[]): [number, number][] {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const n of sorted) {
    const last = ranges.at(-1);
    if (last && n === last[1] + 1) last[1] = n;
    else ranges.push([n, n]);
  }
  return ranges;
}

/** Message numbers the server side took in, per device, with how often each arrived. */
export class ReceivedIds {
  private readonly byDevice = new Map<string, Map<number, number>>();

  add(deviceId: string, n: number): void {
    let seen = this.byDevice.get(deviceId);
    if (!seen) this.byDevice.set(deviceId, (seen = new Map<number, number>()));
    seen.set(n, (seen.get(n) ?? 0) + 1);
  }

  /** From an MQTT payload of the bench publishers (`{"seq":…,"metrics":{…}}` on `devices/{id}/telemetry`). */
  addPayload(topic: string, payload: Buffer): void {
    const deviceId = /^devices\/([^/]+)\/telemetry$/.exec(topic)?.[1];
    const seq = (JSON.parse(payload.toString()) as { seq?: unknown }).seq;
    if (deviceId !== undefined && typeof seq === 'number') this.add(deviceId, seq);
  }

  count(deviceId: string, n: number): number {
    return this.byDevice.get(deviceId)?.get(n) ?? 0;
  }
}

/**
 * Throws unless every acknowledged message arrived, and (with `once`) arrived exactly once. The message names the
 * first few lost or duplicated, as `device#n`.
 */
export function checkAcked(acked: AckedRanges, received: ReceivedIds, what: string, once: boolean): number {
  const lost: string[] = [];
  const twice: string[] = [];
  let checked = 0;
  for (const [deviceId, ranges] of Object.entries(acked)) {
    for (const [first, last] of ranges) {
      for (let n = first; n <= last; n++) {
        checked++;
        const times = received.count(deviceId, n);
        if (times === 0) lost.push(`${deviceId}#${n}`);
        else if (once && times > 1) twice.push(`${deviceId}#${n}`);
      }
    }
  }
  if (lost.length > 0 || twice.length > 0) {
    const sample = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ', …' : ''}`;
    throw new Error(
      `${what}: of ${checked} acknowledged messages, ${lost.length} lost${lost.length > 0 ? ` (${sample(lost)})` : ''}, ${twice.length} stored twice${twice.length > 0 ? ` (${sample(twice)})` : ''}`,
    );
  }
  return checked;
}
