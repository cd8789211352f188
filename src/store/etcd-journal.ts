/**
 * A run's journal in the management etcd, fenced by the run's lock: every record (and the machine snapshot) is
 * written by a txn that compares the lock key's create revision with the one this runner got when it took the lock.
 * A runner whose lease expired (frozen, partitioned) and whose lock was taken over cannot write any more: its
 * `flush()` rejects and the step it was about to run is not run.
 */
import type { JournalRecord, RunEvent } from '../events/types.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { fencingError } from './etcd-errors.ts';
import { keys } from './etcd-keys.ts';
import type { EtcdLock, EtcdStoreHandle } from './etcd-lock.ts';
import { failpointHook, parseFailpoint } from './journal.ts';
import type { LockHolderInfo, StoreJournalWriter } from './types.ts';

/** What the fenced writer needs of the store: its client, and the set `fenceAll` stops. */
export interface FencedJournalStore extends EtcdStoreHandle {
  readonly writers: Set<(why: string) => void>;
}

/**
 * A journal writer whose appends are queued in order and written by fenced txns. `append` stays synchronous
 * (the engine's contract); `flush()` tells whether everything so far is durable.
 */
export function fencedJournal(store: FencedJournalStore, runId: string, existing: JournalRecord[], lock: EtcdLock | undefined): StoreJournalWriter {
  const client = store.client;
  const records = [...existing];
  let seq = records.length ? records[records.length - 1]!.seq : 0;
  let chain: Promise<void> = Promise.resolve();
  let failure: StepError | undefined;
  let closed = false;
  lock?.onLost((why) => { failure ??= fencingError(why); });
  const fence = (why: string) => { failure ??= new StepError('cancelled', why); };
  store.writers.add(fence);
  // RUNBOOK_FAILPOINT (crash tests): SIGKILL just before / after a record is written to the store
  const failpoint = failpointHook(parseFailpoint(process.env.RUNBOOK_FAILPOINT));

  const put = async (key: string, value: string, mustBeNew: boolean, rec?: JournalRecord): Promise<void> => {
    if (failure) return;
    if (rec) failpoint('before', rec);
    if (!lock) {
      failure = fencingError('no lock is held for this run');
      return;
    }
    const until = Date.now() + store.leaseTtlSeconds * 1000;
    for (let attempt = 0; ; attempt++) {
      try {
        let txn = client.if(lock.lockKey, 'Create', '==', lock.createRevision);
        if (mustBeNew) txn = txn.and(key, 'Create', '==', 0);
        const r = await txn.then(client.put(key).value(value)).commit();
        if (r.succeeded) {
          if (rec) failpoint('after', rec);
          return;
        }
        // Why not? The lock changed hands (fenced), or a retried put had already landed.
        const [lockKv, cur] = await Promise.all([client.get(lock.lockKey).exec(), client.get(key).string()]);
        const now = lockKv.kvs[0];
        if (!now || now.create_revision !== lock.createRevision) {
          let holder = '';
          try {
            const h = now ? (JSON.parse(now.value.toString()) as LockHolderInfo) : undefined;
            holder = h ? `now held by run ${h.runId}, pid ${h.pid} on ${h.host}${h.owner ? ` (${h.owner})` : ''}` : 'now free';
          } catch { holder = 'now held by another runner'; }
          failure = fencingError(`the lock key is ${holder}`);
          return;
        }
        if (cur === value) return;
        failure = fencingError(`${key} was written by another runner`);
        return;
      } catch (err) {
        if (Date.now() >= until || attempt >= 10) {
          failure = fencingError(`cannot write to the ${store.description}: ${shortGrpcMessage(err)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
      }
    }
  };
  const enqueue = (key: string, value: string, mustBeNew: boolean, rec?: JournalRecord) => {
    chain = chain.then(() => put(key, value, mustBeNew, rec)).catch((err: unknown) => { failure ??= fencingError(messageOf(err)); });
  };

  return {
    records,
    location: `${store.description} (run ${runId})`,
    append(event: RunEvent): JournalRecord {
      if (closed) throw new Error('journal is closed');
      const rec = { seq: ++seq, ts: new Date().toISOString(), runId, ...event } as JournalRecord;
      records.push(rec);
      enqueue(keys.record(runId, rec.seq), JSON.stringify(rec), true, rec);
      return rec;
    },
    saveSnapshot(data: string) {
      if (!closed) enqueue(keys.snapshot(runId), data, false);
    },
    flush(): Promise<void> {
      return chain.then(() => {
        if (failure) throw failure;
      });
    },
    close() {
      closed = true;
      store.writers.delete(fence);
    },
  };
}
