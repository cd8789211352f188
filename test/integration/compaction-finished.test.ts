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
}, 120_000);
afterAll(async () => cluster?.teardown());

describe('etcd.compact waits until every voter has deleted the old revisions', () => {
  it('run() returns when the leader is done; verify() only once the slow follower is too', async () => {
    const inventory = cluster.inventory();
    const pool = new EtcdPool(inventory);
    const t = makeActionContext(inventory);
    try {
      // ~1,500 revisions of history of this test's own: 300 batches of 5 on the slow member, >= 3 s of deleting.
      const c = cluster.client(cluster.members[0]!.name);
      for (let i = 0; i < 1500; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => c.put(`k${(i + j) % 20}`).value(`v${i + j}`).exec()));
      // Compactions the slow member finished before (another test's, whatever ran first).
      const base = (await compactionsFinished(pool, slow))!;
      expect(base).toBeGreaterThanOrEqual(0);
      const slowLog = cluster.members.find((m) => m.name === slow)!.logFile;
      const logFrom = readFileSync(slowLog).length;
      const compact = action('etcd.compact');
      const ctx = t.step('compact');
      const out = await compact.impl.run(ctx, compact.input({ physical: true }));
      expect(out.finishedBefore).toMatchObject({ [slow]: base });
      // The request went to the leader and its deletion is over; the slow follower is still at it.
      expect(out.member).not.toBe(slow);
      expect(await compactionsFinished(pool, slow)).toBe(base);
      await compact.impl.verify!(ctx, compact.input({ physical: true }), out);
      // It did wait for the follower, not just for the scheduling: unfinished there before verify, finished when
      // verify returned (read from the follower itself, not timed).
      expect(await compactionsFinished(pool, slow)).toBe(base + 1);
      expect(readFileSync(slowLog).subarray(logFrom).toString('utf8')).toMatch(/finished scheduled compaction/);
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
