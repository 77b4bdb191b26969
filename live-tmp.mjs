import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
const root = process.argv[2];
const { createSqliteEventLog } = await import(`${root}/dist/eventlog/sqlite-event-log.js`);
const { openReadSide } = await import(`${root}/dist/processors/read-side.js`);
const { silentLogger } = await import(`${root}/dist/core/logger.js`);
const dataDir = mkdtempSync(path.join(tmpdir(), 'live-'));
const log = createSqliteEventLog({ dataDir, logger: silentLogger() });
const rs = await openReadSide(log, { dataDir, snapshotEvery: 100, logger: silentLogger() });
const T = Date.now() - 86400000;
let k = 0;
async function feed(n) { for (let i = 0; i < n; i += 100) { const b = []; for (let j = 0; j < 100; j++, k++) { const d = k % 1000; const time = T + Math.floor(k / 1000) * 10000 + d; b.push({ id: `l-${k}`, deviceId: `seed-${d}`, type: 'TelemetryRecorded', time, receivedAt: time, data: { metrics: { temperature: 20 + (k % 100) / 10, humidity: 40 + (k % 30), battery: 99 } } }); } await log.append(b); } await rs.runner.waitFor(await log.lastSeq()); await new Promise((r) => setTimeout(r, 200)); }
await feed(20000);
for (let r = 0; r < 3; r++) { const b = rs.runner.foldStats(); await feed(20000); const a = rs.runner.foldStats(); const n = a.events - b.events; console.log(`live: fold ${((a.foldMs - b.foldMs) * 1000 / n).toFixed(2)} µs/ev, write ${((a.writeMs - b.writeMs) * 1000 / n).toFixed(2)} µs/ev, events ${n}`); }
await rs.close(); await log.close();
