/**
 * The etcd store's guarantees through its API, on a real management etcd: first approval wins under concurrency;
 * a lock names its holder; journal appends are fenced by the lock's create revision (a runner whose lock was taken
 * over cannot write, even at a sequence number nobody wrote yet); the journal reads back in order; a run handle's
 * approve() resolves only once the decision is in the store, and rejects when it cannot be written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRegistry } from '../../src/actions/registry.ts';
import { startRun } from '../../src/execute/executor.ts';
import { lockKeys } from '../../src/store/machine-lock.ts';
import { newRunId } from '../../src/store/run-id.ts';
import { loadRunbookText } from '../../src/runbook/load.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { keys } from '../../src/store/etcd-keys.ts';
import { StepError } from '../../src/util/errors.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';

let mgmt: TestCluster;
let store: EtcdStore;
const inv = { name: 'c1', source: 'test', members: [{ name: 'm1', clientURL: 'http://127.0.0.1:9', peerURL: 'http://127.0.0.1:10' }] } as unknown as Inventory;
/** The identity a run on `inv` locks when no member answers: its peer address. */
const id = { clusterId: null, peerURLs: ['http://127.0.0.1:10'] };

beforeAll(async () => {
  mgmt = await startCluster({ members: 1, name: 'mgmt' });
  store = new EtcdStore({ url: `etcd://${mgmt.endpoints[0]!.replace(/^https?:\/\//, '')}`, leaseTtlSeconds: 2 });
}, 60_000);
afterAll(async () => {
  await store?.close();
  await mgmt?.teardown();
});

async function newRun(): Promise<string> {
  const runId = newRunId('api');
  await store.createRun({ runId, runbook: 'api', runbookFile: 'api.yaml', hash: 'h', params: {}, inventory: inv, createdAt: new Date().toISOString() }, 'text');
  return runId;
}

describe('EtcdStore', () => {
  it('first decision wins, also when many arrive at once', async () => {
    const runId = await newRun();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      store.decideApproval(runId, 'compact', { decision: i % 2 ? 'denied' : 'granted', by: `u${i}`, via: 'test' })));
    expect(results.filter((r) => r.first)).toHaveLength(1);
    const winner = results.find((r) => r.first)!.decision;
    for (const r of results) expect(r.decision).toEqual(winner);
    expect(await store.readApproval(runId, 'compact')).toEqual(winner);
    await expect(store.decideApproval(newRunId('nothere'), 'compact', { decision: 'granted', by: 'u', via: 'test' })).rejects.toThrow(/no run/);
  });

  it('fences a runner whose lock was taken over: its appends never reach the store', async () => {
    const runId = await newRun();
    const lockA = await store.acquireLock(id, runId, { owner: 'replica-a' });
    await expect(store.acquireLock(id, runId, { owner: 'replica-b' })).rejects.toThrow(/locked by run .*replica-a/);
    const a = await store.openJournal(runId, lockA);
    a.append({ type: 'step.log', stepId: 'one', message: 'from a' } as never);
    await a.flush!();

    // A's lease "expires": its key goes (as etcd does when a lease runs out); B takes the lock.
    await mgmt.client().delete().key(keys.lock(lockKeys(id)[0]!));
    const lockB = await store.acquireLock(id, runId, { owner: 'replica-b' });
    const b = await store.openJournal(runId, lockB);
    expect(b.records).toHaveLength(1);

    a.append({ type: 'step.log', stepId: 'two', message: 'from a, too late' } as never);
    const err = await a.flush!().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).kind).toBe('precondition');
    expect((err as Error).message).toMatch(/lost the run lock: .*now held by run .*replica-b/);
    // later appends of A are not written either, and flush keeps saying why
    a.append({ type: 'step.log', stepId: 'three', message: 'from a' } as never);
    await expect(a.flush!()).rejects.toThrow(/lost the run lock/);

    b.append({ type: 'step.log', stepId: 'two', message: 'from b' } as never);
    await b.flush!();
    const stored = (await store.readJournal(runId)).records;
    expect(stored.map((r) => [r.seq, (r as { message?: string }).message])).toEqual([[1, 'from a'], [2, 'from b']]);
    await lockB.release();
    await lockA.release();
    expect(await store.lockHolder(inv)).toBeUndefined();
  });

  it('a lock whose holder stops renewing expires after its TTL and can be taken', async () => {
    const runId = await newRun();
    const lock = await store.acquireLock(id, runId);
    let lost = '';
    lock.onLost((why) => { lost = why; });
    // Revoke the lease behind the lock's back (what expiry does); the key goes with it.
    const kv = (await mgmt.client().get(keys.lock(lockKeys(id)[0]!)).exec()).kvs[0]!;
    await mgmt.client().leaseClient.leaseRevoke({ ID: kv.lease });
    const other = await store.acquireLock(id, newRunId('other'));
    const deadline = Date.now() + 10_000;
    while (!lost && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lost).toMatch(/expired/);
    await other.release();
  });
  it("a run handle's approve() resolves once the decision is in the store (first wins) and rejects when it cannot be written", async () => {
    const text = ['apiVersion: runbook/v1', 'name: api-approve', 'summary: an approval, then a wait', 'steps:', '  - id: confirm', '    action: approve', '  - id: after', '    action: wait', '    with: { duration: 10ms }', ''].join('\n');
    const runbook = loadRunbookText(text, 'api-approve.yaml');
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-api-'));
    const start = (name: string, s: EtcdStore) =>
      startRun({ runbook, runbookText: text, inventory: { ...inv, name }, params: {}, registry: createRegistry(), stateDir, store: s });
    const waiting = async (h: { pendingApprovals(): string[] }) => {
      const deadline = Date.now() + 10_000;
      while (!h.pendingApprovals().includes('confirm') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(h.pendingApprovals()).toEqual(['confirm']);
    };

    const h = await start('approve-ok', store);
    await waiting(h);
    expect(await h.approve('confirm', 'alice', 'test')).toBe(true);
    // Resolved means durable: the store already holds alice's decision, before the runner has seen it.
    expect(await store.readApproval(h.runId, 'confirm')).toMatchObject({ decision: 'granted', by: 'alice' });
    expect(await h.deny('confirm', 'bob', 'test', 'too late')).toBe(false);
    const r = await h.done;
    expect(r.status).toBe('succeeded');
    expect(r.records.find((x) => x.type === 'approval.granted')).toMatchObject({ by: 'alice' });

    // A store that cannot take the write: the caller hears so (and the step keeps waiting) instead of a silent true.
    // The management etcd of this run is really down (its member stopped), then started again. Its lease TTL is long
    // enough (30 s) that the run's lock outlives the outage, as it would a short network cut.
    const mgmt2 = await startCluster({ members: 1, name: 'mgmt-outage' });
    const flaky = new EtcdStore({ url: `etcd://${mgmt2.endpoints[0]!.replace(/^https?:\/\//, '')}`, leaseTtlSeconds: 30, requestTimeoutMs: 1000 });
    try {
      const h2 = await start('approve-fails', flaky);
      await waiting(h2);
      await mgmt2.stop('m1');
      const down = await h2.approve('confirm', 'alice', 'test').then(() => undefined, (e: Error) => e);
      expect(down, 'approve() with the management etcd down').toBeInstanceOf(Error);
      expect(down!.message).toMatch(/store|etcd|unavailable|connect|deadline/i);
      expect(h2.pendingApprovals()).toEqual(['confirm']);
      await mgmt2.start('m1');
      await mgmt2.waitHealthy(30_000);
      expect(await flaky.readApproval(h2.runId, 'confirm')).toBeUndefined(); // nothing was written during the outage
      expect(await h2.approve('confirm', 'alice', 'test')).toBe(true);
      expect(await flaky.readApproval(h2.runId, 'confirm')).toMatchObject({ decision: 'granted', by: 'alice' });
      // The run goes on, unless it tried to write its journal during the outage: a runner that cannot write cannot
      // prove it still holds the run, so it stops (fencing) and says why; either way nothing ran twice or unrecorded.
      const done = await h2.done;
      if (done.status !== 'succeeded') {
        expect(done.status).toBe('failed');
        expect(done.error?.message).toMatch(/lost the run lock: .*cannot write to the management etcd/);
      }
    } finally {
      await flaky.close();
      await mgmt2.teardown();
    }
  });
});
