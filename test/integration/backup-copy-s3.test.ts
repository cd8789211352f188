/**
 * Copies to an S3-compatible bucket. No real S3 can be reached here: the bucket is `s3rver` (npm), a stand-in for
 * S3's REST API on loopback (test/support/s3-standin.ts). `backup stream --copy-to s3://…` puts every sealed
 * segment and the full snapshot (with manifests) under the prefix, each read back from the bucket and its sha256
 * compared before it counts; an object already there with other bytes is a conflict, reported and left alone.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { type ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { deltasDir } from '../../src/backup/segments.ts';
import { readStatus } from '../../src/backup/status.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { poll } from '../support/backup-workload.ts';
import { S3_CREDENTIALS, startS3, type S3Standin } from '../support/s3-standin.ts';
import { killAll } from '../support/child-processes.ts';
import { cli as runCli, type CliRun } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');

function cli(args: string[]): CliRun {
  return runCli(args, { timeout: 240_000, env: S3_CREDENTIALS });
}

let cluster: TestCluster | undefined;
let s3: S3Standin | undefined;
const children: ResultPromise[] = [];
afterEach(async () => {
  await killAll(children);
  await cluster?.teardown();
  await s3?.stop();
  cluster = undefined;
  s3 = undefined;
});

async function objectSha(s: S3Standin, key: string): Promise<string> {
  const got = await s.client.send(new GetObjectCommand({ Bucket: 'backups', Key: key }));
  return createHash('sha256').update(Buffer.from(await got.Body!.transformToByteArray())).digest('hex');
}

describe('backup copies to an S3-compatible bucket (s3rver stand-in)', () => {
  it('copies sealed segments and snapshots, each read back and checked; a different object is left alone', async () => {
    s3 = await startS3(['backups']);
    const s = s3;
    cluster = await startCluster({ name: 'cps', members: 1 });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const to = 's3://backups/prod/etcd';
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms', '--segment-max-age', '1s', '--copy-to', to, '--s3-endpoint', s.endpoint]);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));
    const kv = c.client(c.members[0]!.name);
    for (let i = 0; i < 30; i++) await kv.put(`/x/${i}`).value(`v${i}`).exec();
    const listed = async () => (await s.client.send(new ListObjectsV2Command({ Bucket: 'backups', Prefix: 'prod/etcd/' }))).Contents?.map((o) => o.Key!) ?? [];
    await poll('a sealed segment in the bucket', async () => ((await listed()).some((k) => k.endsWith('.seg.json')) ? true : undefined), 60_000);
    stream.kill('SIGTERM');
    expect((await stream).exitCode).toBe(0);
    const again = await cli(['backup', 'copy', '-i', inv, '--to', to, '--s3-endpoint', s.endpoint, '--json']);
    expect(again.exitCode, again.stderr).toBe(0);

    const local = [
      ...readdirSync(deltasDir(dir)).filter((f) => f.endsWith('.seg') || f.endsWith('.seg.json')).map((f) => [join(deltasDir(dir), f), `prod/etcd/deltas/${f}`] as const),
      ...readdirSync(dir).filter((f) => /\.db(\.json)?$/.test(f)).map((f) => [join(dir, f), `prod/etcd/${f}`] as const),
    ];
    expect(local.length).toBeGreaterThanOrEqual(4);
    for (const [file, key] of local) expect(await objectSha(s, key), key).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));

    // An object that differs (replaced in the bucket by something else): found, reported, not touched.
    const [, victim] = local.find(([f]) => f.endsWith('.seg'))!;
    await s.client.send(new PutObjectCommand({ Bucket: 'backups', Key: victim, Body: 'not a segment' }));
    for (const f of readdirSync(deltasDir(dir)).filter((x) => x.startsWith('copied-'))) renameSync(join(deltasDir(dir), f), join(c.dir, `${f}.moved-by-test`));
    const r = await cli(['backup', 'copy', '-i', inv, '--to', to, '--s3-endpoint', s.endpoint]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/conflict/);
    expect(await objectSha(s, victim)).toBe(createHash('sha256').update('not a segment').digest('hex'));
  }, 120_000);
});
