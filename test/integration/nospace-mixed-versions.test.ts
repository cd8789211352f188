/**
 * A cluster caught mid-upgrade by NOSPACE: one member still on etcd 3.4.23, two already on 3.5.30 (started on
 * 3.4.23, filled to NOSPACE, then two members restarted on the 3.5.30 binaries, as a rolling upgrade does). The real
 * CLI (`runbook run nospace-recovery`) recovers it: the alarm is gone, writes are accepted, every key is still
 * there, and each member still runs the version it ran before (the recovery never restarts or replaces one with
 * another build). Both builds come from .tools/ (scripts/fetch-etcd.sh), whatever ETCD_VERSION this leg runs.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/store/journal.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { toolsBinDir } from '../support/etcd-versions.ts';
import { cli as runCli } from '../support/cli.ts';

const bin = join(import.meta.dirname, '../../bin/runbook.js');
const MiB = 1024 * 1024;

describe('nospace-recovery on a cluster mid-upgrade (3.4.23 + 3.5.30 members)', () => {
  let cluster: TestCluster | undefined;
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('recovers through the real CLI: alarm gone, writes accepted, data kept, versions unchanged', async () => {
    cluster = await startCluster({ name: 'mixed', quotaBytes: 16 * MiB, etcdBinDir: toolsBinDir('3.4.23'), expectVersion: '3.4.23' });
    const c = cluster;
    const client = c.client('m1');
    const kept: Record<string, string> = {};
    for (let i = 0; i < 20; i++) {
      kept[`keep/${i}`] = `v${i}`;
      await client.put(`keep/${i}`).value(`v${i}`).exec();
    }
    await c.fillToNospace();
    // Rolling upgrade of two members, interrupted: m1 stays on 3.4.23.
    for (const name of ['m2', 'm3']) {
      await c.stop(name);
      c.useEtcd(name, toolsBinDir('3.5.30'));
      await c.start(name);
      await c.waitHealthy(30_000, { members: ['m1', 'm2', 'm3'] }); // also checks each member reports its binary's version
    }
    const versions = async () => Object.fromEntries(await Promise.all(['m1', 'm2', 'm3'].map(async (n) => [n, (await c.client(n).maintenance.status()).version])));
    expect(await versions()).toEqual({ m1: '3.4.23', m2: '3.5.30', m3: '3.5.30' });
    expect((await c.alarms()).map((a) => a.alarm)).toContain('NOSPACE');

    const inv = c.writeInventory();
    const stateDir = join(c.dir, 'state');
    const r = await runCli(['run', 'nospace-recovery', '-i', inv, '--state-dir', stateDir, '--yes', '--json'], { timeout: 240_000 });
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);

    // The preflight journaled each member's version: the mix is on record.
    const runId = readdirSync(join(stateDir, 'runs'))[0]!;
    const recs = readJournal(join(stateDir, 'runs', runId, 'journal.jsonl')).records as any[];
    const pre = recs.find((x) => x.type === 'step.succeeded' && x.stepId === 'preflight')?.output;
    expect(Object.fromEntries(pre.members.map((m: { name: string; version: string }) => [m.name, m.version]))).toEqual({ m1: '3.4.23', m2: '3.5.30', m3: '3.5.30' });
    expect(pre.etcdVersion).toBe('3.4.23');
    expect(pre.notes).toContainEqual(expect.stringMatching(/mixed etcd versions .*3\.4\.23 \(m1\), 3\.5\.30 \(m2, m3\).*runs at 3\.4\.23/));

    expect(await c.alarms()).toEqual([]);
    await client.put('after-recovery').value('ok').exec();
    expect(await c.client('m3').get('after-recovery').string()).toBe('ok');
    expect(await c.client('m2').getAll().prefix('keep/').strings()).toEqual(kept);
    expect(await versions()).toEqual({ m1: '3.4.23', m2: '3.5.30', m3: '3.5.30' });
  }, 300_000);
});
