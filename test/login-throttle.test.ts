import crypto from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServerConfig, startFleetlog, type RunningFleetlog } from '../app/fleetlog.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { createLoginThrottle } from '../ingest/login-throttle.js';

describe('login throttle', () => {
  it('throttles a source after maxFailures in one window, and forgets it when the window ends', () => {
    let t = 0;
    const throttle = createLoginThrottle({ maxFailures: 3, windowMs: 1000, now: () => t });
    for (let i = 0; i < 3; i++) {
      expect(throttle.throttled('10.0.0.1')).toBe(false);
      throttle.failed('10.0.0.1');
    }
    expect([throttle.throttled('10.0.0.1'), throttle.throttled('10.0.0.2')]).toEqual([true, false]);
    t = 999;
    expect(throttle.throttled('10.0.0.1')).toBe(true);
    t = 1000;
    expect(throttle.throttled('10.0.0.1')).toBe(false);
  });

  it('keeps at most maxSources windows, dropping the oldest', () => {
    const throttle = createLoginThrottle({ maxFailures: 1, maxSources: 2, now: () => 0 });
    throttle.failed('a');
    throttle.failed('b');
    throttle.failed('c');
    expect(['a', 'b', 'c'].map((s) => throttle.throttled(s))).toEqual([false, true, true]);
  });
});

/**
 * Counts calls of node:crypto's scrypt, whoever imported it: the CommonJS export is wrapped and the ES module
 * bindings re-synced from it (node:module's syncBuiltinESMExports), so `import { scrypt }` sees the wrapper too.
 */
function countScrypt(): { calls(): number; restore(): void } {
  const original = crypto.scrypt;
  let calls = 0;
  crypto.scrypt = ((...args: Parameters<typeof original>) => {
    calls++;
    return original(...args);
  }) as typeof original;
  syncBuiltinESMExports();
  return {
    calls: () => calls,
    restore() {
      crypto.scrypt = original;
      syncBuiltinESMExports();
    },
  };
}

describe('failed logins against the broker (--auth required)', () => {
  let server: RunningFleetlog;
  beforeAll(async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-throttle-'));
    server = await startFleetlog('serve', localServerConfig(dataDir, { auth: 'required' }), {
      logger: silentLogger(),
      metrics: createMetrics(),
    });
  });
  afterAll(() => server.close());

  async function secretFor(id: string): Promise<string> {
    const res = await fetch(`${server.httpUrl}/api/devices/${id}/credentials`, { method: 'POST' });
    expect(res.status).toBe(201);
    return ((await res.json()) as { secret: string }).secret;
  }

  /** The CONNACK return code of one connection attempt (0 = accepted; the client is closed either way). */
  async function connack(username: string, password: string): Promise<number> {
    const client = mqtt.connect(server.mqttUrl, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: username,
      username,
      password,
    });
    const code = await new Promise<number>((resolve, reject) => {
      client.once('connect', () => resolve(0));
      client.once('error', (err) => {
        const c = (err as Error & { code?: unknown }).code;
        if (typeof c === 'number') resolve(c);
        else reject(err);
      });
    });
    await client.endAsync(true);
    return code;
  }

  it('after 20 wrong secrets from one address, refuses with 0x03 without hashing, but lets a known-good secret in', async () => {
    const good = await secretFor('good-1');
    const fresh = await secretFor('fresh-1');
    const scrypt = countScrypt();
    try {
      expect(await connack('good-1', good)).toBe(0); // verified once: remembered
      expect(scrypt.calls()).toBe(1);

      const wrong = await Promise.all(Array.from({ length: 20 }, () => connack('good-1', 'guess')));
      expect(wrong).toEqual(Array.from({ length: 20 }, () => 4));
      expect(scrypt.calls()).toBe(21); // each wrong secret cost one hash

      expect(await connack('good-1', 'guess')).toBe(3);
      // A right secret that never verified in this process would need a scrypt: refused too, until the window ends.
      expect(await connack('fresh-1', fresh)).toBe(3);
      // A device that reconnects with a secret that already verified (behind the same NAT, say) still gets in.
      expect(await connack('good-1', good)).toBe(0);
      // None of the three after the 20th failure hashed anything.
      expect(scrypt.calls()).toBe(21);
    } finally {
      scrypt.restore();
    }

    const metric = await server.metrics.mqttAuthRefusals.get();
    const byReason: Record<string, number> = {};
    for (const v of metric.values) byReason[String(v.labels.reason)] = v.value;
    expect(byReason).toEqual({ wrong_secret: 20, throttled: 2 });
  });
});
