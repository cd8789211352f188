/**
 * Real etcd clusters for integration tests: N members on 127.0.0.1 (free ports, a temp dir, a tiny quota),
 * started through the product's `process` driver, plus the fault-injection helpers tests need.
 *
 * A thin layer over the product's throwaway cluster (src/rehearse/local-cluster.ts, what `runbook rehearse` uses):
 * this file only adds the test defaults (temp dir prefix, inventory source "test", TLS certificates from
 * ./tls-certs.ts, RUNBOOK_TEST_KEEP).
 *
 * Every member runs the etcd of $ETCD_BIN_DIR by absolute path, and a member that reports another version than
 * asked ($RUNBOOK_ETCD_VERSION) fails the start and every waitHealthy: tests never mix versions silently.
 *
 * Every member this harness starts is SIGKILLed by pid at teardown, and (best effort) when the test process exits.
 * Set RUNBOOK_TEST_KEEP=1 to keep the temp dirs (logs, data) of clusters for a look after a failure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalCluster } from '../../src/rehearse/local-cluster.ts';
import type { LocalClusterHandle, LocalMember, LocalMemberStatus } from '../../src/rehearse/local-cluster.ts';
import { anyOf, changedPaths, etcdChurn, lostPaths, runnerChurn, snapshotTree, type TreeSnapshot } from './nodata-loss.ts';
import { makeTestCerts } from './tls-certs.ts';

export { livePids, logTail } from '../../src/rehearse/local-cluster.ts';
export { corruptFile } from '../../src/rehearse/file-damage.ts';
export { freePorts } from '../../src/rehearse/ports.ts';

export type TestMember = LocalMember;
export type MemberStatus = LocalMemberStatus;
export type TestCluster = LocalClusterHandle & {
  /**
   * Record every file now under the members' data dirs and the snapshot dir: teardown then fails the test if any
   * of them is gone without a moved-aside copy (`<path>.<label>-<ts>`). Taken once at start; call it again after
   * a test has made files worth guarding (snapshots, a restored data dir) and before the runbook acts on them.
   */
  checkpointData(extraRoots?: string[]): void;
};

export interface StartClusterOptions {
  members?: number;
  quotaBytes?: number;
  tls?: boolean;
  /** Cluster name (inventory name, token prefix). */
  name?: string;
  /** Appended to every member's command line. */
  extraFlags?: string[];
  /** Time to wait for the first healthy cluster (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Check at teardown that nothing under the data dirs and the snapshot dir was deleted (default on). Turn it off
   * only with a reason, for a test that swaps a data dir out by hand (e.g. to mount a small filesystem there).
   */
  guardData?: true | { off: string };
  /** The etcd binaries (default $ETCD_BIN_DIR): every member runs `<dir>/etcd` by absolute path. */
  etcdBinDir?: string;
  /** The version members must report (default $RUNBOOK_ETCD_VERSION for $ETCD_BIN_DIR, else the binary's own). */
  expectVersion?: string;
}

/**
 * Start an N-member cluster (default 3) on loopback and wait until it is healthy.
 *
 * @example
 * const cluster = await startCluster({ quotaBytes: 16 * 1024 * 1024 });
 * try { await cluster.fillToNospace(); } finally { await cluster.teardown(); }
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<TestCluster> {
  const c = await startLocalCluster({
    ...(opts.members !== undefined ? { members: opts.members } : {}),
    ...(opts.quotaBytes !== undefined ? { quotaBytes: opts.quotaBytes } : {}),
    ...(opts.extraFlags ? { extraFlags: opts.extraFlags } : {}),
    ...(opts.etcdBinDir ? { etcdBinDir: opts.etcdBinDir } : {}),
    ...(opts.expectVersion ? { expectVersion: opts.expectVersion } : {}),
    ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    ...(opts.tls ? { tls: (dir: string) => makeTestCerts(join(dir, 'tls')) } : {}),
    name: opts.name ?? 'test',
    source: 'test',
    dirPrefix: 'runbook-test-',
    keepDir: process.env.RUNBOOK_TEST_KEEP === '1',
    killOnSignals: true,
  });
  return guardData(c, opts.guardData ?? true);
}

/** Nothing is lost, checked for every test that uses this harness (see TestCluster.checkpointData). */
function guardData(c: LocalClusterHandle, mode: true | { off: string }): TestCluster {
  const guards: TreeSnapshot[] = [];
  const roots = () => [...c.members.map((m) => m.dataDir), join(c.dir, 'snapshots')].filter((p) => existsSync(p));
  const checkpointData = (extraRoots: string[] = []) => {
    if (mode === true) guards.push(snapshotTree([...roots(), ...extraRoots.filter((p) => existsSync(p))], { ignore: anyOf(etcdChurn, runnerChurn) }));
  };
  checkpointData();
  const teardown = c.teardown.bind(c);
  let checked = false;
  const guarded = Object.assign(c, {
    checkpointData,
    async teardown(): Promise<void> {
      // Checked before the members are killed and the sandbox removed; reported after, so nothing is left running.
      const lost = checked ? [] : [...new Set(guards.flatMap((g) => lostPaths(g)))];
      const changed = checked ? [] : [...new Set(guards.flatMap((g) => changedPaths(g)))];
      checked = true;
      await teardown();
      if (lost.length > 0 || changed.length > 0) {
        const list = (xs: string[]) => xs.slice(0, 20).map((p) => `  ${p}`).join('\n');
        const parts = [
          lost.length ? `nothing may be deleted: ${lost.length} path(s) under the data dirs / snapshot dir are gone and were not moved aside:\n${list(lost)}` : '',
          changed.length ? `nothing may be altered: ${changed.length} file(s) under the data dirs / snapshot dir changed in size or content:\n${list(changed)}` : '',
        ];
        throw new Error(parts.filter(Boolean).join('\n'));
      }
    },
  });
  return guarded;
}
