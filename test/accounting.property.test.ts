import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createIngester } from '../ingest/ingester.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { createPresenceTracker } from '../ingest/presence-tracker.js';
import { applyAccounting, initialAccounting, type DeviceAccounting } from '../processors/accounting/fold.js';

/** Reproduce a failure with FLEETLOG_PROPERTY_SEED=<seed>. */
const SEED = Number(process.env.FLEETLOG_PROPERTY_SEED ?? 20261205);
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const SKEW_MS = 300_000;

/** One thing a device does. Resends pick a message it sent before; a reboot restarts its counter. */
type Action =
  | {
      kind: 'send';
      device: number;
      topic: string;
      seq: boolean;
      ts: 'none' | 'ok' | 'ahead' | 'unsynced';
      value: number;
    }
  | { kind: 'resend'; device: number; pick: number }
  | { kind: 'reboot'; device: number }
  | { kind: 'malformed'; device: number }
  | { kind: 'status'; device: number; online: boolean };

const device = fc.integer({ min: 0, max: 2 });
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      device,
      topic: fc.constantFrom('telemetry', 'state', 'events/door'),
      seq: fc.boolean(),
      ts: fc.constantFrom(
        'none' as const,
        'ok' as const,
        'ok' as const,
        'ahead' as const,
        'unsynced' as const,
      ),
      // Few values, so equal payloads (the corner case: same seq, same bytes, no ts) do happen.
      value: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resend' as const), device, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reboot' as const), device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('malformed' as const), device }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('status' as const), device, online: fc.boolean() }) },
);

interface Model {
  received: number;
  appended: number;
  duplicates: number;
  deadLettered: number;
  clockAhead: number;
  clockUnsynced: number;
  /** Per topic: the last seq appended and the times it went back. */
  counters: Map<string, { last: number; resets: number }>;
}

function body(topic: string, value: number, seq: number | undefined, ts: number | string | undefined) {
  const envelope = { ...(ts === undefined ? {} : { ts }), ...(seq === undefined ? {} : { seq }) };
  if (topic === 'telemetry') return JSON.stringify({ ...envelope, metrics: { v: value } });
  if (topic === 'state') return JSON.stringify({ ...envelope, state: { v: value } });
  return JSON.stringify({ ...envelope, data: { v: value } });
}

describe(`per-device accounting (fast-check seed ${SEED})`, () => {
  it('adds up for any mix of messages, resends, reboots, skewed clocks, bad input and status reports: received = appended + duplicates + dead-lettered, each as specified', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 60 }), async (actions) => {
        const log = createMemoryEventLog();
        const deadLetters = createMemoryDeadLetterStore();
        const ingester = createIngester({
          log,
          deadLetters,
          presence: createPresenceTracker({ log, logger: silentLogger(), now: () => NOW }),
          metrics: createMetrics(),
          logger: silentLogger(),
          maxPayloadBytes: 65536,
          maxClockSkewMs: SKEW_MS,
          now: () => NOW,
        });
        const models = [0, 1, 2].map((): Model => ({
          received: 0,
          appended: 0,
          duplicates: 0,
          deadLettered: 0,
          clockAhead: 0,
          clockUnsynced: 0,
          counters: new Map(),
        }));
        const seqs = [0, 0, 0];
        const online: (boolean | null)[] = [null, null, null];
        /** Per device, what it sent that names itself (seq or ts): a resend of it is a duplicate. */
        const identified: { topic: string; payload: string }[][] = [[], [], []];
        const seen = new Set<string>();

        for (const a of actions) {
          const m = models[a.device] as Model;
          const id = `dev-${a.device}`;
          if (a.kind === 'reboot') {
            seqs[a.device] = 0;
            continue;
          }
          m.received++;
          if (a.kind === 'malformed') {
            await ingester.ingest({
              clientId: id,
              topic: `devices/${id}/telemetry`,
              payload: Buffer.from('{"v":'),
            });
            m.deadLettered++;
          } else if (a.kind === 'status') {
            await ingester.ingest({
              clientId: id,
              topic: `devices/${id}/status`,
              payload: Buffer.from(a.online ? 'online' : 'offline'),
            });
            // Only a change of presence is new; the first report is one unless it says offline of a device
            // never seen online (the tracker records changes from "offline").
            const was = online[a.device] ?? false;
            if (was === a.online) m.duplicates++;
            else {
              m.appended++;
              online[a.device] = a.online;
            }
          } else {
            const list = identified[a.device] as { topic: string; payload: string }[];
            let topic: string;
            let payload: string;
            let sendSeq: number | undefined;
            let ts: 'none' | 'ok' | 'ahead' | 'unsynced';
            if (a.kind === 'resend' && list.length > 0) {
              ({ topic, payload } = list[a.pick % list.length] as { topic: string; payload: string });
              const parsed = JSON.parse(payload) as { seq?: number; ts?: unknown };
              sendSeq = parsed.seq;
              ts =
                parsed.ts === undefined
                  ? 'none'
                  : parsed.ts === 5000
                    ? 'unsynced'
                    : typeof parsed.ts === 'string'
                      ? 'ahead'
                      : 'ok';
            } else {
              const send =
                a.kind === 'send' ? a : { topic: 'telemetry', seq: true, ts: 'ok' as const, value: 0 };
              topic = `devices/${id}/${send.topic}`;
              if (send.seq) seqs[a.device] = (seqs[a.device] ?? 0) + 1;
              sendSeq = send.seq ? seqs[a.device] : undefined;
              ts = send.ts;
              const time =
                ts === 'none'
                  ? undefined
                  : ts === 'ahead'
                    ? '2099-01-01T00:00:00Z'
                    : ts === 'unsynced'
                      ? 5000
                      : NOW - 60_000 + (seqs[a.device] ?? 0);
              payload = body(send.topic, send.value, sendSeq, time);
              if (sendSeq !== undefined || time !== undefined) list.push({ topic, payload });
            }
            await ingester.ingest({ clientId: id, topic, payload: Buffer.from(payload) });
            const names = sendSeq !== undefined || ts !== 'none';
            const key = `${topic}\0${payload}`;
            if (names && seen.has(key)) m.duplicates++;
            else {
              if (names) seen.add(key);
              m.appended++;
              if (ts === 'ahead') m.clockAhead++;
              if (ts === 'unsynced') m.clockUnsynced++;
              if (sendSeq !== undefined) {
                const topicKey = topic.split('/').slice(2).join('/');
                const c = m.counters.get(topicKey);
                if (!c) m.counters.set(topicKey, { last: sendSeq, resets: 0 });
                else {
                  if (sendSeq <= c.last) c.resets++;
                  c.last = sendSeq;
                }
              }
            }
          }
        }

        const folded = new Map<string, DeviceAccounting>();
        for (const e of await log.readAll({ after: 0, limit: 100_000 })) {
          const a = folded.get(e.deviceId) ?? initialAccounting(e.deviceId);
          applyAccounting(a, e);
          folded.set(e.deviceId, a);
        }
        for (const [i, m] of models.entries()) {
          const id = `dev-${i}`;
          const a = folded.get(id) ?? initialAccounting(id);
          const dead = Object.values(await deadLetters.counts(id)).reduce((x, y) => x + (y ?? 0), 0);
          const duplicates = a.duplicates.resend + a.duplicates.retransmission + a.duplicates.status;
          expect({ id, received: a.appended + duplicates + dead }).toEqual({ id, received: m.received });
          expect({
            id,
            appended: a.appended,
            duplicates,
            dead,
            ahead: a.clockCorrected.ahead,
            unsynced: a.clockCorrected.unsynced,
            counterResets: a.counterResets,
          }).toEqual({
            id,
            appended: m.appended,
            duplicates: m.duplicates,
            dead: m.deadLettered,
            ahead: m.clockAhead,
            unsynced: m.clockUnsynced,
            counterResets: Math.max(0, ...[...m.counters.values()].map((c) => c.resets)),
          });
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
