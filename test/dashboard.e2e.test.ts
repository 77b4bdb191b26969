import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceView, Series, StateAsOf } from '../processors/read-models.js';
import { createSimulator, type Simulator } from '../simulator/simulator.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

const CHROMIUM = '/usr/bin/chromium';
const DEVICES = 4;
/** The simulated clock runs 300× faster and ends 10 minutes ago, so 4 s of sending fill 20 minutes of history. */
const SPEEDUP = 300;
const SEND_MS = 4_000;
/** Set to write the README screenshots there (e.g. FLEETLOG_SCREENSHOT_DIR=docs). */
const SCREENSHOT_DIR = process.env.FLEETLOG_SCREENSHOT_DIR;

describe.skipIf(!existsSync(CHROMIUM))(
  'dashboard in headless Chromium (needs /usr/bin/chromium: apt-get install chromium (.ci/run installs it))',
  () => {
    let server: Awaited<ReturnType<typeof startTestServer>>;
    let sim: Simulator;
    let browser: Browser;
    let context: BrowserContext;
    const consoleErrors: string[] = [];

    const api = async <T>(url: string): Promise<T> => {
      const res = await fetch(`${server.httpUrl}${url}`);
      expect(res.status, url).toBe(200);
      return (await res.json()) as T;
    };

    async function open(hash: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`);
      });
      page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: ${err.message}`));
      await page.goto(`${server.httpUrl}/${hash}`);
      return page;
    }

    /** Every event of a device, through the history API. */
    async function history(
      id: string,
    ): Promise<{ type: string; time: number; data: { metrics?: Record<string, number> } }[]> {
      const body = await api<{
        events: { type: string; time: number; data: { metrics?: Record<string, number> } }[];
        next: string | null;
      }>(`/api/devices/${encodeURIComponent(id)}/events?limit=10000`);
      expect(body.next).toBeNull();
      return body.events;
    }

    /** The env sensors report temperature, humidity and battery: the richest charts. */
    const envDevice = (): string =>
      sim.deviceIds.find((id) => id.includes('env')) ?? (sim.deviceIds[0] as string);

    beforeAll(async () => {
      server = await startTestServer();
      const t0 = Date.now();
      sim = createSimulator(
        { url: server.mqttUrl, devices: DEVICES, rate: 80, qos: 1, seed: 42, durationMs: SEND_MS },
        { now: () => t0 - 30 * 60_000 + (Date.now() - t0) * SPEEDUP },
      );
      await sim.start();
      // With durationMs the simulator stops sending but stays connected: the devices stay online and the data
      // stops changing, so what the page drew can be compared with the API.
      await sim.finished;
      await waitFor(() => (sim.stats().inflight === 0 ? true : undefined), 10_000);
      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      context = await browser.newContext({ timezoneId: 'UTC', locale: 'en-GB' });
    }, 60_000);

    afterAll(async () => {
      // Browser first, so its event streams are gone before the server closes.
      await browser?.close();
      await sim?.stop();
      await server?.close();
    });

    it('lists the simulated devices on the fleet page, online, with the API’s event counts', async () => {
      const page = await open('');
      const rows = page.locator('tr[data-device]');
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(DEVICES);
      const { devices } = await api<{ devices: DeviceView[] }>('/api/devices');
      const shown = [];
      for (const row of await rows.all()) {
        shown.push({
          id: await row.getAttribute('data-device'),
          status: await row.locator('[data-label=Status]').textContent(),
          events: await row.locator('[data-label=Events]').textContent(),
        });
      }
      expect(shown).toEqual(
        [...sim.deviceIds].sort().map((id) => ({
          id,
          status: 'online',
          events: String(devices.find((d) => d.deviceId === id)?.events),
        })),
      );
      await expect.poll(() => page.getByTestId('dead-letters').textContent()).toBe('0');
      await expect.poll(() => page.getByTestId('stream').textContent()).toBe('live');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it('draws each metric of a device with as many points as the series API answers, raw and rolled up', async () => {
      const id = envDevice();
      const page = await open(`#/devices/${encodeURIComponent(id)}`);
      const device = await api<DeviceView>(`/api/devices/${encodeURIComponent(id)}`);
      const metrics = Object.keys(device.metrics).sort();
      expect(metrics).toEqual(['battery', 'humidity', 'temperature']);

      const drawn = async () => {
        const figures = [];
        for (const f of await page.locator('figure[data-metric]').all()) {
          figures.push({
            metric: await f.getAttribute('data-metric'),
            query: await f.getAttribute('data-query'),
            source: await f.getAttribute('data-source'),
            points: await f.getAttribute('data-points'),
          });
        }
        return figures;
      };
      for (const [range, source] of [
        ['1h', 'raw'],
        ['6h', 'rollup_1m'],
      ] as const) {
        await page.locator(`button[data-range="${range}"]`).click();
        await expect
          .poll(async () => (await drawn()).map((d) => [d.source, d.points !== null]), { timeout: 10_000 })
          .toEqual(metrics.map(() => [source, true]));
        for (const d of await drawn()) {
          const answer = await api<Series>(d.query as string);
          expect(answer.source).toBe(source);
          expect(Number(d.points), `${d.metric} over ${range}`).toBe(answer.points.length);
        }
      }
      // 20 simulated minutes in 30 s raw windows: one point per window that holds a temperature reading.
      const raw = await api<Series>(
        `/api/devices/${encodeURIComponent(id)}/series/temperature?from=-1h&every=30s&fn=mean`,
      );
      const readings = await history(id);
      const windows = new Set(
        readings
          .filter((e) => e.type === 'TelemetryRecorded' && e.data.metrics?.temperature !== undefined)
          .map((e) => Math.floor(e.time / 30_000)),
      );
      expect(windows.size).toBeGreaterThanOrEqual(35); // the simulated run filled the hour as planned
      expect(raw.points.length).toBe(windows.size);
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it('moves the time slider and shows the state as of that moment, as the API answers it', async () => {
      const id = envDevice();
      const page = await open(`#/devices/${encodeURIComponent(id)}`);
      const device = await api<DeviceView>(`/api/devices/${encodeURIComponent(id)}`);
      const base = Math.floor(Date.parse(device.firstSeen as string) / 1000) * 1000;
      const slider = page.locator('#as-of');
      await slider.focus();
      await page.keyboard.press('Home');
      const steps = 240;
      for (let i = 0; i < steps; i++) await page.keyboard.press('ArrowRight');
      const at = base + steps * 1000;
      const panel = page.getByTestId('as-of').locator('.as-of-panel');
      await expect.poll(() => panel.getAttribute('data-at'), { timeout: 10_000 }).toBe(String(at));

      const answer = await api<StateAsOf>(`/api/devices/${encodeURIComponent(id)}/state?at=${at}`);
      const state = answer.state as DeviceView;
      const field = (name: string) => panel.locator(`[data-field=${name}]`).first().textContent();
      expect(await field('version')).toBe(String(state.version));
      expect(await field('events')).toBe(String(state.events));
      expect(await field('reported')).toBe(JSON.stringify(state.reported, null, 2));
      expect(await panel.locator('tr[data-metric=temperature] [data-field=count]').textContent()).toBe(
        String(state.metrics.temperature?.count),
      );
      // Four simulated minutes in: exactly the events up to that moment, part of the history, so not what the
      // "Now" panel shows.
      const upTo = (await history(id)).filter((e) => e.time <= at);
      expect(state.events).toBe(upTo.length);
      expect(upTo.length).toBeGreaterThan(0);
      expect(upTo.length).toBeLessThan(device.events);
      expect(await page.getByTestId('current').locator('[data-field=events]').textContent()).toBe(
        String(device.events),
      );
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it('shows a newly published message without a reload, on the fleet page and on the device page', async () => {
      const id = envDevice();
      const fleet = await open('');
      const devicePage = await open(`#/devices/${encodeURIComponent(id)}`);
      await expect.poll(() => fleet.locator('tr[data-device]').count(), { timeout: 10_000 }).toBe(DEVICES);
      await expect
        .poll(() => devicePage.getByTestId('stream').textContent(), { timeout: 10_000 })
        .toBe('live');
      await expect.poll(() => fleet.getByTestId('stream').textContent(), { timeout: 10_000 }).toBe('live');

      const client = await mqtt.connectAsync(server.mqttUrl, { clientId: 'dashboard-test-publisher' });
      await client.publishAsync(
        'devices/probe-live-1/telemetry',
        JSON.stringify({ seq: 1, temperature: 42.5 }),
        {
          qos: 1,
        },
      );
      await client.publishAsync(
        `devices/${id}/state`,
        JSON.stringify({ seq: 1_000_000, state: { firmware: '9.9.9-live' } }),
        { qos: 1 },
      );
      await client.endAsync();

      const row = fleet.locator('tr[data-device="probe-live-1"]');
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      await expect.poll(() => row.locator('.spark-last').textContent()).toBe('42.5');
      expect(await row.locator('[data-label=Events]').textContent()).toBe('1');

      const reported = devicePage.getByTestId('current').locator('[data-field=reported]');
      await expect
        .poll(
          async () => (JSON.parse((await reported.textContent()) ?? '{}') as { firmware?: string }).firmware,
          {
            timeout: 10_000,
          },
        )
        .toBe('9.9.9-live');
      await expect
        .poll(() => devicePage.getByTestId('timeline').locator('li code').last().textContent())
        .toBe('{"state":{"firmware":"9.9.9-live"}}');
      expect(consoleErrors).toEqual([]);
      await fleet.close();
      await devicePage.close();
    });

    it('shows what became of a device’s messages on its page, and flags its resends and counter reset on the fleet page', async () => {
      const id = 'e2e-acct-1';
      const client = await mqtt.connectAsync(server.mqttUrl, { clientId: 'dashboard-acct-publisher' });
      const t = Date.now() - 60_000;
      const topic = `devices/${id}/telemetry`;
      const first = JSON.stringify({ ts: t, seq: 1, temperature: 20 });
      await client.publishAsync(topic, first, { qos: 1 });
      await client.publishAsync(topic, first, { qos: 1 }); // a resend
      await client.publishAsync(topic, JSON.stringify({ ts: t + 1000, seq: 2, temperature: 21 }), { qos: 1 });
      await client.publishAsync(topic, JSON.stringify({ ts: t + 2000, seq: 1, temperature: 22 }), { qos: 1 }); // reboot
      await client.publishAsync(
        topic,
        JSON.stringify({ ts: '2099-01-01T00:00:00Z', seq: 2, temperature: 23 }),
        {
          qos: 1,
        },
      );
      await client.publishAsync(topic, '{"seq":3,"temperature":', { qos: 1 }); // dead-lettered
      await client.endAsync();
      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      const { accounting } = await api<{ accounting: { received: number } }>(`/api/devices/${id}`);
      expect(accounting.received).toBe(6);

      const page = await open(`#/devices/${encodeURIComponent(id)}`);
      const field = (name: string) =>
        page.getByTestId('current').locator(`.accounting [data-field=${name}]`).textContent();
      await expect.poll(() => field('received'), { timeout: 10_000 }).toBe('6');
      expect(await field('appended')).toBe('4');
      expect(await field('duplicates')).toMatch(/^1 \(resend 1 · retransmission 0 · status 0\), last /);
      expect(await field('deadLettered')).toBe('1 (invalid_json 1)');
      expect(await field('counterResets')).toMatch(/^1, last /);
      expect(await field('clockCorrected')).toMatch(/^1 \(ahead 1 · unsynced 0\), last /);

      const fleet = await open('');
      const alerts = fleet.locator(`tr[data-device="${id}"] [data-field=alerts]`);
      await expect
        .poll(() => alerts.textContent(), { timeout: 10_000 })
        .toMatch(/^counter reset \d+ s ago \(1 in all\) · 1 resends, last \d+ s ago$/);
      // The simulated devices did nothing of the kind: nothing flagged.
      for (const simulated of sim.deviceIds)
        expect(await fleet.locator(`tr[data-device="${simulated}"] [data-field=alerts]`).textContent()).toBe(
          '',
        );
      expect(consoleErrors).toEqual([]);
      await page.close();
      await fleet.close();
    });

    it('fits a phone-width screen and reaches a device by keyboard alone', async () => {
      const page = await open('', { width: 390, height: 844 });
      const { devices } = await api<{ devices: unknown[] }>('/api/devices?limit=1000');
      await expect
        .poll(() => page.locator('tr[data-device]').count(), { timeout: 10_000 })
        .toBe(devices.length);
      // Nothing wider than the screen: no sideways scrolling.
      const [scrollWidth, clientWidth] = await page.evaluate<number[]>(
        '[document.documentElement.scrollWidth, document.documentElement.clientWidth]',
      );
      expect(scrollWidth).toBe(clientWidth);

      const first = [...sim.deviceIds].sort()[0] as string;
      let focused = '';
      for (let i = 0; i < 20 && focused !== first; i++) {
        await page.keyboard.press('Tab');
        // A string, evaluated in the page: this file is type-checked without the DOM library.
        focused = await page.evaluate<string>(
          `(() => { const a = document.activeElement; return a && a.tagName === 'A' && a.closest('tr[data-device]') ? a.textContent : ''; })()`,
        );
      }
      expect(focused).toBe(first);
      await page.keyboard.press('Enter');
      await expect.poll(() => new URL(page.url()).hash).toBe(`#/devices/${first}`);
      await expect.poll(() => page.locator('h1').textContent()).toBe(first);
      await expect.poll(() => page.locator('figure[data-points]').count(), { timeout: 10_000 }).toBe(3);
      const [deviceScrollWidth, deviceClientWidth] = await page.evaluate<number[]>(
        '[document.documentElement.scrollWidth, document.documentElement.clientWidth]',
      );
      expect(deviceScrollWidth).toBe(deviceClientWidth);
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it('renders both pages into PNG screenshots', async () => {
      const dir = SCREENSHOT_DIR ?? path.join(server.dataDir, 'screenshots');
      mkdirSync(dir, { recursive: true });
      const fleet = await open('', { width: 1100, height: 500 });
      // The four simulated devices, and the probes of the tests before.
      await expect
        .poll(() => fleet.locator('tr[data-device]').count(), { timeout: 10_000 })
        .toBe(DEVICES + 2);
      // A busy part of the fleet joins while the page watches, so the picture shows live rates; its clock
      // covers the last hour in 6 s, which fills the sparklines.
      const t1 = Date.now();
      const busy = createSimulator(
        { url: server.mqttUrl, devices: 3, rate: 15, qos: 1, seed: 7, idPrefix: 'busy', durationMs: 6_000 },
        { now: () => t1 - 3_600_000 + (Date.now() - t1) * 600 },
      );
      try {
        await busy.start();
        await busy.finished;
        await expect.poll(() => fleet.locator('.spark canvas').count()).toBe(DEVICES + 5);
        await fleet.screenshot({ path: path.join(dir, 'fleet-page.png') });
      } finally {
        await busy.stop();
      }
      // The other env sensor: the one the tests used carries the test's probe firmware.
      const shown = sim.deviceIds.filter((id) => id.includes('env')).at(-1) as string;
      const device = await open(`#/devices/${encodeURIComponent(shown)}`, { width: 1100, height: 900 });
      await expect.poll(() => device.locator('figure[data-points]').count(), { timeout: 10_000 }).toBe(3);
      // History a third of the way in, so the picture shows it differing from "Now".
      const panel = device.locator('.as-of-panel');
      await expect.poll(() => panel.getAttribute('data-at')).not.toBeNull();
      const before = await panel.getAttribute('data-at');
      const slider = device.locator('#as-of');
      await slider.fill(String(Math.round(Number(await slider.getAttribute('max')) / 3)));
      await slider.blur();
      await expect.poll(async () => (await panel.getAttribute('data-at')) !== before).toBe(true);
      await device.screenshot({ path: path.join(dir, 'device-page.png'), fullPage: true });
      for (const name of ['fleet-page.png', 'device-page.png']) {
        const png = readFileSync(path.join(dir, name));
        // PNG signature, then the IHDR width (big-endian at byte 16): the viewport width.
        expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
        expect(png.readUInt32BE(16)).toBe(1100);
      }
      expect(consoleErrors).toEqual([]);
      await fleet.close();
      await device.close();
    }, 30_000);
  },
);
