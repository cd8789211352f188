/**
 * A throwaway single etcd member on loopback ports no client knows (free ports from the port range, never the
 * cluster's), started from a snapshot restored WITHOUT a revision bump, so the replayed revisions get exactly
 * the numbers they had in the cluster. Its data dir is our own scratch space under the run's state dir; the
 * process is ours, stopped by its pid.
 *
 * Limits are raised for the replay, and fsync is off where etcd offers that (see below): one original revision can hold more operations than --max-txn-ops allows
 * by default (a lease expiry deletes every key of the lease in one revision), and a replayed revision must never
 * fail on the scratch member's quota.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentRevision } from '../etcd/kv.ts';
import { EtcdPool } from '../etcd/pool.ts';
import { localHost } from '../hosts/local.ts';
import type { Inventory } from '../inventory/types.ts';
import { freePorts } from '../rehearse/ports.ts';
import { binPath, toolEnv, type RestoreTool } from '../snapshot/etcd-tools.ts';
import { StepError, messageOf } from '../util/errors.ts';

export interface ScratchMember {
  endpoint: string;
  inventory: Inventory;
  pool: EtcdPool;
  dataDir: string;
  logFile: string;
  stop(): Promise<void>;
}

const NAME = 'runbook-pitr';

export async function startScratchMember(o: {
  snapshot: string;
  workDir: string;
  tool: RestoreTool;
  /** The real cluster's inventory: its name, auth and etcd binaries are reused (the snapshot keeps its users). */
  inventory: Inventory;
  signal?: AbortSignal;
}): Promise<ScratchMember> {
  mkdirSync(o.workDir, { recursive: true });
  const dataDir = join(o.workDir, 'data');
  if (existsSync(dataDir)) throw new StepError('failed', `${dataDir} exists: a scratch dir is never reused`);
  // Never a port of the cluster's own members: one that is stopped right now (a power loss, a restore) is free,
  // and would find its port taken when it starts again.
  const theirs = new Set(o.inventory.members.flatMap((m) => [m.clientURL, m.peerURL, ...(m.metricsURL ? [m.metricsURL] : [])]).map((u) => Number(new URL(u).port)).filter((n) => n > 0));
  let ports: number[] = [];
  for (let tries = 0; tries < 20; tries++) {
    ports = (await freePorts(2)).filter((p) => !theirs.has(p));
    if (ports.length === 2) break;
  }
  if (ports.length !== 2) throw new StepError('failed', 'no two free loopback ports apart from the cluster\'s own for the scratch member');
  const [clientPort, peerPort] = ports as [number, number];
  const clientURL = `http://127.0.0.1:${clientPort}`;
  const peerURL = `http://127.0.0.1:${peerPort}`;
  const r = await localHost.run(
    [o.tool.path, 'snapshot', 'restore', o.snapshot, '--data-dir', dataDir, '--name', NAME, '--initial-advertise-peer-urls', peerURL, '--initial-cluster', `${NAME}=${peerURL}`, '--initial-cluster-token', NAME],
    { env: toolEnv(), dropEnvPrefix: 'ETCDCTL_', timeoutMs: 60 * 60_000, ...(o.signal ? { signal: o.signal } : {}) },
  );
  if (r.exitCode !== 0) throw new StepError('failed', `restoring ${o.snapshot} into the scratch member failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').at(-1)?.slice(0, 300) ?? ''}`);

  // The scratch member's data is throwaway (the result is snapshotted and verified): where etcd offers it (3.5+),
  // fsync is turned off, which is most of the cost of one transaction per replayed revision.
  const etcdBin = binPath(o.inventory.etcdBinDir, 'etcd');
  const help = await localHost.run([etcdBin, '--help'], { timeoutMs: 30_000, ...(o.signal ? { signal: o.signal } : {}) });
  const noFsync = `${help.stdout}${help.stderr}`.includes('--unsafe-no-fsync') ? ['--unsafe-no-fsync'] : [];
  const logFile = join(o.workDir, 'etcd.log');
  const fd = openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(
      etcdBin,
      [
        '--name', NAME, '--data-dir', dataDir,
        '--listen-client-urls', clientURL, '--advertise-client-urls', clientURL,
        '--listen-peer-urls', peerURL, '--initial-advertise-peer-urls', peerURL,
        '--initial-cluster', `${NAME}=${peerURL}`,
        '--max-txn-ops', '1000000', '--max-request-bytes', String(32 * 1024 * 1024),
        '--quota-backend-bytes', String(8 * 1024 ** 3),
        ...noFsync,
      ],
      { stdio: ['ignore', fd, fd], env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_'))) },
    );
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const inventory: Inventory = {
    name: o.inventory.name,
    source: 'scratch member (point-in-time restore)',
    members: [{ name: NAME, clientURL, peerURL, dataDir, driver: { type: 'none' } }],
    ...(o.inventory.auth ? { auth: o.inventory.auth } : {}),
    ...(o.inventory.etcdBinDir ? { etcdBinDir: o.inventory.etcdBinDir } : {}),
    requestTimeoutMs: 30_000,
  };
  const pool = new EtcdPool(inventory);
  const stop = async () => {
    pool.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
  };
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new StepError('failed', `the scratch etcd exited (code ${child.exitCode}) before answering; see ${logFile}`);
    }
    try {
      await currentRevision(pool, NAME, { timeoutMs: 2000 });
      break;
    } catch (err) {
      if (Date.now() > until || o.signal?.aborted) {
        await stop();
        throw new StepError(o.signal?.aborted ? 'cancelled' : 'failed', `the scratch etcd did not answer within 60 s: ${messageOf(err)}; see ${logFile}`);
      }
      await sleep(200);
    }
  }
  return { endpoint: clientURL, inventory, pool, dataDir, logFile, stop };
}
