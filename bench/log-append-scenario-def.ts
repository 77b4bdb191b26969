import { runLogAppend, runRawSqliteAppend } from './log-append-scenario.js';
import type { Scenario } from './scenario.js';

/** The event log alone: durable appends, one event per call as ingest makes them, 1,000 devices interleaved. */
export const logAppendScenario: Scenario = {
  name: 'log-append',
  async run({ quick, repeats, progress }) {
    const events = quick ? 20_000 : 1_000_000;
    const fleetlog: number[] = [];
    const baseline: number[] = [];
    const pause: number[] = [];
    const basePause: number[] = [];
    const threaded: number[] = [];
    const threadedPause: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const run = await runLogAppend(events, 'inline', (done) =>
        progress('log append: fleetlog, writer inline', done, events),
      );
      fleetlog.push(run.events / run.seconds);
      pause.push(run.longestPauseMs);
      const onThread = await runLogAppend(events, 'thread', (done) =>
        progress('log append: fleetlog, writer on its thread', done, events),
      );
      threaded.push(onThread.events / onThread.seconds);
      threadedPause.push(onThread.longestPauseMs);
      const batch = Math.max(1, Math.round(run.events / run.commits));
      const raw = runRawSqliteAppend(events, batch, (done) =>
        progress('log append: raw SQLite', done, events),
      );
      baseline.push(raw.events / raw.seconds);
      basePause.push(raw.longestPauseMs);
    }
    return [
      {
        scenario: 'event log append, 1,000 devices (--log-writer inline)',
        unit: 'events/s',
        better: 'higher',
        fleetlog,
        baselineName: 'SQLite insert, no index, same commits',
        baseline,
        note: 'the floor of any durable SQLite store; fleetlog adds dedup, per-device versions and three indexes',
      },
      {
        scenario: 'event log append: longest pause of the appending thread (--log-writer inline)',
        unit: 'ms',
        better: 'lower',
        fleetlog: pause,
        baselineName: 'SQLite, longest commit (its own WAL checkpoints)',
        baseline: basePause,
        note: 'group commits and index passes on the appending thread; the checkpoint copy runs on a thread of its own (sqlite-checkpointer.ts)',
      },
      {
        scenario: 'event log append, 1,000 devices (--log-writer thread)',
        unit: 'events/s',
        better: 'higher',
        fleetlog: threaded,
        baselineName: 'SQLite insert, no index, same commits',
        baseline,
      },
      {
        scenario: 'event log append: longest pause of the appending thread (--log-writer thread)',
        unit: 'ms',
        better: 'lower',
        fleetlog: threadedPause,
        baselineName: 'SQLite, longest commit (its own WAL checkpoints)',
        baseline: basePause,
        note: "what is left on it: packing appends, taking each group commit's answer, garbage collection",
      },
    ];
  },
};
