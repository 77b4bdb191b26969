import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../core/metrics.js';
import type { WriteHealth } from '../core/write-health.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import type { ReadModels } from '../processors/read-models.js';
import { notFound } from './params.js';

/** Fleet totals only: a per-device label would make one time series per device (cardinality). */
async function setAccountingGauges(
  metrics: Metrics,
  readModels: ReadModels,
  deadLetters: DeadLetterStore | undefined,
): Promise<void> {
  const totals = readModels.accounting.totals();
  const dup = totals.duplicates;
  const dead = deadLetters
    ? Object.values(await deadLetters.counts().catch(() => ({}))).reduce<number>((a, b) => a + (b ?? 0), 0)
    : 0;
  metrics.accountedMessages.set({ outcome: 'appended' }, totals.appended);
  metrics.accountedMessages.set({ outcome: 'duplicate' }, dup.resend + dup.retransmission + dup.status);
  metrics.accountedMessages.set({ outcome: 'dead_lettered' }, dead);
  for (const reason of ['resend', 'retransmission', 'status'] as const)
    metrics.accountedDuplicates.set({ reason }, dup[reason]);
  metrics.counterResets.set(totals.counterResets);
  metrics.clockCorrected.set({ reason: 'ahead' }, totals.clockCorrected.ahead);
  metrics.clockCorrected.set({ reason: 'unsynced' }, totals.clockCorrected.unsynced);
}

/** Retention's progress as /healthz shows it (times ISO 8601, null: not yet). */
function retentionHealth(readModels: ReadModels) {
  const r = readModels.retention();
  const iso = (t: number | null) => (t === null || t === 0 ? null : new Date(t).toISOString());
  return {
    state: r.state,
    keepMs: r.retentionMs,
    horizon: iso(r.horizon),
    removedBefore: iso(r.removedBefore),
    removed: r.removed,
    lastRunAt: iso(r.lastRunAt),
    ...(r.lastError === undefined ? {} : { lastError: r.lastError }),
  };
}

export function registerOpsRoutes(
  app: FastifyInstance,
  deps: {
    log: EventLog;
    deadLetters?: DeadLetterStore;
    metrics: Metrics;
    readModels?: ReadModels;
    health?: () => Record<string, unknown>;
  },
): void {
  const { log, metrics, readModels } = deps;
  const storage = (): WriteHealth[] =>
    [log.writeHealth?.(), deps.deadLetters?.writeHealth?.()].filter((h) => h !== undefined);
  const projections = () => readModels?.status() ?? [];

  app.get('/healthz', (_req, reply) => {
    const stats = log.stats();
    const status = projections();
    const stores = storage();
    // Unavailable (503): a store cannot write, so no message is acknowledged; `storage` says which, why and
    // since when. It answers 200 again after the first write that succeeds once space is back.
    const unwritable = stores.some((s) => !s.writable);
    return reply.code(unwritable ? 503 : 200).send({
      // Degraded, not down: ingest still accepts and keeps every message while a projection is stopped.
      // A sink retrying against an unreachable server degrades too; its lastError says why.
      status: unwritable
        ? 'unavailable'
        : status.some((p) => p.state === 'failed' || p.state === 'retrying')
          ? 'degraded'
          : 'ok',
      log: { lastSeq: stats.lastSeq, commits: stats.commits },
      storage: stores.map((s) => ({ ...s, since: new Date(s.since).toISOString() })),
      projections: status,
      ...(readModels ? { retention: retentionHealth(readModels) } : {}),
      ...deps.health?.(),
    });
  });

  app.get('/metrics', async (_req, reply) => {
    metrics.logLastSeq.set(log.stats().lastSeq);
    for (const s of storage()) metrics.storeWritable.set({ store: s.store }, s.writable ? 1 : 0);
    for (const p of projections()) {
      metrics.projectionLag.set({ projection: p.name }, p.lag);
      metrics.projectionFailed.set({ projection: p.name }, p.state === 'failed' ? 1 : 0);
    }
    if (readModels) {
      for (const c of readModels.checkpoints())
        metrics.projectionCheckpoint.set({ projection: c.name }, c.position);
      await setAccountingGauges(metrics, readModels, deps.deadLetters);
      const r = readModels.retention();
      metrics.retentionHorizon.set(r.horizon / 1000);
      metrics.retentionRemovedBefore.set((r.removedBefore ?? 0) / 1000);
      metrics.retentionRemoved.set(r.removed);
      metrics.retentionLastRun.set((r.lastRunAt ?? 0) / 1000);
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/api/projections', () => ({ projections: projections() }));

  /** Starts a rebuild and answers at once (202); progress shows in GET /api/projections. */
  app.post<{ Querystring: { projection?: string } }>('/api/projections/rebuild', (req, reply) => {
    if (!readModels) return notFound(reply, 'this process runs no processors');
    const name = req.query.projection;
    const known = projections().map((p) => p.name);
    if (name !== undefined && !known.includes(name)) {
      return notFound(reply, `unknown projection "${name}"; there are ${known.join(', ')}`);
    }
    readModels.rebuild(name).catch((err: unknown) => app.log.error({ err }, 'rebuild failed'));
    return reply.code(202).send({ rebuilding: name === undefined ? known : [name] });
  });
}
