/**
 * etcd.compact with physical: true must not report done while a voter is still deleting old revisions: etcd
 * marks a compaction applied as soon as it is scheduled, and a defrag started before the deletion is over copies
 * the history it should drop (and the member stays at the quota). A follower is made slow at deleting (a tiny
 * --experimental-compaction-batch-limit: 5 revisions per batch, 10 ms apart) so the leader's own physical
 * compaction returns seconds before the follower is done.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactionsFinished } from '../../src/etcd/metrics.ts';
import { EtcdPool } from '../../src/etcd/pool.ts';
import { action, makeActionContext } from '../support/action-context.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';

let cluster: TestCluster;
let slow: string;

beforeAll(async () => {
  cluster = await startCluster({ quotaBytes: 64 * 1024 * 1024 });
  const statuses = await Promise.all(cluster.members.map((m) => cluster.status(m.name)));
  const leaderId = statuses[0]!.leader;
  slow = cluster.members.find((_, i) => statuses[i]!.memberId !== leaderId)!.name;
  await cluster.stop(slow);
  cluster.members.find((m) => m.name === slow)!.command.push('--experimental-compaction-batch-limit=5');
  await cluster.start(slow);
  await cluster.waitHealthy();
  // ~1,500 revisions of history: 300 batches of 5 on the slow member, >= 3 s of deleting.
  const c = cluster.client(cluster.members[0]!.name);
  for (let i = 0; i < 1500; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => c.put(`k${(i + j) % 20}`).value(`v${i + j}`).exec()));
}, 120_000);
afterAll(async () => cluster?.teardown());

describe('etcd.compact waits until every voter has deleted the old revisions', () => {
  it('run() returns when the leader is done; verify() only once the slow follower is too', async () => {
    const inventory = cluster.inventory();
    const pool = new EtcdPool(inventory);
    const t = makeActionContext(inventory);
    try {
      expect(await compactionsFinished(pool, slow)).toBe(0);
      const compact = action('etcd.compact');
      const ctx = t.step('compact');
      const out = await compact.impl.run(ctx, compact.input({ physical: true }));
      expect(out.finishedBefore).toMatchObject({ [slow]: 0 });
      // The request went to the leader and its deletion is over; the slow follower is still at it.
      expect(out.member).not.toBe(slow);
      expect(await compactionsFinished(pool, slow)).toBe(0);
      const t0 = performance.now();
      await compact.impl.verify!(ctx, compact.input({ physical: true }), out);
      const waited = performance.now() - t0;
      expect(await compactionsFinished(pool, slow)).toBe(1);
      expect(readFileSync(cluster.members.find((m) => m.name === slow)!.logFile, 'utf8')).toMatch(/finished scheduled compaction/);
      expect(waited).toBeGreaterThan(500); // it did wait for the follower, not just for the scheduling
    } finally {
      pool.close();
      await t.dispose();
    }
  });

  it('without a baseline (metrics unknown) only the scheduling is confirmed, and the log says so', async () => {
    const inventory = cluster.inventory();
    const t = makeActionContext(inventory);
    try {
      const compact = action('etcd.compact');
      const ctx = t.step('compact2');
      const c = cluster.client(cluster.members[0]!.name);
      for (let i = 0; i < 20; i++) await c.put(`k${i}`).value('again').exec();
      const out = await compact.impl.run(ctx, compact.input({ physical: true }));
      await compact.impl.verify!(ctx, compact.input({ physical: true }), { ...out, finishedBefore: Object.fromEntries(Object.keys(out.finishedBefore ?? {}).map((k) => [k, null])) });
      expect(t.logs.join('\n')).toMatch(/metrics do not show compaction progress; only the scheduling is confirmed/);
    } finally {
      await t.dispose();
    }
  });
});
