/**
 * The backup stream through a NOSPACE incident, all real: a 3-member cluster with a 16 MiB quota is filled while
 * `runbook backup stream` runs, until puts fail with NOSPACE and the alarm is raised. The stream must keep its
 * position (every acknowledged revision on disk, nothing past the cluster's revision: a refused put is not a
 * change), then nospace-recovery (compact, defragment every member, disarm) runs under it; the stream carries on
 * without a gap, and a point-in-time restore to a revision after the recovery gives exactly the keyspace the
 * cluster served then, with a cluster that accepts writes afterwards.
 */
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { readLog, readStatus } from '../../src/backup/status.ts';
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

describe('backup stream and NOSPACE', () => {
  it('keeps its position through NOSPACE and nospace-recovery; a PITR after it gives the right keyspace', async () => {
    cluster = await startCluster({ name: 'bk-nospace' });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const admin = () => c.client(c.members[0]!.name);
    const revisionNow = async () => Number((await admin().kv.range({ key: Buffer.from([0]), limit: 1, count_only: true })).header.revision);
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms', '--segment-max-bytes', '1MiB']);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));
    for (let i = 0; i < 20; i++) await admin().put(`/app/k${i}`).value(`v${i}`).exec();

    // 16 keys of 128 KiB: the whole keyspace still fits one 4 MiB gRPC answer (keyspaceAt reads it at once)
    await c.fillToNospace({ valueBytes: 128 * 1024 });
    expect((await c.alarms()).map((a) => a.alarm)).toContain('NOSPACE');
    const atNospace = await revisionNow();
    await poll(`the stream to hold revision ${atNospace}`, () => ((readStatus(dir)?.durableRevision ?? 0) >= atNospace ? true : undefined), 60_000);
    // A put refused with NOSPACE changed nothing: the stream holds exactly the cluster's revision, no more.
    const st = readStatus(dir)!;
    expect(st.lastRevision).toBe(atNospace);
    expect(st.state).toBe('streaming');

    const rec = await cli(['run', 'nospace-recovery', '-i', inv, '--state-dir', join(c.dir, 'state-recovery'), '--yes']);
    expect(rec.exitCode, rec.stderr + rec.stdout).toBe(0);
    expect(await c.alarms()).toEqual([]);
    for (let i = 0; i < 10; i++) await admin().put(`/app/after${i}`).value(`a${i}`).exec();
    await admin().delete().key('/app/k3').exec();
    const final = await revisionNow();
    await poll(`the stream to hold revision ${final} after the recovery`, () => ((readStatus(dir)?.durableRevision ?? 0) >= final ? true : undefined), 60_000);
    expect(readLog(dir).filter((e) => e.kind === 'gap')).toEqual([]);
    const expected = await keyspaceAt(admin(), final);
    stream.kill('SIGTERM');
    expect((await stream).exitCode).toBe(0);

    c.checkpointData();
    const r = await cli(['run', 'point-in-time-restore', '-i', inv, '--state-dir', join(c.dir, 'state-pitr'), '--yes', '-p', `revision=${final}`, ...rewindParams()]);
    expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
    expect(await keyspaceAt(admin())).toEqual(expected);
    expect(await c.alarms()).toEqual([]);
    await admin().put('/after-restore').value('ok').exec();
    expect(await admin().get('/after-restore').string()).toBe('ok');
  }, 300_000);
});
