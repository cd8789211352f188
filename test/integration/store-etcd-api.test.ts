/**
 * The etcd store's guarantees through its API, on a real management etcd: first approval wins under concurrency;
 * a lock names its holder; journal appends are fenced by the lock's create revision (a runner whose lock was taken
 * over cannot write, even at a sequence number nobody wrote yet); the journal reads back in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRunId } from '../../src/execute/run-store.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { EtcdStore, keys } from '../../src/store/etcd.ts';
import { StepError } from '../../src/util/errors.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';

let mgmt: TestCluster;
let store: EtcdStore;
const inv = { name: 'c1', source: 'test', members: [{ name: 'm1', clientURL: 'http://127.0.0.1:9', peerURL: 'http://127.0.0.1:10' }] } as unknown as Inventory;

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
    const lockA = await store.acquireLock(inv, runId, { owner: 'replica-a' });
    await expect(store.acquireLock(inv, runId, { owner: 'replica-b' })).rejects.toThrow(/locked by run .*replica-a/);
    const a = await store.openJournal(runId, lockA);
    a.append({ type: 'step.log', stepId: 'one', message: 'from a' } as never);
    await a.flush!();

    // A's lease "expires": its key goes (as etcd does when a lease runs out); B takes the lock.
    await mgmt.client().delete().key(keys.lock(lockA.key));
    const lockB = await store.acquireLock(inv, runId, { owner: 'replica-b' });
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
    const lock = await store.acquireLock(inv, runId);
    let lost = '';
    lock.onLost((why) => { lost = why; });
    // Revoke the lease behind the lock's back (what expiry does); the key goes with it.
    const kv = (await mgmt.client().get(keys.lock(lock.key)).exec()).kvs[0]!;
    await mgmt.client().leaseClient.leaseRevoke({ ID: kv.lease });
    const other = await store.acquireLock(inv, newRunId('other'));
    const deadline = Date.now() + 10_000;
    while (!lost && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lost).toMatch(/expired/);
    await other.release();
  });
});
