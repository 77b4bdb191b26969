const root = process.argv[2];
const { openSqliteReadOnlyLog } = await import(`${root}/dist/eventlog/sqlite-read-only-log.js`);
const { deviceStateReadModel } = await import(`${root}/dist/processors/device-state/read-model.js`);
const { telemetrySeriesReadModel } = await import(`${root}/dist/processors/telemetry-series/read-model.js`);
const log = openSqliteReadOnlyLog(process.env.DIR);
const all = []; let after = 0;
while (all.length < 6) { const b = await log.readAll({ after, limit: 10000 }); if (!b.length) break; all.push(b); after = b.at(-1).seq; }
const n = all.reduce((s, b) => s + b.length, 0);
const ctx = { db: null, log, position: () => 0, retention: () => ({ horizon: 0, position: 0, removedBefore: null, removed: 0, lastRunAt: null, state: 'off', retentionMs: null }), snapshotEvery: 100, sync() {} };
for (const def of [deviceStateReadModel, telemetrySeriesReadModel]) {
  const res = [], resF = [];
  for (let rep = 0; rep < 8; rep++) {
    const m = def.open(ctx);
    let c = process.cpuUsage();
    for (const b of all) m.apply(b);
    let u = process.cpuUsage(c); res.push((u.user + u.system) / n);
    c = process.cpuUsage(); m.flush(); u = process.cpuUsage(c); resF.push((u.user + u.system) / n);
  }
  console.log(def.name.padEnd(18), 'apply best', Math.min(...res).toFixed(2), 'µs/ev; flush best', Math.min(...resF).toFixed(2), 'µs/ev');
}
