import { existsSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandView } from '../query/command-view.js';
import type { DesiredView } from '../query/desired-view.js';
import { startTestServer } from './helpers/start-test-server.js';

const CHROMIUM = '/usr/bin/chromium';
const ID = 'e2e-ctl-1';

/**
 * The device page's command side in headless Chromium: the desired form changes desired state (and a change made
 * meanwhile is not overwritten), desired vs reported shows the delta until the device applies it, and the command
 * list follows each command's status live, as the API answers it. The device is an MQTT client that applies
 * `reportIntervalS` (not `mode`), answers `ping`, and leaves `reboot` unanswered.
 */
describe.skipIf(!existsSync(CHROMIUM))(
  'dashboard: desired state and commands in headless Chromium (needs /usr/bin/chromium: apt-get install chromium (.ci/run installs it))',
  () => {
    let server: Awaited<ReturnType<typeof startTestServer>>;
    let device: MqttClient;
    let browser: Browser;
    let page: Page;
    const consoleErrors: string[] = [];

    const api = async <T>(url: string): Promise<T> =>
      (await (await fetch(`${server.httpUrl}${url}`)).json()) as T;

    beforeAll(async () => {
      server = await startTestServer();
      device = await mqtt.connectAsync(server.mqttUrl, { clientId: ID, protocolVersion: 4 });
      device.on('message', (topic, payload) => {
        const body = JSON.parse(payload.toString()) as { id?: string; state?: Record<string, unknown> };
        if (topic === `devices/${ID}/desired`) {
          const applied = body.state?.reportIntervalS;
          if (applied !== undefined)
            void device.publishAsync(`devices/${ID}/state`, JSON.stringify({ reportIntervalS: applied }), {
              qos: 1,
            });
        } else if (topic === `devices/${ID}/commands/ping` && body.id) {
          void device.publishAsync(
            `devices/${ID}/replies/${body.id}`,
            '{"status":"ok","result":{"pong":true}}',
            { qos: 1 },
          );
        }
      });
      await device.subscribeAsync([`devices/${ID}/desired`, `devices/${ID}/commands/#`], { qos: 1 });
      await device.publishAsync(
        `devices/${ID}/state`,
        JSON.stringify({ firmware: '1.0', reportIntervalS: 10 }),
        { qos: 1 },
      );
      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
        ],
      });
      const context = await browser.newContext({ timezoneId: 'UTC', locale: 'en-GB' });
      page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      page.on('pageerror', (err) => consoleErrors.push(err.message));
      await page.goto(`${server.httpUrl}/#/devices/${ID}`);
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await device?.endAsync(true);
      await server?.close();
    });

    const desired = () => page.getByTestId('desired');
    const row = (key: string) => desired().locator(`tr[data-key="${key}"]`);
    const cell = (key: string, field: string) => row(key).locator(`[data-field=${field}]`).textContent();

    async function setDesired(key: string, value: string): Promise<void> {
      await page.locator('#desired-key').fill(key);
      await page.locator('#desired-value').fill(value);
      await page.getByTestId('desired-form').getByRole('button', { name: 'Set' }).click();
    }

    it('sets desired state from the form and shows desired vs reported, the delta marked until the device applies it', async () => {
      await expect
        .poll(() => desired().textContent(), { timeout: 10_000 })
        .toContain('No desired state set.');
      await setDesired('reportIntervalS', '2');
      await expect
        .poll(() => desired().locator('[data-field=desired-message]').textContent())
        .toBe('Set: version 1.');
      // The device applies it and reports it: in sync, live.
      await expect.poll(() => cell('reportIntervalS', 'sync'), { timeout: 10_000 }).toBe('in sync');
      expect([await cell('reportIntervalS', 'desired'), await cell('reportIntervalS', 'reported')]).toEqual([
        '2',
        '2',
      ]);

      await setDesired('mode', '"eco"');
      await expect
        .poll(() => desired().locator('[data-field=desired-version]').textContent())
        .toBe('version 2');
      // This one the device does not apply: marked as the delta.
      expect([
        await cell('mode', 'desired'),
        await cell('mode', 'reported'),
        await cell('mode', 'sync'),
      ]).toEqual(['"eco"', '—', 'not applied yet']);
      expect(await row('mode').getAttribute('class')).toBe('delta');
      const view = await api<DesiredView>(`/api/devices/${ID}/desired`);
      expect([view.version, view.state, view.delta]).toEqual([
        2,
        { reportIntervalS: 2, mode: 'eco' },
        { mode: 'eco' },
      ]);
    });

    it('does not overwrite a change made meanwhile: it shows the current document instead', async () => {
      // A second page that does not follow the live stream, so it still shows version 2 when someone else changes it.
      const stale = await page.context().newPage();
      await stale.route('**/api/stream**', (route) => route.abort());
      await stale.goto(`${server.httpUrl}/#/devices/${ID}`);
      const card = stale.getByTestId('desired');
      await expect
        .poll(() => card.locator('[data-field=desired-version]').textContent(), { timeout: 10_000 })
        .toBe('version 2');
      const res = await fetch(`${server.httpUrl}/api/devices/${ID}/desired`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ mode: 'boost' }),
      });
      expect(res.status).toBe(200);
      await stale.locator('#desired-key').fill('mode');
      await stale.locator('#desired-value').fill('"off"');
      await stale.getByTestId('desired-form').getByRole('button', { name: 'Set' }).click();
      await expect
        .poll(() => card.locator('[data-field=desired-message]').textContent())
        .toBe('It was changed meanwhile: here is the current document. Set it again if you still want to.');
      await expect
        .poll(() => card.locator('tr[data-key="mode"] [data-field=desired]').textContent())
        .toBe('"boost"');
      expect((await api<DesiredView>(`/api/devices/${ID}/desired`)).state).toEqual({
        reportIntervalS: 2,
        mode: 'boost',
      });
      await stale.close();
      // The live page caught up by itself.
      await expect.poll(() => cell('mode', 'desired')).toBe('"boost"');
    });

    it('sends commands from the form and follows their statuses live: answered, and expired', async () => {
      const commands = page.getByTestId('command-list');
      await page.locator('#command-name').fill('ping');
      await page.getByTestId('command-form').getByRole('button', { name: 'Send command' }).click();
      await expect.poll(() => commands.locator('tr[data-command]').count(), { timeout: 10_000 }).toBe(1);
      const ping = commands.locator('tr[data-command]').first();
      await expect
        .poll(() => ping.locator('[data-field=status]').textContent(), { timeout: 10_000 })
        .toBe('succeeded');
      expect(await ping.locator('[data-field=answer]').textContent()).toBe('{"pong":true}');

      await page.locator('#command-name').fill('reboot');
      await page.locator('#command-timeout').fill('1s');
      await page.getByTestId('command-form').getByRole('button', { name: 'Send command' }).click();
      await expect.poll(() => commands.locator('tr[data-command]').count(), { timeout: 10_000 }).toBe(2);
      const reboot = commands.locator('tr[data-command]').first();
      expect(await reboot.locator('[data-field=name]').textContent()).toBe('reboot');
      await expect
        .poll(() => reboot.locator('[data-field=status]').textContent(), { timeout: 10_000 })
        .toBe('expired');

      const { commands: listed } = await api<{ commands: CommandView[] }>(`/api/devices/${ID}/commands`);
      const shown = [];
      for (const r of await commands.locator('tr[data-command]').all()) {
        shown.push([
          await r.getAttribute('data-command'),
          await r.locator('[data-field=status]').textContent(),
        ]);
      }
      expect(shown).toEqual(listed.map((c) => [c.id, c.status]));
      expect(listed.map((c) => [c.name, c.status])).toEqual([
        ['reboot', 'expired'],
        ['ping', 'succeeded'],
      ]);
      // A bad command is answered on the page, with the reason.
      await page.locator('#command-timeout').fill('10d');
      await page.getByTestId('command-form').getByRole('button', { name: 'Send command' }).click();
      await expect
        .poll(() => page.getByTestId('commands').locator('[data-field=command-message]').textContent())
        .toBe('Not sent: timeout: must be from 1s to 7d, got "10d"');
      expect(consoleErrors.filter((e) => !e.includes('400'))).toEqual([]);
    });
  },
);
