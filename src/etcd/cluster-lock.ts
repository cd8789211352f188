/**
 * The machine-wide run lock of the cluster an inventory reaches, for anything that is not a run of the executor
 * (the guard): reads the cluster's identity, then takes the same lock every run takes (src/store/machine-lock.ts).
 */
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import { acquireLock, lockHolder, type HeldLock, type LockHolder, type LockOptions } from '../store/machine-lock.ts';
import type { Inventory } from '../inventory/types.ts';
import { readClusterIdentity } from './identity.ts';

/**
 * Take the lock of the cluster `inventory` reaches (throws UserError, exit 4, naming the holder when it is held).
 *
 * @example
 *   const { lock, identity } = await acquireClusterLock(inventory, 'guard-prod-1', { label: inventory.name });
 *   try { … act on identity.clusterId … } finally { lock.release(); }
 */
export async function acquireClusterLock(
  inventory: Inventory,
  holderId: string,
  opts: LockOptions & { signal?: AbortSignal } = {},
): Promise<{ lock: HeldLock; identity: ClusterIdentity }> {
  const identity = await readClusterIdentity(inventory, opts.signal ? { signal: opts.signal } : {});
  const { signal: _signal, ...lockOpts } = opts;
  return { lock: acquireLock(identity, holderId, { label: inventory.name, ...lockOpts }), identity };
}

/** Who holds the lock of the cluster `inventory` reaches, if a live run does. */
export async function clusterLockHolder(inventory: Inventory): Promise<LockHolder | undefined> {
  return lockHolder(await readClusterIdentity(inventory));
}
