// Mutation testing of the code behind fleetlog's guarantees: `npm run mutate` (README "Mutation testing").
// Scope with MUTATE=<glob>[,<glob>...] (e.g. MUTATE=processors/device-state/queries.ts); the CI part is stryker.ci.config.mjs.
const everything = [
  'eventlog/sqlite-*.ts',
  'eventlog/wal-syncer.ts',
  'eventlog/memory-event-log.ts',
  'eventlog/jetstream-*.ts',
  'ingest/parse-message.ts',
  'ingest/ingester.ts',
  'ingest/qos2-receipts.ts',
  'ingest/resend-memory.ts',
  'core/event-id.ts',
  // The ack path of the embedded broker: authorizePublish (append, then PUBACK or close).
  'ingest/embedded-broker.ts:83-139',
  'processors/*/fold.ts',
  'processors/device-state/queries.ts',
  'processors/runner/*.ts',
];

// STRYKER_RUN=name keeps a run's sandbox, reports and incremental results apart, so two scoped runs can overlap.
const run = process.env.STRYKER_RUN ? `-${process.env.STRYKER_RUN}` : '';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: process.env.MUTATE ? process.env.MUTATE.split(',') : everything,
  coverageAnalysis: 'perTest',
  // The machine has 2 cores, shared: one test process at a time by default (STRYKER_CONCURRENCY to change).
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 1),
  timeoutMS: 30_000,
  ignoreStatic: true,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/mutation${run}.html` },
  jsonReporter: { fileName: `reports/mutation/mutation${run}.json` },
  // Results are kept per mutant: a later run tests again only what changed (code or covering tests).
  incremental: true,
  incrementalFile: `reports/mutation/stryker-incremental${run}.json`,
  tempDirName: `.stryker-tmp${run}`,
  cleanTempDir: 'always',
};
