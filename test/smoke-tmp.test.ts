import mqtt from 'mqtt';
import { expect, it } from 'vitest';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

it('smoke', async () => {
  const server = await startTestServer();
  const dev = await mqtt.connectAsync(server.mqttUrl, { clientId: 'd1', protocolVersion: 4 });
  await dev.publishAsync('devices/d1/telemetry', '{"seq":1,"t":1}', { qos: 1 });
  const got: [string, string][] = [];
  dev.on('message', (t, p) => {
    got.push([t, p.toString()]);
    if (t.startsWith('devices/d1/commands/')) {
      const { id } = JSON.parse(p.toString()) as { id: string };
      void dev.publishAsync(`devices/d1/replies/${id}`, '{"status":"ok","result":{"pong":true}}', { qos: 1 });
    }
  });
  await dev.subscribeAsync(['devices/d1/desired', 'devices/d1/commands/#'], { qos: 1 });
  const put = await fetch(`${server.httpUrl}/api/devices/d1/desired`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ reportIntervalS: 5 }),
  });
  console.log(put.status, await put.text(), put.headers.get('etag'));
  const post = await fetch(`${server.httpUrl}/api/devices/d1/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ping', timeout: '5s' }),
  });
  const cmd = (await post.json()) as { id: string };
  console.log(post.status, cmd);
  const done = await waitFor(async () => {
    const r = (await (await fetch(`${server.httpUrl}/api/devices/d1/commands/${cmd.id}`)).json()) as { status: string };
    return r.status === 'succeeded' ? r : undefined;
  });
  console.log(done, got);
  console.log(await (await fetch(`${server.httpUrl}/api/devices/d1`)).json());
  console.log(JSON.stringify(await (await fetch(`${server.httpUrl}/api/devices/d1/events`)).json()).slice(0, 3000));
  await dev.endAsync();
  await server.close();
  expect(done).toBeDefined();
});
