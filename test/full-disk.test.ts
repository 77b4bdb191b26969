import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { describeWriteError } from '../core/write-health.js';
import { localServerConfig, startFleetlog, type RunningFleetlog } from '../app/fleetlog.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createSqliteEventLog, type SqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { createSqliteDeadLetterStore } from '../ingest/sqlite-dead-letter-store.js';
import { waitFor } from './helpers/start-test-server.js';

/** pino lines as parsed objects: logs are tested as JSON. */
function capturingLogger() {
  const lines: { level: number; msg: string; component?: string; code?: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  return { logger, lines };
}

/**
 * SQLite answers SQLITE_FULL "database or disk is full" when a write needs a page past `max_page_count`,
 * exactly as when the disk is full: capping it at the current size fills the "disk"; raising it frees space.
 */
function fillDeadLetterPages(db: Database.Database): void {
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
}
function freeDeadLetterPages(db: Database.Database): void {
  db.pragma('max_page_count = 1073741823');
}
/** The same on the log's writing connection, which lives on the log's writer's thread. */
async function fillDisk(log: SqliteEventLog): Promise<void> {
  const pages = (await log.testHooks.pragma('page_count')) as number;
  await log.testHooks.pragma(`max_page_count = ${pages}`);
}
async function freeDisk(log: SqliteEventLog): Promise<void> {
  await log.testHooks.pragma('max_page_count = 1073741823');
}

/**
 * Dead letters are bounded (1 KiB of payload), so one fits in the free space of the table's last page: fill
 * that too, with letters from a client named `filler` that `freeDeadLetterDisk` deletes again.
 */
function fillDeadLetterDisk(db: Database.Database): void {
  fillDeadLetterPages(db);
  const insert = db.prepare(
    `INSERT INTO dead_letters (received_at, client_id, topic, device_id, reason, detail, payload_bytes, payload, payload_encoding, truncated)
     VALUES (0, 'filler', 'filler', NULL, 'invalid_json', '', 0, ?, 'utf8', 0)`,
  );
  for (const size of [1000, 100, 10, 1])
    for (let i = 0; i < 1000; i++) {
      try {
        insert.run('f'.repeat(size));
      } catch {
        break;
      }
    }
}
function freeDeadLetterDisk(db: Database.Database): void {
  freeDeadLetterPages(db);
  db.prepare("DELETE FROM dead_letters WHERE client_id = 'filler'").run();
}

function stateEvent(deviceId: string, seq: number, bytes = 0): NewEvent {
  return {
    id: `${deviceId}:${seq}`,
    deviceId,
    type: 'StateReported',
    time: 1_700_000_000_000 + seq,
    receivedAt: 1_700_000_000_000 + seq,
    // Bigger than a page: the row needs new pages, so a full disk cannot absorb it in free space.
    data: { state: { note: 'x'.repeat(bytes) } },
  };
}

async function readAll(log: EventLog): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (let after = 0; ;) {
    const page = await log.readAll({ after, limit: 1000 });
    if (page.length === 0) return all;
    all.push(...page);
    after = page.at(-1)?.seq ?? after;
  }
}

describe('describeWriteError', () => {
  it('names the storage condition from the driver code, also when wrapped as a cause', () => {
    const enospc = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
    const ioerr = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' });
    expect(describeWriteError(enospc)).toEqual({ code: 'ENOSPC', reason: 'no space left on device' });
    expect(
      describeWriteError(new FleetlogError('ERR_LOG_APPEND_FAILED', 'append failed', { cause: ioerr })),
    ).toEqual({ code: 'SQLITE_IOERR_FSYNC', reason: 'disk I/O error' });
    expect(describeWriteError(new Error('constraint failed'))).toEqual({
      code: 'UNKNOWN',
      reason: 'constraint failed',
    });
  });
});

describe.each(['thread', 'inline'] as const)('the SQLite event log on a full disk, writer %s', (writer) => {
  it('rolls back seq, versions and the dedup window with a failed append, and appends again once space is back', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-full-'));
    const { logger, lines } = capturingLogger();
    const log = createSqliteEventLog({ dataDir, logger, testHooks: true, writer });
    expect(await log.append([stateEvent('a', 1), stateEvent('b', 1)])).toEqual([
      { status: 'appended', seq: 1, version: 1 },
      { status: 'appended', seq: 2, version: 1 },
    ]);

    await fillDisk(log);
    const batch = [stateEvent('a', 2, 8000), stateEvent('c', 1, 8000)];
    await expect(log.append(batch)).rejects.toMatchObject({ code: 'ERR_LOG_APPEND_FAILED' });
    await expect(log.append(batch)).rejects.toThrow(
      'event log cannot append (write): database or disk is full [SQLITE_FULL]',
    );
    expect(log.writeHealth?.()).toMatchObject({
      store: 'eventlog',
      writable: false,
      code: 'SQLITE_FULL',
      reason: 'database or disk is full',
      dir: dataDir,
    });
    expect(log.stats().lastSeq).toBe(2);

    await freeDisk(log);
    // Not duplicates (the ids were never stored), next seq 3 (not 5), a's version 2, the new device c at 1.
    expect(await log.append(batch)).toEqual([
      { status: 'appended', seq: 3, version: 2 },
      { status: 'appended', seq: 4, version: 1 },
    ]);
    expect(log.writeHealth?.().writable).toBe(true);
    expect(await log.append(batch)).toEqual([
      { status: 'duplicate', seq: 3 },
      { status: 'duplicate', seq: 4 },
    ]);
    expect(await log.readStream('a', { fromVersion: 1, limit: 10 })).toMatchObject([
      { id: 'a:1', version: 1, seq: 1 },
      { id: 'a:2', version: 2, seq: 3 },
    ]);
    // Two failed appends, one error line; one recovery line.
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      `event log cannot append: database or disk is full — free space in ${dataDir}; devices keep their messages and resend`,
    ]);
    expect(lines.filter((l) => l.msg.startsWith('event log appends again after'))).toHaveLength(1);
    await log.close();

    const reopened = createSqliteEventLog({ dataDir, logger: pino({ level: 'silent' }) });
    expect((await readAll(reopened)).map((e) => [e.seq, e.id, e.version])).toEqual([
      [1, 'a:1', 1],
      [2, 'b:1', 1],
      [3, 'a:2', 2],
      [4, 'c:1', 1],
    ]);
    await reopened.close();
  });
});

describe.each(['thread', 'inline'] as const)('the SQLite event log when fsync fails, writer %s', (writer) => {
  it('acknowledges nothing it could not fsync, hides it from readers, and acks the resend after the next good fsync', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-fsync-'));
    // Only the fsync fails (EIO on demand, on the writer's thread); SQLite and the WAL file are real.
    const log = createSqliteEventLog({
      dataDir,
      logger: pino({ level: 'silent' }),
      testHooks: true,
      writer,
    });
    const seen: string[] = [];
    log.subscribe((events) => seen.push(...events.map((e) => e.id)));
    await log.append([stateEvent('f', 1)]);

    await log.testHooks.failSyncs(true);
    await expect(log.append([stateEvent('f', 2)])).rejects.toThrow(
      'event log cannot append (fsync): disk I/O error [EIO]',
    );
    expect(log.writeHealth?.()).toMatchObject({ writable: false, code: 'EIO' });
    expect((await readAll(log)).map((e) => e.id)).toEqual(['f:1']);
    expect(await log.lastSeq()).toBe(1);

    await log.testHooks.failSyncs(false);
    // The resend finds its committed row (no second row) and is answered only after an fsync that worked.
    expect(await log.append([stateEvent('f', 2)])).toEqual([{ status: 'duplicate', seq: 2 }]);
    expect(await log.append([stateEvent('f', 3)])).toEqual([{ status: 'appended', seq: 3, version: 3 }]);
    expect(log.writeHealth?.().writable).toBe(true);
    expect((await readAll(log)).map((e) => [e.seq, e.id, e.version])).toEqual([
      [1, 'f:1', 1],
      [2, 'f:2', 2],
      [3, 'f:3', 3],
    ]);
    expect(seen).toEqual(['f:1', 'f:2', 'f:3']);
    await log.close();
  });
});

/** Root may mount a small tmpfs: a real filesystem that runs out of space. */
function canMountTmpfs(): boolean {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!canMountTmpfs())(
  'the SQLite event log on a real full filesystem (needs root: mount -t tmpfs)',
  () => {
    it('fails the commit with SQLITE_FULL (ENOSPC writing the WAL), keeps seq gapless, and recovers once a file is deleted', async () => {
      const mountDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-tmpfs-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountDir]);
      try {
        const dataDir = path.join(mountDir, 'data');
        mkdirSync(dataDir);
        const log = createSqliteEventLog({ dataDir, logger: pino({ level: 'silent' }) });
        const first = Array.from({ length: 20 }, (_, i) => stateEvent('t', i + 1, 100));
        await log.append(first);
        // Fill the filesystem to the last byte with a file an operator can delete.
        const filler = path.join(mountDir, 'filler');
        const chunk = Buffer.alloc(64 * 1024, 1);
        let written = 0;
        for (let i = 0; i < 64; i++) {
          try {
            writeFileSync(filler, chunk, { flag: 'a' });
            written += chunk.length;
          } catch {
            break;
          }
        }
        for (const size of [4096, 512, 1]) {
          for (let i = 0; i < 64; i++) {
            try {
              writeFileSync(filler, Buffer.alloc(size, 1), { flag: 'a' });
            } catch {
              break;
            }
          }
        }
        expect(written).toBeGreaterThan(1024 * 1024);

        const next = Array.from({ length: 5 }, (_, i) => stateEvent('t', 21 + i, 3000));
        await expect(log.append(next)).rejects.toThrow(/database or disk is full \[SQLITE_FULL\]/);
        expect(log.writeHealth?.()).toMatchObject({ writable: false, code: 'SQLITE_FULL', dir: dataDir });
        expect(log.stats().lastSeq).toBe(20);

        rmSync(filler);
        expect((await log.append(next)).map((o) => o.status === 'appended' && [o.seq, o.version])).toEqual([
          [21, 21],
          [22, 22],
          [23, 23],
          [24, 24],
          [25, 25],
        ]);
        expect(log.writeHealth?.().writable).toBe(true);
        await log.close();
        const reopened = createSqliteEventLog({ dataDir, logger: pino({ level: 'silent' }) });
        const all = await readAll(reopened);
        expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
        expect(new Set(all.map((e) => e.id)).size).toBe(25);
        await reopened.close();
      } finally {
        execFileSync('umount', ['-l', mountDir]);
        rmSync(mountDir, { recursive: true, force: true });
      }
    });
  },
);

describe('a full disk seen over MQTT', () => {
  let server: RunningFleetlog | undefined;
  const clients: MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await server?.close();
    server = undefined;
  });

  async function start() {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-full-mqtt-'));
    const { logger, lines } = capturingLogger();
    const dbs: { dead?: Database.Database } = {};
    const log = createSqliteEventLog({
      dataDir,
      logger: logger.child({ component: 'eventlog' }),
      testHooks: true,
    });
    const deadLetters = createSqliteDeadLetterStore(dataDir, {
      logger: logger.child({ component: 'deadletters' }),
      onOpen: (d) => (dbs.dead = d),
    });
    server = await startFleetlog('serve', localServerConfig(dataDir, { processors: 'off' }), {
      logger,
      metrics: createMetrics(),
      log,
      deadLetters,
    });
    const client = await mqtt.connectAsync(server.mqttUrl, {
      clientId: 'gateway-1',
      protocolVersion: 4,
      // The device side of the promise: unacknowledged QoS 1 messages are resent after reconnecting.
      reconnectPeriod: 100,
    });
    client.on('error', () => undefined);
    clients.push(client);
    return { server, client, log, dbs, dataDir, lines };
  }

  async function healthz(url: string) {
    const res = await fetch(`${url}/healthz`);
    return {
      status: res.status,
      body: (await res.json()) as {
        status: string;
        storage: { store: string; writable: boolean; code?: string; reason?: string; since: string }[];
      },
    };
  }

  it('sends no PUBACK while the log is full, answers 503, and stores the resend exactly once once space is back', async () => {
    const { server, client, log, dataDir, lines } = await start();
    for (let seq = 1; seq <= 3; seq++)
      await client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ seq, t: seq }), { qos: 1 });
    expect((await healthz(server.httpUrl)).status).toBe(200);

    await fillDisk(log);
    const before = Date.now();
    let acked = false;
    const big = JSON.stringify({ seq: 4, state: { note: 'y'.repeat(8000) } });
    const published = client.publishAsync('devices/sensor-1/state', big, { qos: 1 }).then(() => {
      acked = true;
    });
    const down = await waitFor(async () => {
      const h = await healthz(server.httpUrl);
      return h.status === 503 ? h : undefined;
    });
    expect(down.body.status).toBe('unavailable');
    expect(
      down.body.storage.map(({ store, writable, code, reason }) => ({ store, writable, code, reason })),
    ).toEqual([
      { store: 'eventlog', writable: false, code: 'SQLITE_FULL', reason: 'database or disk is full' },
      { store: 'deadletters', writable: true, code: undefined, reason: undefined },
    ]);
    expect(Date.parse(down.body.storage[0]?.since ?? '')).toBeGreaterThanOrEqual(before - 1000);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toContain('fleetlog_store_writable{store="eventlog"} 0');
    expect(metrics).toContain('fleetlog_store_writable{store="deadletters"} 1');
    // The device resends into the full disk (each attempt is a counted append failure): still no PUBACK after
    // the third.
    await waitFor(async () => {
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      const failures = Number(/^fleetlog_append_failures_total (\d+)$/m.exec(text)?.[1] ?? 0);
      return failures >= 3 ? true : undefined;
    }, 10_000);
    expect(acked).toBe(false);

    await freeDisk(log);
    await published; // the resend after a reconnect is acknowledged
    expect((await healthz(server.httpUrl)).status).toBe(200);
    const res = await fetch(
      `${server.httpUrl}/api/devices/sensor-1/events?type=TelemetryRecorded,StateReported`,
    );
    const { events } = (await res.json()) as { events: StoredEvent[] };
    expect(events.map((e) => [e.deviceSeq, e.version])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    const logLines = lines.filter((l) => l.component === 'eventlog' && l.level >= 30);
    expect(logLines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      `event log cannot append: database or disk is full — free space in ${dataDir}; devices keep their messages and resend`,
    ]);
    expect(logLines.filter((l) => l.msg.startsWith('event log appends again after'))).toHaveLength(1);
  });

  it('does the same for the dead-letter store: no PUBACK, 503, the resent bad message kept once', async () => {
    const { server, client, dbs, lines, dataDir } = await start();
    await client.publishAsync('devices/sensor-2/telemetry', '{"seq":1,', { qos: 1 });
    if (!dbs.dead) throw new Error('onOpen was not called');
    fillDeadLetterDisk(dbs.dead);
    let acked = false;
    const bad = `{"seq":2,"note":"${'z'.repeat(900)}`; // truncated JSON
    const published = client.publishAsync('devices/sensor-2/telemetry', bad, { qos: 1 }).then(() => {
      acked = true;
    });
    const down = await waitFor(async () => {
      const h = await healthz(server.httpUrl);
      return h.status === 503 ? h : undefined;
    });
    expect(down.body.storage.find((s) => s.store === 'deadletters')).toMatchObject({
      writable: false,
      code: 'SQLITE_FULL',
    });
    expect(acked).toBe(false);

    freeDeadLetterDisk(dbs.dead);
    await published;
    expect((await healthz(server.httpUrl)).status).toBe(200);
    const dead = (await (await fetch(`${server.httpUrl}/api/dead-letters`)).json()) as {
      deadLetters: { reason: string; payloadBytes: number }[];
    };
    expect(dead.deadLetters.map((d) => [d.reason, d.payloadBytes])).toEqual([
      ['invalid_json', 9],
      ['invalid_json', bad.length],
    ]);
    expect(lines.filter((l) => l.component === 'deadletters' && l.level >= 50).map((l) => l.msg)).toEqual([
      `dead-letter store cannot append: database or disk is full — free space in ${dataDir}; devices keep their messages and resend`,
    ]);
  });
});
