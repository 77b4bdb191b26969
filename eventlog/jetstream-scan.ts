import { AckPolicy, DeliverPolicy, nanos, type JetStreamClient, type JetStreamManager } from 'nats';
import type { StoredEvent } from '../core/event.js';
import { decodeEvent } from './jetstream-subjects.js';

export interface ScanTarget {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
}

/** Messages asked for per pull request: bounds what one response buffers in the client. */
const PULL_BATCH = 1000;

/**
 * Visits the stored messages matching `filter` from stream sequence `start` on (or, given a Date, from the
 * first message the server received at or after it), in sequence order, until
 * `visit` returns false, `max` messages were visited or the messages present at the start are exhausted.
 *
 * One ephemeral pull consumer per scan (in memory, acks off, deleted at the end and expiring on its own after
 * a minute if this process dies): its creation reports `num_pending`, which bounds the scan, and `no_wait`
 * pulls return at once instead of waiting for messages that will never come. nats-server 2.9 has no batched
 * direct get (2.11), and one `STREAM.MSG.GET` per sequence would cost a round trip per event.
 */
export async function scanStream(
  target: ScanTarget,
  filter: string,
  start: number | Date,
  max: number,
  visit: (event: StoredEvent) => boolean,
): Promise<void> {
  if (max <= 0) return;
  const { js, jsm, stream } = target;
  const info = await jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None,
    ...(start instanceof Date
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.toISOString() }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, start) }),
    filter_subject: filter,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(60_000),
  });
  try {
    let left = Math.min(max, info.num_pending);
    while (left > 0) {
      let got = 0;
      let stop = false;
      for await (const m of js.fetch(stream, info.name, {
        batch: Math.min(left, PULL_BATCH),
        no_wait: true,
      })) {
        got++;
        if (!visit(decodeEvent(m.seq, m.headers, m.data))) {
          stop = true;
          break;
        }
      }
      left -= got;
      // got === 0: what was pending is gone (removed by retention meanwhile); never loop on an empty pull.
      if (stop || got === 0) return;
    }
  } finally {
    await jsm.consumers.delete(stream, info.name).catch(() => undefined);
  }
}
