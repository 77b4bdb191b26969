// CI's part of mutation testing (`npm run mutate:ci`, a few minutes): "as of T" and the WAL syncer, the two
// places where an off-by-one or a missing sync breaks a guarantee without any other test noticing. Every mutant
// there is killed or marked equivalent in the source, so any survivor fails the run.
import base from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  vitest: { configFile: 'vitest.mutate-ci.config.ts' },
  mutate: ['processors/device-state/queries.ts:89-116', 'eventlog/wal-syncer.ts'],
  concurrency: 2,
  // A mutant that loops (a paging loop that never ends) is a kill: do not wait long for it.
  timeoutMS: 5000,
  incremental: false,
  tempDirName: '.stryker-tmp-ci',
  reporters: ['clear-text', 'progress'],
  thresholds: { high: 100, low: 100, break: 100 },
};
