/**
 * Real etcd clusters for integration tests: N members on 127.0.0.1 (free ports, a temp dir, a tiny quota),
 * started through the product's `process` driver, plus the fault-injection helpers tests need.
 *
 * A thin layer over the product's throwaway cluster (src/rehearse/local-cluster.ts, what `runbook rehearse` uses):
 * this file only adds the test defaults (temp dir prefix, inventory source "test", TLS certificates from
 * ./tls-certs.ts, RUNBOOK_TEST_KEEP).
 *
 * Every member this harness starts is SIGKILLed by pid at teardown, and (best effort) when the test process exits.
 * Set RUNBOOK_TEST_KEEP=1 to keep the temp dirs (logs, data) of clusters for a look after a failure.
 */
import { join } from 'node:path';
import { startLocalCluster } from '../../src/rehearse/local-cluster.ts';
import type { LocalCluster, LocalMember, LocalMemberStatus } from '../../src/rehearse/local-cluster.ts';
import { makeTestCerts } from './tls-certs.ts';

export { corruptFile, freePorts, livePids, logTail } from '../../src/rehearse/local-cluster.ts';

export type TestMember = LocalMember;
export type MemberStatus = LocalMemberStatus;
export type TestCluster = LocalCluster;

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
}

/**
 * Start an N-member cluster (default 3) on loopback and wait until it is healthy.
 *
 * @example
 * const cluster = await startCluster({ quotaBytes: 16 * 1024 * 1024 });
 * try { await cluster.fillToNospace(); } finally { await cluster.teardown(); }
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<TestCluster> {
  return startLocalCluster({
    ...(opts.members !== undefined ? { members: opts.members } : {}),
    ...(opts.quotaBytes !== undefined ? { quotaBytes: opts.quotaBytes } : {}),
    ...(opts.extraFlags ? { extraFlags: opts.extraFlags } : {}),
    ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    ...(opts.tls ? { tls: (dir: string) => makeTestCerts(join(dir, 'tls')) } : {}),
    name: opts.name ?? 'test',
    source: 'test',
    dirPrefix: 'runbook-test-',
    keepDir: process.env.RUNBOOK_TEST_KEEP === '1',
    killOnSignals: true,
  });
}
