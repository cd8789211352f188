/**
 * Periodic full snapshots of `runbook backup stream` (--full-every, --full-after-bytes), on a real cluster with the
 * real CLI: a new full snapshot is taken beside the running watch, the delta log stays one contiguous chain and
 * continues from it (segments opened after it name it as their base), and point-in-time restores on both sides of
 * it give exactly the keyspace the cluster served at the target (`get --rev`): one from the newer snapshot, one
 * (the earlier point, restored second) from an older snapshot with the deltas replayed across the newer one's time.
 */
import { basename, join } from 'node:path';
import type { ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { catalog } from '../../src/backup/chain.ts';
import { listSegments } from '../../src/backup/segments.ts';
import { readLog, readStatus, type LogEntry } from '../../src/backup/status.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { keyspaceAt, poll } from '../support/backup-workload.ts';
import { rewindParams } from '../support/etcd-versions.ts';
import { killAll } from '../support/child-processes.ts';
import { cli as runCli } from '../support/cli.ts';

const cli = (args: string[]) => runCli(args, { timeout: 240_000 });

let cluster: TestCluster | undefined;
const children: ResultPromise[] = [];
afterEach(async () => {
  await killAll(children);
  await cluster?.teardown();
  cluster = undefined;
});

const snapshotsTaken = (dir: string, why: RegExp): LogEntry[] => readLog(dir).filter((e) => e.kind === 'snapshot' && why.test(String(e.why)));

describe('backup stream: periodic full snapshots', () => {
  it('--full-every: a new full snapshot, the chain continues from it, PITR on both sides of it', async () => {
    cluster = await startCluster({ name: 'bk-full' });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const admin = () => c.client(c.members[0]!.name);
    const put = async (k: string, v: string) => Number((await admin().put(k).value(v).exec()).header.revision);
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms', '--segment-max-age', '1s', '--full-every', '3s']);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));

    for (let i = 0; i < 15; i++) await put(`/app/a${i}`, `1-${i}`);
    const a = await put('/app/marker', 'a');
    const newer = await poll('a periodic full snapshot after the first writes', () => snapshotsTaken(dir, /periodic/).find((e) => Number(e.revision) >= a), 60_000);
    for (let i = 0; i < 15; i++) await put(`/app/b${i}`, `2-${i}`);
    await admin().delete().key('/app/a2').exec();
    const b = await put('/app/marker', 'b');
    await poll(`the stream to hold revision ${b}`, () => ((readStatus(dir)?.durableRevision ?? 0) >= b ? true : undefined));
    stream.kill('SIGTERM');
    expect((await stream).exitCode).toBe(0);

    // One contiguous chain, no gap, and segments whose base is the newer snapshot: the log continues from it.
    const cat = await catalog([dir], c.inventory().name, { verify: true });
    expect(cat.problems).toEqual([]);
    expect(cat.runs.length).toBe(1);
    expect(cat.bases.length).toBeGreaterThanOrEqual(2);
    expect(readLog(dir).filter((e) => e.kind === 'gap')).toEqual([]);
    const bases = listSegments(dir, c.inventory().name).map((s) => s.manifest?.base.file);
    expect(bases).toContain(newer.file);

    const targets = [
      { revision: b, keys: await keyspaceAt(admin(), b) },
      { revision: a - 5, keys: await keyspaceAt(admin(), a - 5) },
    ];
    let n = 0;
    for (const t of targets) {
      const stateDir = join(c.dir, `state-${n++}`);
      const plan = await cli(['plan', 'point-in-time-restore', '-i', inv, '--state-dir', stateDir, '-p', `revision=${t.revision}`]);
      expect(plan.exitCode, plan.stderr + plan.stdout).toBe(0);
      const base = /base snapshot (\S+) \(revision (\d+)/.exec(plan.stdout);
      expect(base, plan.stdout).not.toBeNull();
      if (t.revision === b) expect(Number(base![2])).toBeGreaterThanOrEqual(Number(newer.revision));
      else {
        // the earlier point comes from an older snapshot, replayed across the time the newer one was taken
        expect(Number(base![2])).toBeLessThan(Number(newer.revision));
        expect(basename(base![1]!)).not.toBe(newer.file);
      }
      c.checkpointData();
      const r = await cli(['run', 'point-in-time-restore', '-i', inv, '--state-dir', stateDir, '--yes', '-p', `revision=${t.revision}`, ...rewindParams()]);
      expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
      expect(await keyspaceAt(admin()), `restore to revision ${t.revision}`).toEqual(t.keys);
    }
  }, 300_000);

  it('--full-after-bytes: a new full snapshot once that many bytes of changes were streamed; the chain stays contiguous', async () => {
    cluster = await startCluster({ name: 'bk-fullbytes' });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const admin = () => c.client(c.members[0]!.name);
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms', '--segment-max-age', '1s', '--full-after-bytes', '16KiB']);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));
    expect(snapshotsTaken(dir, /delta bytes/)).toEqual([]);
    for (let i = 0; i < 12; i++) await admin().put(`/big/${i}`).value('x'.repeat(2048)).exec();
    const taken = await poll('a full snapshot after 16 KiB of changes', () => snapshotsTaken(dir, /delta bytes/)[0], 60_000);
    expect(Number(taken.revision)).toBeGreaterThan(1);
    const after = Number((await admin().put('/after').value('1').exec()).header.revision);
    await poll(`the stream to hold revision ${after}`, () => ((readStatus(dir)?.durableRevision ?? 0) >= after ? true : undefined));
    stream.kill('SIGTERM');
    expect((await stream).exitCode).toBe(0);
    const cat = await catalog([dir], c.inventory().name, { verify: true });
    expect(cat.runs.length).toBe(1);
    expect(cat.runs[0]!.to).toBe(after);
    expect(cat.bases.map((s) => s.manifest!.revision)).toContain(Number(taken.revision));
  }, 120_000);
});
