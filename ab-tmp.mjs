import path from 'node:path';
import Database from 'better-sqlite3';
const root = process.argv[2];
const { startFleetlog } = await import(`${root}/dist/app/fleetlog.js`);
const { silentLogger } = await import(`${root}/dist/core/logger.js`);
const dataDir = process.env.DIR; const events = Number(process.argv[3] ?? 300000);
const R = [], S = [];
for (let r = 0; r < Number(process.env.REPEATS ?? 5); r++) {
  let c = process.cpuUsage();
  const running = await startFleetlog('rebuild', { dataDir, snapshotEvery: 100, projection: ['device-state', 'telemetry-series'] }, { logger: silentLogger() });
  await running.done; await running.close();
  let u = process.cpuUsage(c); R.push((u.user + u.system) / events);
  const db = new Database(path.join(dataDir, 'events.db'), { readonly: true });
  c = process.cpuUsage(); let n = 0, sum = 0;
  for (const row of db.prepare('SELECT * FROM events ORDER BY seq').iterate()) { sum += JSON.parse(row.data).metrics.temperature; n++; }
  u = process.cpuUsage(c); S.push((u.user + u.system) / n); db.close();
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`cpu µs/event rebuild best ${Math.min(...R).toFixed(2)} med ${med(R).toFixed(2)} | scan best ${Math.min(...S).toFixed(2)} med ${med(S).toFixed(2)} | ratio best ${(Math.min(...S) / Math.min(...R)).toFixed(2)} med ${(med(S) / med(R)).toFixed(2)}`);
