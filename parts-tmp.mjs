import path from 'node:path';
const root = process.argv[2];
const { openSqliteReadOnlyLog } = await import(`${root}/dist/eventlog/sqlite-read-only-log.js`);
const { deviceStateReadModel } = await import(`${root}/dist/processors/device-state/read-model.js`);
const { telemetrySeriesReadModel } = await import(`${root}/dist/processors/telemetry-series/read-model.js`);
const log = openSqliteReadOnlyLog(process.env.DIR);
const cpu = (f) => { const c = process.cpuUsage(); const n = f(); const u = process.cpuUsage(c); return ((u.user + u.system) / n).toFixed(2); };
// reading
let all = [];
for (let rep = 0; rep < 3; rep++) {
  const c = process.cpuUsage(); all = []; let after = 0;
  for (;;) { const b = await log.readAll({ after, limit: 10000 }); if (!b.length) break; all.push(b); after = b.at(-1).seq; }
  const u = process.cpuUsage(c); const n = all.reduce((s, b) => s + b.length, 0); console.log('read', ((u.user + u.system) / n).toFixed(2), 'µs/ev');
}
const n = all.reduce((s, b) => s + b.length, 0);
const ctx = { db: null, log, position: () => 0, retention: () => ({ horizon: 0, position: 0, removedBefore: null, removed: 0, lastRunAt: null, state: 'off', retentionMs: null }), snapshotEvery: 100, sync() {} };
for (let rep = 0; rep < 3; rep++) {
  for (const def of [deviceStateReadModel, telemetrySeriesReadModel]) {
    const m = def.open(ctx);
    let k = 0;
    console.log(def.name, 'apply', cpu(() => { for (const b of all) { m.apply(b); if (++k % 20 === 0) m.flush(); } return n; }), 'µs/ev (memory store, flush every 200k)');
  }
}
