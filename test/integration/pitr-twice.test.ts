/**
 * Two point-in-time restores in a row, the second to an EARLIER point than the first, on a real 3-member cluster
 * with the real CLI. After the first restore the cluster is a whole bump ahead of its old revisions; the second
 * must still move revisions forward (the bump is computed from the cluster's current revision, not fixed), and
 * each restore must give exactly the keyspace the cluster served at its target (`get --rev`, read before any
 * restore). etcd 3.4's etcdctl cannot bump at all: there the restored cluster is at the target revision itself.
 */
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { readStatus } from '../../src/backup/status.ts';
import { localHost } from '../../src/hosts/local.ts';
import { localRestoreTool } from '../../src/snapshot/etcd-tools.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { keyspaceAt, poll, type Keyspace } from '../support/backup-workload.ts';
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

describe('point-in-time-restore twice', () => {
  it('a second restore to an earlier time still moves revisions forward and gives that keyspace', async () => {
    cluster = await startCluster({ name: 'pitr-twice' });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const admin = () => c.client(c.members[0]!.name);
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms']);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));

    /** Wait until the stream holds `rev` on disk, then take the time: at=<it> is exactly `rev`. */
    const mark = async (rev: number): Promise<{ at: string; revision: number; keys: Keyspace }> => {
      await poll(`the stream to hold revision ${rev}`, () => ((readStatus(dir)?.durableRevision ?? 0) >= rev ? true : undefined));
      const at = new Date().toISOString();
      await poll('the clock to move on', () => (Date.now() > Date.parse(at) ? true : undefined));
      return { at, revision: rev, keys: await keyspaceAt(admin(), rev) };
    };
    const put = async (k: string, v: string) => Number((await admin().put(k).value(v).exec()).header.revision);

    for (let i = 0; i < 10; i++) await put(`/app/a${i}`, `v1-${i}`);
    const early = await mark(await put('/app/marker', 'early'));
    for (let i = 0; i < 10; i++) await put(`/app/b${i}`, `v2-${i}`);
    await admin().delete().key('/app/a3').exec();
    const late = await mark(await put('/app/marker', 'late'));
    const del = await admin().delete().prefix('/app/').exec();
    await poll('the stream to hold the delete', () => ((readStatus(dir)?.durableRevision ?? 0) >= Number(del.header.revision) ? true : undefined));
    stream.kill('SIGTERM');
    await stream;
    expect(early.keys).not.toEqual(late.keys);

    const bumps = (await localRestoreTool(localHost, c.inventory().etcdBinDir)).canBump === true;
    const revisionNow = async () => Number((await admin().kv.range({ key: Buffer.from([0]), limit: 1, count_only: true })).header.revision);
    let n = 0;
    for (const p of [late, early]) {
      const stateDir = join(c.dir, `state-${n++}`);
      const revBefore = await revisionNow();
      c.checkpointData();
      const r = await cli(['run', 'point-in-time-restore', '-i', inv, '--state-dir', stateDir, '--yes', '-p', `at=${p.at}`, ...rewindParams()]);
      expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
      expect(await keyspaceAt(admin()), `restore to ${p.at}`).toEqual(p.keys);
      const revAfter = await revisionNow();
      if (bumps) expect(revAfter, `restore ${n}: revisions move forward (${revBefore} -> ${revAfter})`).toBeGreaterThan(revBefore);
      else expect(revAfter, 'etcd 3.4 restores the target revision as is').toBe(p.revision);
      // Writes go on after the restore, at revisions above every earlier one.
      const w = await put('/after', String(n));
      expect(w).toBeGreaterThan(revAfter);
    }
  }, 300_000);
});
