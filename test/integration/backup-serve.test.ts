/**
 * Backup streams inside `runbook serve` (a cluster's `backup:` entry in chatops.yaml) against a real 3-member
 * cluster, with two replicas of the server:
 *   - without a store (machine-wide lock files): only the replica holding the cluster's stream lock streams; the
 *     other stands by and takes over when the first stops, continuing the same chain without a gap; the lag is on
 *     /metrics (runbook_backup_lag_seconds{cluster}) and in diagnose's findings;
 *   - with a management etcd (`--store`): when the holder's lease is revoked and another replica takes the lock,
 *     the first stops writing at once (nothing in the backup dir changes while the other holds it), and streams
 *     again, from where it stopped, once it gets the lock back.
 * The servers run in this process (two replicas = two servers), on loopback ports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { catalog } from '../../src/backup/chain.ts';
import { backupFindings } from '../../src/backup/diagnose-findings.ts';
import { listSegments } from '../../src/backup/segments.ts';
import { streamIdentity } from '../../src/backup/serve-streams.ts';
import { readLog, readStatus } from '../../src/backup/status.ts';
import { loadChatopsConfig } from '../../src/chatops/config.ts';
import { startChatopsServer, type ChatopsServer } from '../../src/chatops/server.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { poll } from '../support/backup-workload.ts';

let dir = '';
const clusters: TestCluster[] = [];
const servers: ChatopsServer[] = [];
const stores: EtcdStore[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const s of stores.splice(0)) await s.close();
  for (const c of clusters.splice(0)) await c.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function configFile(inventory: string): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-serve-backup-'));
  const file = path.join(dir, 'chatops.yaml');
  fs.writeFileSync(file, `
stateDir: ./state
clusters:
  prod:
    inventory: ${inventory}
    backup:
      fsyncInterval: 200ms
      standbyRetry: 300ms
runbooks: {}
`);
  return file;
}

async function metric(s: ChatopsServer, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{cluster="prod"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

async function replica(file: string, id: string, store?: EtcdStore): Promise<ChatopsServer> {
  const s = await startChatopsServer({
    config: loadChatopsConfig(file), secrets: {}, listen: { host: '127.0.0.1', port: 0 }, replicaId: id, log: () => {},
    auditFile: path.join(dir, `audit-${id}.jsonl`), ...(store ? { store } : {}),
  });
  servers.push(s);
  return s;
}

describe('backup streams inside runbook serve', () => {
  it('one replica streams, the other stands by and takes over without a gap; lag on /metrics and in diagnose', async () => {
    const c = await startCluster({ name: 'srvbk' });
    clusters.push(c);
    const inv = c.writeInventory();
    const backupDir = path.join(c.dir, 'snapshots');
    const file = configFile(inv);
    const put = async (k: string) => Number((await c.client(c.members[0]!.name).put(k).value('v').exec()).header.revision);

    const a = await replica(file, 'A');
    await poll('A to stream', async () => ((await metric(a, 'runbook_backup_streaming')) === 1 ? true : undefined));
    const b = await replica(file, 'B');
    await poll('B to stand by', async () => ((await metric(b, 'runbook_backup_streaming')) === 0 ? true : undefined));
    const r1 = await put('/one');
    await poll(`the stream to hold revision ${r1}`, () => ((readStatus(backupDir)?.durableRevision ?? 0) >= r1 ? true : undefined));
    const lag = await poll('a lag on A\'s /metrics', () => metric(a, 'runbook_backup_lag_seconds'));
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(await metric(b, 'runbook_backup_lag_seconds')).toBeUndefined(); // B does not stream: no series
    expect(await metric(a, 'runbook_backup_streaming')).toBe(1);
    // diagnose reads the same status file
    expect(backupFindings(c.inventory()).map((f) => f.code)).toContain('backup-lag');

    await a.close();
    servers.splice(servers.indexOf(a), 1);
    await poll('B to take over', async () => ((await metric(b, 'runbook_backup_streaming')) === 1 ? true : undefined), 30_000);
    const r2 = await put('/two');
    await poll(`B's stream to hold revision ${r2}`, () => ((readStatus(backupDir)?.durableRevision ?? 0) >= r2 ? true : undefined), 30_000);
    await b.close();
    servers.splice(servers.indexOf(b), 1);
    // One chain, no gap: B continued where A stopped.
    const cat = await catalog([backupDir], c.inventory().name, { verify: true });
    expect(readLog(backupDir).filter((e) => e.kind === 'gap')).toEqual([]);
    expect(cat.runs.length).toBe(1);
    expect(cat.runs[0]!.to).toBeGreaterThanOrEqual(r2);
  }, 120_000);

  it('with a management etcd: a replica that loses its stream lock stops writing, and resumes once it has it again', async () => {
    const mgmt = await startCluster({ members: 1, name: 'mgmt' });
    clusters.push(mgmt);
    const c = await startCluster({ name: 'srvbk2' });
    clusters.push(c);
    const inv = c.writeInventory();
    const backupDir = path.join(c.dir, 'snapshots');
    const file = configFile(inv);
    const storeUrl = `etcd://${mgmt.endpoints[0]!.replace(/^https?:\/\//, '')}`;
    const storeA = new EtcdStore({ url: storeUrl, leaseTtlSeconds: 3 });
    const thief = new EtcdStore({ url: storeUrl, leaseTtlSeconds: 3 });
    stores.push(storeA, thief);
    const put = async (k: string) => Number((await c.client(c.members[0]!.name).put(k).value('v').exec()).header.revision);

    const a = await replica(file, 'A', storeA);
    await poll('A to stream', async () => ((await metric(a, 'runbook_backup_streaming')) === 1 ? true : undefined));
    const r1 = await put('/one');
    await poll(`the stream to hold revision ${r1}`, () => ((readStatus(backupDir)?.durableRevision ?? 0) >= r1 ? true : undefined));

    // Another replica's view: A's lease is gone (revoked here; a frozen A would see it expire) and the lock taken.
    const admin = mgmt.client(mgmt.members[0]!.name);
    const lockKvs = await admin.getAll().prefix('/runbook/v1/locks/').exec();
    const leases = [...new Set(lockKvs.kvs.filter((kv) => kv.value.toString().includes('backup-stream:prod')).map((kv) => kv.lease))];
    expect(leases.length).toBe(1);
    await admin.leaseClient.leaseRevoke({ ID: leases[0]! });
    const stolen = await thief.acquireLock(await streamIdentity(c.inventory()), 'backup-stream:prod', { owner: 'thief' });
    await poll('A to notice it lost the lock', async () => ((await metric(a, 'runbook_backup_streaming')) === 0 ? true : undefined), 30_000);
    const audit = fs.readFileSync(path.join(dir, 'audit-A.jsonl'), 'utf8');
    expect(audit).toContain('backup.lock-lost');
    // Not even its last words: the open segment is left open (not sealed) and the status not rewritten as stopped;
    // the next holder recovers both.
    expect(listSegments(backupDir, c.inventory().name).filter((s) => s.state === 'open').length).toBe(1);
    expect(readStatus(backupDir)!.state).not.toBe('stopped');

    // While the lock is held elsewhere, A writes nothing: the backup dir stays exactly as it is, through writes
    // to the cluster, for 2 s (10 of its fsync intervals).
    const listing = () => {
      const out: Record<string, number> = {};
      const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else out[p] = fs.statSync(p).size;
        }
      };
      walk(backupDir);
      return out;
    };
    const before = listing();
    const statusBefore = fs.readFileSync(path.join(backupDir, 'deltas', 'stream-status.json'), 'utf8');
    const r2 = await put('/while-fenced');
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      expect(listing()).toEqual(before);
      expect(fs.readFileSync(path.join(backupDir, 'deltas', 'stream-status.json'), 'utf8')).toBe(statusBefore);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // The other replica lets go: A takes the lock again and carries on from where it stopped, the fenced write included.
    await stolen.release();
    await poll('A to stream again', async () => ((await metric(a, 'runbook_backup_streaming')) === 1 ? true : undefined), 30_000);
    await poll(`the stream to hold revision ${r2}`, () => ((readStatus(backupDir)?.durableRevision ?? 0) >= r2 ? true : undefined), 30_000);
    await a.close();
    servers.splice(servers.indexOf(a), 1);
    const cat = await catalog([backupDir], c.inventory().name, { verify: true });
    expect(readLog(backupDir).filter((e) => e.kind === 'gap')).toEqual([]);
    expect(cat.runs.length).toBe(1);
    expect(cat.runs[0]!.to).toBeGreaterThanOrEqual(r2);
  }, 150_000);
});
