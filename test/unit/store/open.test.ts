import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStoreURL } from '../../../src/store/etcd.ts';
import { FileStore } from '../../../src/store/file.ts';
import { openStore } from '../../../src/store/open.ts';
import { UserError } from '../../../src/util/errors.ts';
import { newRunId } from '../../../src/store/run-id.ts';
import { readApproval, runDir } from '../../../src/store/run-dir.ts';
import type { Inventory } from '../../../src/inventory/types.ts';

describe('parseStoreURL', () => {
  it('turns etcd://a:1,b:2 into client URLs, https with a CA', () => {
    expect(parseStoreURL('etcd://127.0.0.1:2379,127.0.0.1:2479', false)).toEqual(['http://127.0.0.1:2379', 'http://127.0.0.1:2479']);
    expect(parseStoreURL('etcd://127.0.0.1:2379', true)).toEqual(['https://127.0.0.1:2379']);
    expect(parseStoreURL('etcds://127.0.0.1:2379', false)).toEqual(['https://127.0.0.1:2379']);
  });
  it('refuses what is not host:port', () => {
    expect(() => parseStoreURL('http://127.0.0.1:2379', false)).toThrow(UserError);
    expect(() => parseStoreURL('etcd://', false)).toThrow(/expected etcd:\/\//);
    expect(() => parseStoreURL('etcd://127.0.0.1', false)).toThrow(/expected host:port/);
    expect(() => parseStoreURL('etcd://a:1;rm -rf /', false)).toThrow(/expected host:port/);
  });
});

describe('openStore', () => {
  it('defaults to the state dir', async () => {
    const s = await openStore({}, {}, '/tmp/x');
    expect(s).toBeInstanceOf(FileStore);
    expect(s.description).toBe('state dir /tmp/x');
  });
  it('refuses TLS flags without --store, a bad URL and a bad lease TTL', async () => {
    await expect(openStore({ storeCacert: 'ca.pem' }, {}, '/tmp/x')).rejects.toThrow(/need --store/);
    await expect(openStore({ store: 'consul://x:1' }, {}, '/tmp/x')).rejects.toThrow(/expected etcd:\/\//);
    await expect(openStore({ store: 'etcd://127.0.0.1:2379' }, { RUNBOOK_STORE_LEASE_TTL: '0.5' }, '/tmp/x')).rejects.toThrow(/RUNBOOK_STORE_LEASE_TTL/);
    await expect(openStore({ store: 'etcd://127.0.0.1:2379', storeCert: 'c.pem' }, {}, '/tmp/x')).rejects.toThrow(/go together/);
  });
  it('names a missing TLS file without reading anything else', async () => {
    await expect(openStore({ store: 'etcd://127.0.0.1:2379', storeCacert: '/nonexistent/ca.pem' }, {}, '/tmp/x')).rejects.toThrow('--store-cacert: cannot read /nonexistent/ca.pem: ENOENT');
  });
});

describe('FileStore', () => {
  const inv: Inventory = { name: 'c1', source: 'test', members: [{ name: 'm1', clientURL: 'http://127.0.0.1:1', peerURL: 'http://127.0.0.1:2' }] } as unknown as Inventory;
  const id = { clusterId: null, peerURLs: ['http://127.0.0.1:2'] };
  it('is the state dir: runs, journal, approvals (first wins) and locks as the CLI always kept them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-filestore-'));
    try {
      const store = new FileStore(dir);
      const runId = newRunId('minimal');
      await store.createRun({ runId, runbook: 'minimal', runbookFile: 'x.yaml', hash: 'h', params: {}, inventory: inv, createdAt: new Date().toISOString() }, 'text');
      expect(fs.existsSync(path.join(runDir(dir, runId), 'run.json'))).toBe(true);
      expect(await store.listRunIds()).toEqual([runId]);
      expect(await store.readRunbookCopy(runId)).toBe('text');
      const lock = await store.acquireLock(id, runId);
      expect((await store.lockHolder(inv))?.runId).toBe(runId);
      await expect(store.acquireLock(id, newRunId('other'))).rejects.toThrow(/is locked by run/);
      const j = await store.openJournal(runId, lock);
      j.append({ type: 'step.log', stepId: 'a', message: 'hi' } as never);
      j.close();
      expect((await store.readJournal(runId)).records).toHaveLength(1);
      const first = await store.decideApproval(runId, 'a', { decision: 'granted', by: 'u1', via: 'cli' });
      const second = await store.decideApproval(runId, 'a', { decision: 'denied', by: 'u2', via: 'cli' });
      expect(first.first).toBe(true);
      expect(second).toMatchObject({ first: false, decision: { decision: 'granted', by: 'u1' } });
      expect(readApproval(runDir(dir, runId), 'a')?.by).toBe('u1');
      await lock.release();
      expect(await store.lockHolder(inv)).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
