/**
 * try-restart reads each member's own log: a member that refuses to start on damaged data (etcd 3.4 and 3.5: a db
 * whose first 16 KiB, the bbolt meta pages, are zeroed panics "invalid database"; overwritten WAL bytes are fatal
 * "walpb: crc mismatch") is not started again, and the step stops at once saying which member and why. That, and
 * not "the tool could not read the cluster", is the evidence power-loss-restore restores on. Real etcd.
 */
import { closeSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/inventory/types.ts';
import { action, makeActionContext, type TestActionContext } from '../support/action-context.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';

const tryRestart = action('members.try-restart');

function overwrite(file: string, at: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    closeSync(fd);
  }
}

describe('try-restart and permanent data errors in the members\' logs', () => {
  let cluster: TestCluster;
  let inv: Inventory;
  let t: TestActionContext;

  beforeAll(async () => {
    cluster = await startCluster({ members: 3, name: 'damaged', guardData: { off: 'the test damages db and WAL files in place on purpose' } });
    inv = cluster.inventory();
    t = makeActionContext(inv);
    const client = cluster.client();
    for (let i = 0; i < 60; i++) await client.put(`/k/${i}`).value('v'.repeat(1000)).exec();
  }, 90_000);
  afterAll(async () => {
    await t?.dispose();
    await cluster?.teardown();
  });

  it('does not restart a member whose log shows invalid database or a WAL CRC mismatch, and says which', async () => {
    for (const m of cluster.members) await cluster.stop(m.name);
    const [m1, m2] = cluster.members;
    overwrite(join(m1!.dataDir, 'member', 'snap', 'db'), 0, Buffer.alloc(16 * 1024));
    const walDir = join(m2!.dataDir, 'member', 'wal');
    const wal = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort()[0]!;
    overwrite(join(walDir, wal), 20_000, Buffer.alloc(64, 0x5a));

    const out = await tryRestart.impl.run(t.step('try-restart'), tryRestart.input({ waitFor: '60s' }));
    expect(out.recovered).toBe(false);
    const byName = Object.fromEntries(out.members.map((m: { name: string }) => [m.name, m]));
    expect(byName[m1!.name]).toMatchObject({ started: true, running: false, exited: true, dataError: expect.stringMatching(/invalid database/) });
    expect(byName[m2!.name]).toMatchObject({ started: true, running: false, exited: true, dataError: expect.stringMatching(/crc mismatch/) });
    expect(out.detail).toMatch(new RegExp(`no quorum can form: .*${m1!.name} has a data error \\(.*invalid database`));
    expect(out.detail).toMatch(new RegExp(`${m2!.name} has a data error \\(.*crc mismatch`));
    const logs = t.logs.join('\n');
    // Started once each, never again: a second start only fails the same way.
    for (const m of [m1!, m2!]) {
      expect(logs).toContain(`${m.name} cannot start on its data`);
      expect(logs).not.toContain(`${m.name} exited after it was started; starting it again`);
    }
    await cluster.stop(cluster.members[2]!.name);
  }, 120_000);
});
