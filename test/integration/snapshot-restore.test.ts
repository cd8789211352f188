/**
 * etcd.restore-member, etcd.snapshot-select and etcd.snapshot-save called directly against real etcd (one member,
 * cheap): refusals that protect live data, a leftover `.part` moved aside, the probe that recognises this run's
 * restore, a restored member started by its driver with its ORIGINAL command line (etcd ignores the
 * initial-cluster flags once a WAL exists), selection reasons, and saving over TLS and with auth (etcdctl).
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { catalog } from '../../src/actions/catalog.ts';
import { restoreMemberAction } from '../../src/actions/snapshot-restore.ts';
import { snapshotSaveAction } from '../../src/actions/snapshot-save.ts';
import { snapshotSelectAction } from '../../src/actions/snapshot-select.ts';
import { driverFor } from '../../src/drivers/index.ts';
import { moveAside, localHost } from '../../src/hosts/index.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { StepError } from '../../src/util/errors.ts';
import { corruptFile, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeActionContext, memberItem, stepError } from '../support/action-context.ts';
import { clockPast } from '../support/clock.ts';
import { rewindParams } from '../support/etcd-versions.ts';

// Where the suite's etcd tools cannot bump revisions (3.4.23) a restore is refused unless the rewind is accepted.
const rewind = { allowRevisionRewind: rewindParams().length > 0 };
const restoreInput = (raw: Record<string, unknown>) => catalog['etcd.restore-member'].input.parse({ ...rewind, ...raw });


describe('restore-member and select on a real one-member cluster', () => {
  let cluster: TestCluster;
  let inv: Inventory;
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, name: 'one' });
    inv = cluster.inventory();
  }, 60_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('refuses over live data, moves a crashed .part aside, restores; the driver starts it with its original flags', async () => {
    const client = cluster.client();
    await client.put('before').value('1').exec();
    const snapDir = join(cluster.dir, 'snapshots');
    await cluster.snapshot(join(snapDir, 'one-a.db'));
    await client.put('after').value('2').exec();
    cluster.checkpointData(); // the snapshot and the live data dir: moved aside at most, never deleted
    const t = makeActionContext(inv, { runId: '20261124-120000-power-loss-restore-abc123' });
    try {
      const chosen = await snapshotSelectAction.run(t.step('select'), { trialRestore: true, maxCandidates: 5, ...rewind });
      expect(chosen).toMatchObject({ path: join(snapDir, 'one-a.db'), rejected: [] });
      const input = restoreInput({ snapshot: chosen.path, sha256: chosen.sha256 });
      const m1 = cluster.members[0]!;
      const ctx = t.step('restore', { item: memberItem(inv, 'm1') });

      // The data dir is there (and the member runs): refused, nothing touched.
      expect((await stepError(restoreMemberAction.run(ctx, input))).message).toMatch(/data dir .* exists .* never goes over existing data/);
      // Even pointed at an absent dir, a running member is refused.
      const elsewhere = { ...inv, members: [{ ...inv.members[0]!, dataDir: `${m1.dataDir}-elsewhere` }] };
      const e2 = await stepError(restoreMemberAction.run(makeActionContext(elsewhere).step('restore', { item: memberItem(elsewhere, 'm1') }), input));
      expect(e2.kind).toBe('precondition');
      expect(e2.message).toMatch(/it runs \(pid \d+\)/);

      await driverFor(inv.members[0]!).stop();
      const aside = await moveAside(localHost, m1.dataDir, 'pre-restore');
      // A crashed attempt left a half-written .part behind.
      await localHost.mkdir(join(`${m1.dataDir}.part`, 'member', 'snap'));
      writeFileSync(join(`${m1.dataDir}.part`, 'member', 'snap', 'db'), 'half');
      // A snapshot that changed since it was chosen is refused.
      const wrongSha = await stepError(restoreMemberAction.run(ctx, restoreInput({ snapshot: chosen.path, sha256: 'f'.repeat(64) })));
      expect(wrongSha.message).toMatch(/changed since it was chosen/);

      expect((await restoreMemberAction.probe!(ctx, input)).done).toBe(false);
      const out = await restoreMemberAction.run(ctx, input);
      await restoreMemberAction.verify!(ctx, input, out);
      expect(out.token).toBe('runbook-20261124-120000-power-loss-restore-abc123');
      expect(out.interruptedMovedTo).toMatch(/\.restore-interrupted-\d{8}T\d{6}Z$/);
      expect(existsSync(join(out.interruptedMovedTo!, 'member', 'snap', 'db'))).toBe(true);
      expect(existsSync(`${m1.dataDir}.part`)).toBe(false);
      expect(existsSync(join(aside, 'member', 'wal'))).toBe(true);
      const probe = await restoreMemberAction.probe!(ctx, input);
      expect(probe).toMatchObject({ done: true, output: { token: out.token, sha256: chosen.sha256 } });
      // Another run (another token) does not take this restore for its own.
      expect((await restoreMemberAction.probe!(makeActionContext(inv, { runId: 'other' }).step('restore', { item: memberItem(inv, 'm1') }), input)).done).toBe(false);

      // The driver's command still has the original --initial-cluster-token and --initial-cluster-state new.
      expect(m1.command.join(' ')).not.toContain(out.token);
      await cluster.start('m1');
      await cluster.waitHealthy(20_000);
      const keys = await cluster.client().getAll().prefix('').strings();
      expect(keys).toEqual({ before: '1' });
    } finally {
      await t.dispose();
    }
  }, 120_000);

  it('select rejects truncated, damaged and manifest-mismatched snapshots with reasons, falls back to an older one', async () => {
    const dir = join(cluster.dir, 'select');
    await localHost.mkdir(dir);
    const good = join(dir, 'one-good.db');
    await cluster.snapshot(good);
    const names = ['one-cut.db', 'one-half.db', 'one-flip.db', 'one-manifest.db'];
    for (const [i, n] of names.entries()) {
      await clockPast(i === 0 ? good : join(dir, names[i - 1]!)); // each one newer than the one before
      await cluster.snapshot(join(dir, n));
    }
    corruptFile(join(dir, 'one-cut.db'), 'truncate-tail');
    corruptFile(join(dir, 'one-half.db'), 'truncate-half');
    corruptFile(join(dir, 'one-flip.db'), 'flip-byte');
    writeFileSync(join(dir, 'one-manifest.db.json'), JSON.stringify({ version: 1, file: 'one-manifest.db', cluster: 'one', sha256: 'e'.repeat(64), revision: 1, size: 1, createdAt: new Date().toISOString() }));
    cluster.checkpointData([dir]); // selection reads candidates, damaged or not: it deletes none
    const t = makeActionContext({ ...inv, snapshots: { dirs: [dir] } });
    try {
      const ctx = t.step('select');
      const chosen = await snapshotSelectAction.run(ctx, { trialRestore: true, maxCandidates: 10, ...rewind });
      expect(chosen.path).toBe(good);
      const why = Object.fromEntries(chosen.rejected.map((r) => [basename(r.path), r.reason]));
      expect(Object.keys(why).sort()).toEqual([...names].sort());
      expect(why['one-cut.db']).toMatch(/sha256 trailer does not match/);
      expect(why['one-half.db']).toMatch(/sha256 trailer does not match/);
      expect(why['one-flip.db']).toMatch(/sha256 trailer does not match/);
      expect(why['one-manifest.db']).toMatch(/manifest recorded 1/);
      // The originals are all still there; the throwaway copies are gone.
      for (const n of names) expect(existsSync(join(dir, n))).toBe(true);
      expect(readdirSync(join(ctx.stateDir, 'tmp'))).toEqual([]);
    } finally {
      await t.dispose();
    }
  }, 120_000);
});

describe('snapshot-save over TLS (direct stream) and with auth (etcdctl)', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });
  const input = catalog['etcd.snapshot-save'].input.parse({});

  it('saves over https with the inventory CA and client certificate', async () => {
    cluster = await startCluster({ members: 1, name: 'tls', tls: true });
    const t = makeActionContext(cluster.inventory());
    try {
      const out = await snapshotSaveAction.run(t.step('save'), input);
      expect(out).toMatchObject({ via: 'stream', verified: true, cluster: 'tls' });
      expect(out.endpoint?.startsWith('https://')).toBe(true);
      expect(existsSync(out.path)).toBe(true);
    } finally {
      await t.dispose();
    }
  }, 60_000);

  it('with auth enabled: the stream is refused with a hint, etcdctl with the inventory credentials saves', async () => {
    cluster = await startCluster({ members: 1, name: 'auth' });
    const inv = cluster.inventory();
    const ctl = (args: string[]) => execa('etcdctl', ['--endpoints', cluster!.endpoints[0]!, ...args], { env: { ETCDCTL_API: '3' } });
    await ctl(['user', 'add', 'root', '--new-user-password', 'test-pw']);
    await ctl(['auth', 'enable']);
    const t = makeActionContext(inv);
    try {
      const refused = await stepError(snapshotSaveAction.run(t.step('save'), input));
      expect(`${refused.message} ${refused.hint ?? ''}`).toMatch(/auth/i);
    } finally {
      await t.dispose();
    }
    process.env.RUNBOOK_TEST_ETCD_PW = 'test-pw';
    const t2 = makeActionContext({ ...inv, auth: { username: 'root', passwordEnv: 'RUNBOOK_TEST_ETCD_PW' } });
    try {
      const out = await snapshotSaveAction.run(t2.step('save'), input);
      expect(out).toMatchObject({ via: 'etcdctl', verified: true });
      expect(JSON.stringify(out)).not.toContain('test-pw');
      expect(t2.logs.join('\n')).not.toContain('test-pw');
      // The refused attempt left only a .part (not a candidate); the good one is the only snapshot.
      expect(readdirSync(join(cluster.dir, 'snapshots')).filter((f) => f.endsWith('.db'))).toEqual([basename(out.path)]);
    } finally {
      await t2.dispose();
      delete process.env.RUNBOOK_TEST_ETCD_PW;
    }
  }, 60_000);
});
