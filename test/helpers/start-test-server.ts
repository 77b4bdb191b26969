import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import type { EventLog } from '../../eventlog/event-log.js';
import {
  localServerConfig,
  startFleetlog,
  type RunningFleetlog,
  type ServerConfig,
} from '../../app/fleetlog.js';

/** fleetlog on free ports of 127.0.0.1, data in a fresh temp directory. */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  log?: EventLog,
): Promise<RunningFleetlog & { dataDir: string }> {
  const dataDir = overrides.dataDir ?? mkdtempSync(path.join(tmpdir(), 'fleetlog-test-'));
  const config = localServerConfig(dataDir, overrides);
  const running = await startFleetlog('serve', config, {
    logger: silentLogger(),
    metrics: createMetrics(),
    ...(log ? { log } : {}),
  });
  return { ...running, dataDir };
}

/** Polls `check` until it returns a value or the deadline passes; bounded, for things that happen asynchronously. */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
