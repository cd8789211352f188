/**
 * A cluster's lock in the management etcd: one key per lockKeys() of its identity, all taken in one txn and
 * attached to a lease kept alive while the run goes on. When the lease is lost (this runner froze or was cut off
 * past its TTL) the lock says so; another runner may then take it, and the fenced journal (etcd-journal.ts) stops
 * this one from writing.
 */
import os from 'node:os';
import type { Etcd3, Lease } from 'etcd3';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import { ExitCode, UserError, messageOf } from '../util/errors.ts';
import { storeError } from './etcd-errors.ts';
import { keys } from './etcd-keys.ts';
import { lockKeys } from './machine-lock.ts';
import type { LockHolderInfo, StoreLock } from './types.ts';

/** What the lock needs of the store. */
export interface EtcdStoreHandle {
  readonly client: Etcd3;
  readonly description: string;
  readonly leaseTtlSeconds: number;
}

/** A held etcd lock: its first key and that key's create revision, which every fenced write compares with. */
export interface EtcdLock extends StoreLock {
  lockKey: string;
  createRevision: string;
}

export async function takeEtcdLock(
  store: EtcdStoreHandle,
  identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>,
  runId: string,
  opts: { breakLock?: boolean; owner?: string; label?: string },
): Promise<EtcdLock> {
  const { client } = store;
  const lockNames = lockKeys(identity);
  if (!lockNames.length) throw new UserError('cannot lock a cluster with no member addresses');
  const etcdKeys = lockNames.map(keys.lock);
  const label = opts.label ? `cluster "${opts.label}"` : 'this cluster';
  const me: LockHolderInfo = {
    runId, pid: process.pid, host: os.hostname(), since: new Date().toISOString(),
    command: process.argv.slice(2).join(' ').slice(0, 300), ...(opts.owner ? { owner: opts.owner } : {}),
  };
  const lease: Lease = client.lease(store.leaseTtlSeconds, { autoKeepAlive: true });
  let leaseId: string;
  try {
    leaseId = await lease.grant();
  } catch (err) {
    lease.release();
    throw storeError('grant lease', err);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      // Every key or none, in one txn: a run that reached the cluster under another spelling shares one of them.
      let txn = client.if(etcdKeys[0]!, 'Create', '==', 0);
      for (const k of etcdKeys.slice(1)) txn = txn.and(k, 'Create', '==', 0);
      const r = await txn
        .then(...etcdKeys.map((k) => client.put(k).value(JSON.stringify(me)).lease(leaseId)))
        .else(...etcdKeys.map((k) => client.get(k)))
        .commit();
      if (r.succeeded) return heldLock(store, etcdKeys[0]!, lockNames.join(','), r.header.revision, lease);
      const held = r.responses.map((x) => x.response_range?.kvs[0]).filter((kv) => kv !== undefined);
      if (!held.length) continue; // released between the compare and the read: try again
      let holder: LockHolderInfo | undefined;
      try { holder = JSON.parse(held[0]!.value.toString()) as LockHolderInfo; } catch { holder = undefined; }
      if (opts.breakLock) {
        for (const kv of held) await client.if(kv.key.toString(), 'Create', '==', kv.create_revision).then(client.delete().key(kv.key.toString())).commit();
        continue;
      }
      throw new UserError(
        `${label} is locked by run ${holder?.runId ?? '?'} (pid ${holder?.pid ?? '?'} on ${holder?.host ?? '?'}${holder?.owner ? `, ${holder.owner}` : ''}, since ${holder?.since ?? '?'}) in the ${store.description}.\n` +
          `  Only one run may recover a cluster at a time; the lock expires ${store.leaseTtlSeconds}s after its holder stops.`,
        { exitCode: ExitCode.locked },
      );
    }
    throw new UserError(`could not take the lock for ${label} in the ${store.description}: another runner keeps taking it`, { exitCode: ExitCode.locked });
  } catch (err) {
    await lease.revoke().catch(() => lease.release());
    throw err instanceof UserError ? err : storeError('take the cluster lock', err);
  }
}

function heldLock(store: EtcdStoreHandle, lockKey: string, ck: string, createRevision: string, lease: Lease): EtcdLock {
  const listeners: ((why: string) => void)[] = [];
  let released = false;
  const lock: EtcdLock = {
    key: ck,
    lockKey,
    createRevision,
    onLost(listener) {
      if (lock.lost) listener(lock.lost);
      else listeners.push(listener);
    },
    async release() {
      if (released) return;
      released = true;
      // Revoking the lease deletes our key only: a lock taken over by another runner has its own lease.
      await lease.revoke().catch(() => lease.release());
    },
  };
  lease.on('lost', (err: unknown) => {
    if (released || lock.lost) return;
    lock.lost = `the lock's lease in the ${store.description} expired (${messageOf(err).split('\n')[0]})`;
    for (const l of listeners.splice(0)) l(lock.lost);
  });
  return lock;
}
