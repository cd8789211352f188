/**
 * The rehearsal's verdict on a power-loss fault needs a restore to have run: the fault leaves no member able to
 * start on its own data, so a cluster that answers with its old cluster id was never restored (a fault that did not
 * land, or a runbook that skipped the restore) and the rehearsal must fail, whatever the run reported.
 * Also: the power-loss fault itself leaves data etcd refuses (its own log says so), on the etcd version under test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../src/actions/registry.ts';
import { injectFault, seedData } from '../../src/rehearse/faults.ts';
import { verifyOutcome } from '../../src/rehearse/verify.ts';
import { ETCD_REFUSES, expectEtcdRefuses } from '../support/damage.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';

describe('rehearsal verdict on power-loss', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  it('fails "restored from the snapshot" when the cluster still has the id it had before the fault', async () => {
    cluster = await startCluster({ name: 'verdict', members: 1 });
    const seeds = seedData('verdict');
    const client = cluster.client();
    for (const [k, v] of seeds) await client.put(k).value(v).exec();
    const clusterIdBefore = (await cluster.status('m1')).clusterId;
    const { checks } = await verifyOutcome({
      inventory: cluster.inventory(),
      fault: 'power-loss',
      faultResult: { fault: 'power-loss', summary: 'test', clusterIdBefore, snapshotsBefore: [] },
      quotaBytes: cluster.quotaBytes,
      seeds,
      expectNewSnapshot: false,
      settleMs: 2_000,
    });
    expect(checks.find((c) => c.name === 'restored from the snapshot')).toEqual({
      name: 'restored from the snapshot',
      ok: false,
      detail: `cluster id ${clusterIdBefore} unchanged: no restore ran`,
    });
    // Everything else about the cluster is fine: only the missing restore fails the verdict.
    expect(checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['restored from the snapshot']);
  }, 60_000);

  it('the power-loss fault leaves every member with data etcd refuses to start on', async () => {
    cluster = await startCluster({ name: 'plfault' });
    const registry = createRegistry();
    const result = await injectFault(cluster, 'power-loss', { registry, seeds: seedData('plfault'), signal: new AbortController().signal, log: () => {} });
    expect(result.damage?.map((d) => d.how).sort()).toEqual(['bbolt-meta', 'bbolt-meta', 'bbolt-meta', 'wal-record', 'wal-record', 'wal-record']);
    expect(result.clusterIdBefore).toMatch(/^[0-9a-f]+$/);
    const refused = await expectEtcdRefuses(cluster, cluster.members.map((m) => m.name));
    for (const m of cluster.members) expect(refused[m.name], m.name).toMatch(ETCD_REFUSES);
    cluster.checkpointData();
  }, 60_000);
});
