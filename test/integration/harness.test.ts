/**
 * The test harness itself, against real etcd: if these fail, every other integration test is suspect.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { GRPCResourceExhastedError, AlarmAction } from 'etcd3';
import { parse } from 'yaml';
import { corruptFile, livePids, startCluster } from '../support/etcd-cluster.ts';
import type { TestCluster } from '../support/etcd-cluster.ts';
import { driverFor } from '../../src/drivers/index.ts';
import { createEtcdClient } from '../../src/etcd/client.ts';

const clusters: TestCluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.teardown()));
});

describe('3-member cluster', () => {
  it('fills to NOSPACE, survives kill -9 and restart of a member, and leaves nothing behind', async () => {
    const cluster = await startCluster({ members: 3 });
    clusters.push(cluster);
    expect(cluster.members.map((m) => cluster.pid(m.name))).toEqual(cluster.members.map(() => expect.any(Number)));
    const [m1, m2, m3] = cluster.members.map((m) => m.name) as [string, string, string];

    // One leader, every member agrees.
    const statuses = await Promise.all([m1, m2, m3].map((n) => cluster.status(n)));
    expect(new Set(statuses.map((s) => s.leader)).size).toBe(1);
    expect(statuses.map((s) => s.memberId)).toContain(statuses[0]!.leader);

    // NOSPACE, as the etcd3 client (not only the harness) sees it.
    const { puts } = await cluster.fillToNospace();
    expect(puts).toBeGreaterThan(10);
    const client = cluster.client(m2);
    const { alarms } = await client.maintenance.alarm({ action: AlarmAction.Get });
    expect(alarms.map((a) => String(a.alarm).toUpperCase())).toContain('NOSPACE');
    expect(await cluster.alarms()).toContainEqual({ memberID: expect.stringMatching(/^[0-9a-f]+$/), alarm: 'NOSPACE' });
    await expect(client.put('after-nospace').value('x').exec()).rejects.toBeInstanceOf(GRPCResourceExhastedError);
    // Reads still work (no circuit breaker tripped by the failed put).
    expect(await client.get('runbook-test/fill/0').buffer()).toHaveLength(256 * 1024);
    const { dbSize } = await cluster.status(m1);
    expect(dbSize).toBeGreaterThanOrEqual(cluster.quotaBytes * 0.9);

    // A snapshot can be taken and damaged.
    const snap = join(cluster.dir, 'snapshots', 'a.db');
    await cluster.snapshot(snap);
    const size = statSync(snap).size;
    expect(size).toBeGreaterThan(1024 * 1024);
    corruptFile(snap, 'truncate-half');
    expect(statSync(snap).size).toBe(Math.floor(size / 2));

    // kill -9 a member: the rest stay healthy; restart it: it rejoins with its data.
    const victim = statuses[0]!.leader === statuses[2]!.memberId ? m2 : m3;
    const oldPid = cluster.pid(victim)!;
    await cluster.kill(victim, 'SIGKILL');
    expect(livePids([oldPid])).toEqual([]);
    expect(cluster.pid(victim)).toBeUndefined();
    await cluster.waitHealthy(15_000);
    await cluster.start(victim);
    expect(cluster.pid(victim)).not.toBe(oldPid);
    await cluster.waitHealthy(15_000);
    const back = await cluster.status(victim);
    expect(back.revision).toBe((await cluster.status(m1)).revision);
    expect(await cluster.alarms()).toContainEqual(expect.objectContaining({ alarm: 'NOSPACE' }));

    // The inventory drives the same members through the product's driver.
    const inv = cluster.inventory();
    expect(inv.source).toBe('test');
    expect(inv.members.map((m) => m.name)).toEqual([m1, m2, m3]);
    const written = parse(readFileSync(cluster.writeInventory(), 'utf8'));
    expect(written.members).toEqual(inv.members);
    const driver = driverFor(inv.members[0]!);
    expect(await driver.status()).toEqual({ running: true, pid: cluster.pid(m1) });
    expect(await driver.getFlag('quota-backend-bytes')).toBe(String(cluster.quotaBytes));

    const pids = cluster.startedPids();
    expect(pids.length).toBe(4);
    await cluster.teardown();
    expect(livePids(pids)).toEqual([]);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});

describe('TLS cluster', () => {
  it('answers a client with a certificate and refuses one without', async () => {
    const cluster = await startCluster({ members: 1, tls: true });
    clusters.push(cluster);
    expect(cluster.endpoints[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const tls = cluster.tls!;

    const good = cluster.client();
    await good.put('tls-probe').value('ok').exec();
    expect(await good.get('tls-probe').string()).toBe('ok');

    const noCert = createEtcdClient({ hosts: cluster.endpoints[0]!, deadline: 3000, tls: { rootCertificate: readFileSync(tls.cacert) } });
    try {
      // Refused for the missing client certificate (the TLS handshake), not for anything else.
      await expect(noCert.get('tls-probe').string()).rejects.toThrow(/certificate required|bad certificate|handshake/i);
    } finally {
      noCert.close();
    }

    const snap = join(cluster.dir, 'snapshots', 'tls.db');
    await cluster.snapshot(snap);
    expect(statSync(snap).size).toBeGreaterThan(0);

    const pids = cluster.startedPids();
    await cluster.teardown();
    expect(livePids(pids)).toEqual([]);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});

describe('a test process that dies without teardown', () => {
  // A child node process starts a 1-member cluster, prints its pids and dir, then ends without teardown
  // (process.exit when told on stdin, or killed by SIGTERM).
  async function orphan(end: 'exit' | 'SIGTERM'): Promise<{ dir: string; pids: number[] }> {
    const harness = new URL('../support/etcd-cluster.ts', import.meta.url).pathname;
    const code = `import { startCluster } from ${JSON.stringify(harness)};
      const c = await startCluster({ members: 1 });
      console.log(JSON.stringify({ dir: c.dir, pids: c.startedPids() }));
      process.stdin.once('data', () => process.exit(3));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    for (const until = Date.now() + 30_000; !out.includes('\n'); await sleep(20)) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`child did not report its cluster: ${err.slice(-1000)}`);
    }
    const info = JSON.parse(out) as { dir: string; pids: number[] };
    expect(livePids(info.pids)).toEqual(info.pids);
    if (end === 'SIGTERM') child.kill('SIGTERM');
    else child.stdin.write('go\n');
    await exited;
    return info;
  }

  it.each(['exit', 'SIGTERM'] as const)('leaves no member running and no temp dir (%s)', async (end) => {
    const { dir, pids } = await orphan(end);
    for (const until = Date.now() + 5_000; livePids(pids).length > 0 && Date.now() < until; ) await sleep(20);
    expect(livePids(pids)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('nothing is lost, checked by the harness at teardown', () => {
  it('fails teardown when a file under a data dir or the snapshot dir is deleted; accepts one moved aside', async () => {
    const cluster = await startCluster({ members: 1, name: 'guard' });
    const m = cluster.members[0]!;
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'guard-1.db'));
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'guard-2.db'));
    cluster.checkpointData();
    await cluster.stop(m.name);
    // Moved aside the product's way: fine. Deleted: not fine.
    renameSync(m.dataDir, `${m.dataDir}.pre-restore-20261206T120000Z`);
    rmSync(join(cluster.dir, 'snapshots', 'guard-2.db'));
    await expect(cluster.teardown()).rejects.toThrow(/nothing may be deleted: 1 path\(s\)[\s\S]*guard-2\.db/);
    expect(existsSync(cluster.dir)).toBe(false); // the sandbox is still cleaned up
  });

  it('fails teardown when a snapshot is truncated or overwritten in place, also in a moved-aside data dir', async () => {
    const cluster = await startCluster({ members: 1, name: 'guard' });
    const m = cluster.members[0]!;
    const cut = join(cluster.dir, 'snapshots', 'guard-cut.db');
    const same = join(cluster.dir, 'snapshots', 'guard-same.db');
    await cluster.snapshot(cut);
    await cluster.snapshot(same);
    await cluster.stop(m.name);
    writeFileSync(join(m.dataDir, 'member', 'keep.txt'), 'operator notes');
    cluster.checkpointData();
    corruptFile(cut, 'truncate-tail');
    corruptFile(same, 'flip-byte');
    renameSync(m.dataDir, `${m.dataDir}.pre-restore-20261206T120000Z`);
    writeFileSync(join(`${m.dataDir}.pre-restore-20261206T120000Z`, 'member', 'keep.txt'), 'operator NOTES');
    const err = await cluster.teardown().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^nothing may be altered: 3 file\(s\)/);
    expect(err?.message).toContain(`${cut}: `);
    expect(err?.message).toContain(`${same}: same size, content overwritten`);
    expect(err?.message).toMatch(/keep\.txt \(moved to .*\.pre-restore-20261206T120000Z\/member\/keep\.txt\): same size, content overwritten/);
  });
});

describe('every member runs the etcd version asked for', () => {
  it('a member started with another etcd binary fails waitHealthy, naming both versions', async () => {
    const { suiteEtcd, otherVersion, toolsBinDir } = await import('../support/etcd-versions.ts');
    const { startProcess } = await import('../../src/drivers/process.ts');
    const suite = suiteEtcd();
    const cluster = await startCluster({ members: 3 });
    clusters.push(cluster);
    // Every member reports the suite's version (checked by the harness; asserted here once more by hand).
    for (const m of cluster.members) expect(m.command[0]).toBe(join(suite.binDir, 'etcd'));
    expect((await cluster.client('m1').maintenance.status()).version).toBe(suite.version);
    // m3 restarted by something that resolves `etcd` elsewhere (a unit's bare `etcd`, another PATH over ssh).
    await cluster.stop('m3');
    const m3 = cluster.members.find((m) => m.name === 'm3')!;
    const other = otherVersion(suite.version);
    await startProcess({ type: 'process', command: [join(toolsBinDir(other), 'etcd'), ...m3.command.slice(1)], pidFile: m3.pidFile, logFile: m3.logFile });
    await expect(cluster.waitHealthy(20_000, { members: ['m1', 'm2', 'm3'] })).rejects.toThrow(new RegExp(`m3 reports etcd ${other.replace(/\./g, '\\.')}, expected ${suite.version.replace(/\./g, '\\.')}`));
  }, 90_000);

  it('refuses to start a cluster whose etcd is not the version asked for, saying how to fetch it', async () => {
    const { toolsBinDir } = await import('../support/etcd-versions.ts');
    await expect(startCluster({ etcdBinDir: toolsBinDir('3.5.16'), expectVersion: '3.5.30' })).rejects.toThrow(/is etcd 3\.5\.16, but etcd 3\.5\.30 was asked for.*scripts\/fetch-etcd\.sh 3\.5\.30/);
  });
});
