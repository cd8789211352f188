/**
 * The backup stream's watch requires a leader (`hasleader` gRPC metadata). A member cut off from the leader must
 * not feed a silent stream: without the metadata it keeps the watch open and answers progress requests from its
 * own stale state, so the stream would look caught up while the cluster moves on. Here the member the stream
 * watches loses its leader because the two other members are frozen (SIGSTOP): from where it stands that is a
 * partition (no peer answers), and unlike a real network cut it can be made on loopback without root. The stream
 * must drop that member with "no leader", and carry on once a leader is back.
 */
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { readLog, readStatus } from '../../src/backup/status.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { poll } from '../support/backup-workload.ts';
import { killAll } from '../support/child-processes.ts';

const bin = join(import.meta.dirname, '../../bin/runbook.js');

let cluster: TestCluster | undefined;
const children: ResultPromise[] = [];
const frozen: string[] = [];
afterEach(async () => {
  for (const name of frozen.splice(0)) await cluster?.kill(name, 'SIGCONT').catch(() => {});
  await killAll(children);
  await cluster?.teardown();
  cluster = undefined;
});

describe('backup stream and a member without a leader', () => {
  it('drops the member with "no leader" instead of streaming silence, and continues once a leader is back', async () => {
    cluster = await startCluster({ name: 'bk-noleader' });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const stream = execa(process.execPath, [bin, 'backup', 'stream', '-i', inv, '--fsync-interval', '200ms'], { reject: false, timeout: 240_000, env: { NO_COLOR: '1' } });
    children.push(stream);
    const watched = await poll('the stream to watch a member', () => {
      const s = readStatus(dir);
      return s?.state === 'streaming' && s.durableUpTo !== undefined ? s.member : undefined;
    });
    const client = c.client(watched);
    const rev = Number((await client.put('/before').value('1').exec()).header.revision);
    await poll(`the stream to hold revision ${rev}`, () => ((readStatus(dir)?.durableRevision ?? 0) >= rev ? true : undefined));

    const others = c.members.map((m) => m.name).filter((n) => n !== watched);
    for (const n of others) {
      frozen.push(n);
      await c.kill(n, 'SIGSTOP');
    }
    const lost = await poll(`the stream to drop ${watched} for having no leader`, () =>
      readLog(dir).find((e) => e.kind === 'member-lost' && e.member === watched && /no leader/i.test(String(e.reason))), 60_000);
    expect(lost.lastRevision).toBe(rev);

    for (const n of frozen.splice(0)) await c.kill(n, 'SIGCONT');
    await c.waitHealthy(30_000);
    const after = Number((await c.client(watched).put('/after').value('2').exec()).header.revision);
    await poll(`the stream to hold revision ${after} once a leader is back`, () => ((readStatus(dir)?.durableRevision ?? 0) >= after ? true : undefined), 60_000);
    stream.kill('SIGTERM');
    const r = await stream;
    expect(r.exitCode, r.stderr).toBe(0);
  }, 180_000);
});
