/**
 * Identical NOSPACE clusters, many times: fill a 3-member cluster once, stop it, keep its data dirs as a
 * template, and before every trial put an exact copy of the template back and start the same members again
 * (same ports, names, ids, alarm armed). Every variant of a benchmark then starts from the same bytes, and the
 * fill (minutes at 2 GB) is paid once per size.
 *
 * The harness (test/support/etcd-cluster.ts) starts and kills the members; this file only copies data dirs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type TestCluster } from '../../test/support/etcd-cluster.ts';
import { fillWithHistory, type FillOptions, type FillResult } from './fill.ts';

export interface BenchCluster {
  cluster: TestCluster;
  quotaBytes: number;
  fill: FillResult;
  /** Member db sizes right after the fill (bytes). */
  filledDbBytes: number[];
  /** Stop the members, replace their data dirs with the template, start them, wait until healthy. */
  restore(): Promise<{ ms: number }>;
  stopAll(): Promise<void>;
  /** Path of a member's bbolt file. */
  dbFile(member: string): string;
  teardown(): Promise<void>;
}

const run = (file: string, args: string[]) => execFileSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });

export async function prepareBenchCluster(quotaBytes: number, fill: FillOptions = {}, name = 'bench', tls = false): Promise<BenchCluster> {
  const cluster = await startCluster({ quotaBytes, name, startTimeoutMs: 60_000, tls, guardData: { off: 'bench scratch copies, replaced from the template before every trial' } });
  try {
    const filled = await fillWithHistory(cluster, fill);
    const filledDbBytes = await Promise.all(cluster.members.map(async (m) => (await cluster.status(m.name)).dbSize));
    const templateDir = join(cluster.dir, 'template');
    mkdirSync(templateDir);
    const stopAll = async () => {
      for (const m of cluster.members) if (cluster.pid(m.name) !== undefined) await cluster.stop(m.name);
    };
    await stopAll();
    for (const m of cluster.members) run('cp', ['-a', m.dataDir, join(templateDir, `${m.name}.etcd`)]);
    run('sync', []);
    const restore = async () => {
      const t0 = performance.now();
      await stopAll();
      for (const m of cluster.members) {
        // Bench-owned scratch copies of the template, not anybody's data: removed outright.
        if (existsSync(m.dataDir)) rmSync(m.dataDir, { recursive: true, force: true });
        run('cp', ['-a', join(templateDir, `${m.name}.etcd`), m.dataDir]);
      }
      // Write the copies back before the clock starts, so neither variant pays for the other's dirty pages.
      run('sync', []);
      await Promise.all(cluster.members.map((m) => cluster.start(m.name)));
      await cluster.waitHealthy(120_000);
      return { ms: Math.round(performance.now() - t0) };
    };
    return {
      cluster,
      quotaBytes,
      fill: filled,
      filledDbBytes,
      restore,
      stopAll,
      dbFile: (member) => join(cluster.members.find((m) => m.name === member)!.dataDir, 'member', 'snap', 'db'),
      teardown: () => cluster.teardown(),
    };
  } catch (err) {
    await cluster.teardown().catch(() => {});
    throw err;
  }
}

export function fileSize(path: string): number {
  return statSync(path).size;
}
