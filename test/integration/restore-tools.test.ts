/**
 * The restore tool of every etcd version the suite runs, for real (not an argument list): a snapshot of a cluster of
 * that version, restored by the product's restoreMember with that version's tools (etcdutl on 3.5, etcdctl on 3.4,
 * which has no etcdutl), then started with that version's etcd. Asserts what a user cares about: the keys are back
 * and the revision did not go backwards; with etcdutl it was bumped and older revisions answer "compacted" (what
 * keeps Kubernetes watch caches from missing changes).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { localHost } from '../../src/hosts/local.ts';
import { moveAside } from '../../src/hosts/index.ts';
import { restoreMember } from '../../src/snapshot/restore.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { skipUnlessCI } from '../support/must-run.ts';

const TOOLS = resolve(import.meta.dirname, '../../.tools');
const VERSIONS = ['3.4.23', '3.5.16', '3.5.30'];
const BUMP = 1_000_000_000;

describe('real restore with each etcd version\'s own tools', () => {
  let cluster: TestCluster | undefined;
  const savedEnv = { ETCD_BIN_DIR: process.env.ETCD_BIN_DIR, ETCD_VERSION: process.env.ETCD_VERSION };
  afterEach(async () => {
    try {
      await cluster?.teardown();
    } finally {
      cluster = undefined;
      for (const [k, v] of Object.entries(savedEnv)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });

  for (const version of VERSIONS) {
    it(`etcd ${version}: keys back, revision ${version.startsWith('3.4') ? 'not lower' : 'bumped and the old ones compacted'}`, async (ctx) => {
      const binDir = join(TOOLS, `etcd-${version}`, 'bin');
      if (!existsSync(join(binDir, 'etcd'))) skipUnlessCI(ctx, `no etcd ${version} under ${binDir} (scripts/bootstrap.sh fetches it)`);
      // The cluster, its snapshot (etcdctl) and its restart all use this version. etcd reads ETCD_<FLAG> variables
      // as flags, and 3.4 refuses ETCD_VERSION: it must not reach the member.
      process.env.ETCD_BIN_DIR = binDir;
      delete process.env.ETCD_VERSION;
      cluster = await startCluster({ name: `tools-${version.replaceAll('.', '')}`, members: 1, etcdBinDir: binDir, expectVersion: version });
      const client = cluster.client();
      const keys: Record<string, string> = {};
      for (let i = 0; i < 20; i++) {
        keys[`tools/${i}`] = `v${i}`;
        await client.put(`tools/${i}`).value(`v${i}`).exec();
      }
      const revisionBefore = (await cluster.status('m1')).revision;
      const snapshot = join(cluster.dir, 'snapshots', 'tools.db');
      await cluster.snapshot(snapshot);
      await client.put('after-snapshot').value('lost').exec();

      const m1 = cluster.members[0]!;
      await cluster.stop('m1');
      await moveAside(localHost, m1.dataDir, 'pre-restore');
      cluster.checkpointData();
      const inventory = cluster.inventory({ etcdBinDir: binDir });
      // 3.4.23's etcdctl cannot bump revisions: the restore must be accepted as a rewind there (the product refuses otherwise).
      const out = await restoreMember({ member: inventory.members[0]!, inventory, host: localHost, snapshot, token: `tools-${Date.now()}`, runId: 'restore-tools-test', ...(version.startsWith('3.4') ? { allowRevisionRewind: true } : {}) });
      expect(out.tool).toMatch(version.startsWith('3.4') ? /^etcdctl/ : /^etcdutl/);
      expect(out.tool).toContain(version);

      await cluster.start('m1');
      await cluster.waitHealthy(30_000, { members: ['m1'] });
      const fresh = cluster.client();
      expect(await fresh.getAll().prefix('tools/').strings()).toEqual(keys);
      expect(await fresh.get('after-snapshot').string()).toBeNull();
      const revisionAfter = (await cluster.status('m1')).revision;
      if (version.startsWith('3.4')) {
        expect(revisionAfter).toBeGreaterThanOrEqual(revisionBefore);
      } else {
        expect(revisionAfter).toBeGreaterThanOrEqual(revisionBefore + BUMP);
        const old = await fresh.get('tools/0').revision(revisionBefore).exec().then(() => 'readable', (e: Error) => e.message);
        expect(old).toMatch(/compacted/);
      }
    }, 90_000);
  }
});
