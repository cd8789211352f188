/**
 * etcd.snapshot-begin / etcd.snapshot-wait against a real 3-member cluster: the snapshot's point in time is fixed
 * when begin returns (writes made after it are not in the file, though it is finished later), it never streams from
 * the member it is told to avoid, the wait step hands back a verified file with its manifest, and a wait in a new
 * process (a resumed run: nothing in flight) finds the finished file, or takes a new one when it was cut short.
 */
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotBeginAction, snapshotWaitAction } from '../../src/actions/snapshot-background.ts';
import type { StepRecord } from '../../src/actions/types.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeActionContext } from '../support/action-context.ts';

/** The revision etcd's own tool reads from a snapshot file (etcdutl on 3.5, etcdctl on 3.4). */
async function statusRevision(file: string): Promise<number> {
  const dir = process.env.ETCD_BIN_DIR;
  const tool = !dir ? 'etcdutl' : existsSync(join(dir, 'etcdutl')) ? join(dir, 'etcdutl') : join(dir, 'etcdctl');
  const r = await execa(tool, ['snapshot', 'status', file, '-w', 'json'], { env: { ETCDCTL_API: '3' } });
  return JSON.parse(r.stdout).revision;
}

describe('a snapshot begun before, finished after (real etcd)', () => {
  let cluster: TestCluster;
  let inv: Inventory;
  beforeAll(async () => {
    cluster = await startCluster({ name: 'snapbg' });
    inv = cluster.inventory();
    const c = cluster.client();
    const v = 'v'.repeat(64 * 1024);
    for (let i = 0; i < 64; i++) await c.put(`fill/${i}`).value(v).exec(); // ~4 MiB: the stream takes a moment
  }, 90_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('is of the moment begin returned: a write made after it is not in the finished file', async () => {
    const steps: Record<string, StepRecord> = {};
    const t = makeActionContext(inv, { steps });
    try {
      const avoid = cluster.members[0]!.name;
      const begun: any = await snapshotBeginAction.run(t.step('snapshot'), { verify: true, avoidMember: avoid });
      expect(begun).toMatchObject({ background: true, path: expect.stringMatching(/snapbg-.*\.db$/) });
      expect(begun.member).not.toBe(avoid);
      const after = await cluster.client().put('written-after-begin').value('x').exec();
      const afterRev = Number(after.header.revision);
      steps.snapshot = { status: 'succeeded', output: begun } as StepRecord;

      const done: any = await snapshotWaitAction.run(t.step('snapshot-done'), { step: 'snapshot' });
      expect(done).toMatchObject({ path: begun.path, verified: true, member: begun.member });
      expect(existsSync(begun.path)).toBe(true);
      expect(existsSync(`${begun.path}.part`)).toBe(false);
      expect(JSON.parse(readFileSync(`${begun.path}.json`, 'utf8'))).toMatchObject({ sha256: done.sha256, revision: done.revision });
      expect(done.revision).toBeLessThan(afterRev);
      expect(await statusRevision(begun.path)).toBe(done.revision);

      // A resumed run (a new process: nothing in flight) finds the finished file.
      const again: any = await snapshotWaitAction.run(makeActionContext(inv, { steps }).step('snapshot-done'), { step: 'snapshot' });
      expect(again).toMatchObject({ path: begun.path, sha256: done.sha256 });
    } finally {
      await t.dispose();
    }
  }, 120_000);

  it('held (hold: true): nothing more is written until the wait step, and it is still of the moment begin returned', async () => {
    const steps: Record<string, StepRecord> = {};
    const t = makeActionContext(inv, { steps });
    try {
      const begun: any = await snapshotBeginAction.run(t.step('snapshot'), { verify: true, hold: true });
      expect(begun).toMatchObject({ background: true });
      const afterRev = Number((await cluster.client().put('written-after-held-begin').value('x').exec()).header.revision);
      // Unheld, ~4 MiB streams in well under a second; held, the file stays unfinished and (nearly) empty.
      await sleep(1500);
      expect(existsSync(begun.path)).toBe(false);
      expect(statSync(`${begun.path}.part`).size).toBeLessThan(1024 * 1024);
      expect(t.logs.some((l) => /held until then/.test(l))).toBe(true);
      steps.snapshot = { status: 'succeeded', output: begun } as StepRecord;
      const done: any = await snapshotWaitAction.run(t.step('snapshot-done'), { step: 'snapshot' });
      expect(done).toMatchObject({ path: begun.path, verified: true });
      expect(statSync(begun.path).size).toBeGreaterThan(4 * 1024 * 1024);
      expect(done.revision).toBeLessThan(afterRev);
    } finally {
      await t.dispose();
    }
  }, 120_000);

  it('held, and the run ends before its wait step (a later step failed): the end of the run lets it finish', async () => {
    const t = makeActionContext(inv, { steps: {} });
    const begun: any = await snapshotBeginAction.run(t.step('snapshot'), { verify: true, hold: true });
    await t.dispose();
    expect(existsSync(begun.path)).toBe(true);
    expect(JSON.parse(readFileSync(`${begun.path}.json`, 'utf8'))).toMatchObject({ size: statSync(begun.path).size });
  }, 120_000);

  it('a wait after a runner restart that cut the snapshot short takes a new one and says so', async () => {
    const steps: Record<string, StepRecord> = {};
    const t = makeActionContext(inv, { steps });
    const begun: any = await snapshotBeginAction.run(t.step('snapshot'), { verify: true });
    await t.dispose(); // the end of that process's run: the snapshot is finished, not abandoned
    expect(existsSync(begun.path)).toBe(true);
    // Make it look cut short: the finished file is set aside, as if only its .part had been written.
    renameSync(begun.path, `${begun.path}.part`);
    renameSync(`${begun.path}.json`, `${begun.path}.part.json`);
    steps.snapshot = { status: 'succeeded', output: begun } as StepRecord;
    const t2 = makeActionContext(inv, { steps });
    try {
      const out: any = await snapshotWaitAction.run(t2.step('snapshot-done'), { step: 'snapshot' });
      expect(out.path).not.toBe(begun.path);
      expect(out).toMatchObject({ verified: true, takenAfter: expect.stringContaining('snapshot') });
      expect(existsSync(out.path)).toBe(true);
      expect(t2.logs.some((l) => /cut short when the runner stopped/.test(l))).toBe(true);
    } finally {
      await t2.dispose();
    }
  }, 120_000);
});
