import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDeviceCredentials } from '../ingest/device-credentials.js';

const stores = {
  memory: () => createDeviceCredentials({ dataDir: null }),
  sqlite: () => createDeviceCredentials({ dataDir: mkdtempSync(path.join(tmpdir(), 'fleetlog-cred-')) }),
};

describe.each(Object.entries(stores))('device credentials (%s)', (_name, create) => {
  it('verifies the issued secret with its role and refuses a wrong one', async () => {
    const store = create();
    const added = await store.add('cred-1', 'operator');
    if (!added.ok) throw new Error('add failed');
    expect(added.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await store.verify('cred-1', added.secret)).toEqual({ ok: true, role: 'operator' });
    // The second verify is answered from the cache of verified secrets: same answer.
    expect(await store.verify('cred-1', Buffer.from(added.secret))).toEqual({ ok: true, role: 'operator' });
    expect(await store.verify('cred-1', `${added.secret}!`)).toEqual({ ok: false, reason: 'wrong_secret' });
    expect(await store.verify('cred-2', added.secret)).toEqual({ ok: false, reason: 'unknown_device' });
    store.close();
  });

  it('refuses a revoked secret even after it was cached, and a re-add issues a new one', async () => {
    const store = create();
    const revoked: string[] = [];
    store.onRevoke((id) => revoked.push(id));
    const first = await store.add('cred-1');
    if (!first.ok) throw new Error('add failed');
    expect(await store.add('cred-1')).toEqual({ ok: false, reason: 'exists' });
    expect(await store.verify('cred-1', first.secret)).toEqual({ ok: true, role: 'device' });
    expect(store.revoke('cred-1')).toBe(true);
    expect(store.revoke('cred-1')).toBe(false);
    expect(revoked).toEqual(['cred-1']);
    expect(await store.verify('cred-1', first.secret)).toEqual({ ok: false, reason: 'revoked' });
    expect(store.get('cred-1')?.revokedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const second = await store.add('cred-1');
    if (!second.ok) throw new Error('re-add failed');
    expect(second.secret).not.toBe(first.secret);
    expect(await store.verify('cred-1', first.secret)).toEqual({ ok: false, reason: 'wrong_secret' });
    expect(await store.verify('cred-1', second.secret)).toEqual({ ok: true, role: 'device' });
    store.close();
  });
});
