/**
 * Identical damaged clusters for the restore and replacement benchmarks: fill a 3-member cluster once with `size`
 * bytes of live keys (no history: the snapshot is then about `size`), take one snapshot with etcdctl into the
 * inventory's snapshot dir, stop it and keep its data dirs as a template. Before every trial the template is put
 * back, the members are started and waited for, and then the fault is injected for real:
 *   - power loss: SIGKILL every member, zero the first 16 KiB of every db (the bbolt meta pages: on etcd 3.5 the
 *     db is preallocated, so cutting the file short usually removes only empty space and does no damage);
 *   - dead member: SIGKILL one member and zero the first 16 KiB of its db.
 * Whatever a trial moved aside (`<dir>.pre-restore-*`, `.broken-*`, `.replaced-*`), the snapshots a runbook took
 * and the process driver's flag sidecars are bench scratch and removed before the next trial.
 *
 * The harness (test/support/etcd-cluster.ts) starts and kills the members; this file copies data dirs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { startCluster, type TestCluster } from '../../test/support/etcd-cluster.ts';

export interface DataCluster {
  cluster: TestCluster;
  sizeBytes: number;
  snapshot: string;
  snapshotBytes: number;
  fillMs: number;
  /** Put the template back, start every member, wait until healthy. */
  reset(): Promise<void>;
  /** SIGKILL every member and zero the first 16 KiB of every db. */
  powerLoss(): Promise<void>;
  /** SIGKILL one member and zero the first 16 KiB of its db. */
  killOne(name: string): Promise<void>;
  dbFile(member: string): string;
  /** The member's etcd command line as a NUL-separated file (what the recipes start). */
  argvFile(member: string): string;
  teardown(): Promise<void>;
}

const run = (file: string, args: string[]) => execFileSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
const MiB = 1024 * 1024;
export const DAMAGE_BYTES = 16 * 1024;

/** Zero the first 16 KiB of a file in place (both bbolt meta pages): etcd refuses it as an invalid database. */
export function zeroHead(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(DAMAGE_BYTES), 0, DAMAGE_BYTES, 0);
  } finally {
    closeSync(fd);
  }
}

async function fillLive(cluster: TestCluster, bytes: number): Promise<void> {
  const valueBytes = 64 * 1024;
  const n = Math.ceil(bytes / valueBytes);
  const clients = cluster.members.map((m) => cluster.client(m.name));
  const value = randomBytes(valueBytes); // incompressible, as in the NOSPACE fill
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async (_, w) => {
    const c = clients[w % clients.length]!;
    for (let i = next++; i < n; i = next++) await c.put(`bench/data/${String(i).padStart(7, '0')}`).value(value).exec();
  }));
  for (const c of clients) c.close();
}

export async function prepareDataCluster(sizeBytes: number, name: string, tls: boolean): Promise<DataCluster> {
  const cluster = await startCluster({
    quotaBytes: Math.min(8 * 1024 * MiB, 2 * sizeBytes + 512 * MiB),
    name,
    startTimeoutMs: 60_000,
    tls,
    guardData: { off: 'bench scratch copies, replaced from the template before every trial' },
  });
  try {
    const t0 = performance.now();
    await fillLive(cluster, sizeBytes);
    const fillMs = Math.round(performance.now() - t0);
    const snapDir = join(cluster.dir, 'snapshots');
    mkdirSync(snapDir, { recursive: true });
    const snapshot = join(snapDir, `${name}-bench.db`);
    await cluster.snapshot(snapshot);
    const templateDir = join(cluster.dir, 'template');
    mkdirSync(templateDir);
    const stopAll = async () => {
      for (const m of cluster.members) if (cluster.pid(m.name) !== undefined) await cluster.stop(m.name);
    };
    await stopAll();
    for (const m of cluster.members) {
      run('cp', ['-a', m.dataDir, join(templateDir, `${m.name}.etcd`)]);
      writeFileSync(join(cluster.dir, `${m.name}.argv`), `${m.command.join('\0')}\0`);
    }
    run('sync', []);
    const member = (n: string) => cluster.members.find((m) => m.name === n)!;
    const dbFile = (n: string) => join(member(n).dataDir, 'member', 'snap', 'db');
    const scrub = () => {
      for (const m of cluster.members) {
        // Bench-owned scratch (a trial's moved-aside dirs, the template copy in place): removed outright.
        const base = basename(m.dataDir);
        for (const e of readdirSync(dirname(m.dataDir))) {
          if (e === base || e.startsWith(`${base}.`)) rmSync(join(dirname(m.dataDir), e), { recursive: true, force: true });
        }
        rmSync(`${m.pidFile}.argv.json`, { force: true }); // the process driver's flag sidecar (start-replacement)
      }
      for (const e of readdirSync(snapDir)) if (e !== basename(snapshot)) rmSync(join(snapDir, e), { recursive: true, force: true });
    };
    const reset = async () => {
      await stopAll();
      scrub();
      for (const m of cluster.members) run('cp', ['-a', join(templateDir, `${m.name}.etcd`), m.dataDir]);
      run('sync', []);
      await Promise.all(cluster.members.map((m) => cluster.start(m.name)));
      await cluster.waitHealthy(120_000);
    };
    return {
      cluster,
      sizeBytes,
      snapshot,
      snapshotBytes: Number(execFileSync('stat', ['-c', '%s', snapshot], { encoding: 'utf8' }).trim()),
      fillMs,
      reset,
      async powerLoss() {
        for (const m of cluster.members) await cluster.kill(m.name);
        for (const m of cluster.members) zeroHead(dbFile(m.name));
        run('sync', []);
      },
      async killOne(n: string) {
        await cluster.kill(n);
        zeroHead(dbFile(n));
        run('sync', []);
      },
      dbFile,
      argvFile: (n) => join(cluster.dir, `${n}.argv`),
      teardown: () => cluster.teardown(),
    };
  } catch (err) {
    await cluster.teardown().catch(() => {});
    throw err;
  }
}
