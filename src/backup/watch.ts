/**
 * One watch of the whole keyspace on ONE member (its own single-host client: ETCD-NOTES), from a start revision,
 * with prev_kv, delivered as whole revisions, on a stream that requires a leader (`hasleader` metadata: a member
 * partitioned from the leader ends the watch with "no leader" rather than answering progress requests from its
 * stale state, which would look caught up while the cluster moves on). The raw gRPC Watch stream is used rather than etcd3's Watcher:
 * that one reconnects by itself to whichever host, hides compaction behind an 'error' event, and cannot be
 * paused. Here the caller decides where to reconnect (another member) and from which revision, and the stream is
 * paused while the consumer is behind, so memory stays bounded whatever the write rate (gRPC flow control then
 * holds the member back).
 *
 * etcd never splits one revision's events across watch responses (fragment is off), so each response is cut into
 * revisions and each revision handed over whole. Every `progressEveryMs` a progress request is sent: its answer
 * (a response without events) carries the member's revision and comes after every event up to it, which tells
 * the consumer it is caught up; no answer for `idleMs` means the member is gone (frozen, partitioned), and the
 * watch ends so the caller can move to another member.
 */
import type { Duplex } from 'node:stream';
import type { IWatchResponse } from 'etcd3';
import type { EtcdClient } from '../etcd/client.ts';
import { messageOf } from '../util/errors.ts';
import type { DeltaEvent } from './record.ts';

export interface RevisionBatch {
  revision: number;
  events: DeltaEvent[];
  /** Lease ids referenced by puts in this revision. */
  leases: string[];
}

export type WatchEnd =
  | { kind: 'compacted'; compactRevision: number }
  | { kind: 'lost'; reason: string }
  | { kind: 'stopped' };

export interface WatchHandlers {
  /** One whole revision; the returned promise must settle before the next is handed over. */
  onRevision(batch: RevisionBatch): Promise<void> | void;
  /** Everything up to `revision` has been handed over. */
  onProgress(revision: number): void;
}

export interface WatchOptions {
  startRevision: number;
  progressEveryMs: number;
  idleMs: number;
  /** Responses queued before the stream is paused. */
  maxQueued?: number;
  signal?: AbortSignal;
}

function toEvents(res: IWatchResponse): RevisionBatch[] {
  const out: RevisionBatch[] = [];
  for (const ev of res.events) {
    const revision = Number(ev.kv.mod_revision);
    let cur = out.at(-1);
    if (!cur || cur.revision !== revision) {
      cur = { revision, events: [], leases: [] };
      out.push(cur);
    }
    if (ev.type === 'Delete') {
      cur.events.push({ type: 'delete', key: ev.kv.key, ...(ev.prev_kv ? { prevValue: ev.prev_kv.value } : {}) });
    } else {
      const lease = ev.kv.lease && ev.kv.lease !== '0' ? String(ev.kv.lease) : undefined;
      cur.events.push({ type: 'put', key: ev.kv.key, value: ev.kv.value, ...(lease ? { lease } : {}) });
      if (lease && !cur.leases.includes(lease)) cur.leases.push(lease);
    }
  }
  return out;
}

/** Watch until the member is lost, the start revision is compacted, or the signal stops it. Never throws for the member's failures. */
export async function watchKeyspace(client: EtcdClient, o: WatchOptions, h: WatchHandlers): Promise<WatchEnd> {
  // grpc-js hands back a Node Duplex (plus cancel()). hasleader: a member cut off from the leader ends the stream
  // ("no leader") instead of feeding a silent one; the caller then moves to another member.
  let stream: Duplex & { cancel(): void };
  try {
    stream = (await client.watchRequiringLeader()) as typeof stream;
  } catch (err) {
    return { kind: 'lost', reason: messageOf(err) };
  }
  return new Promise<WatchEnd>((resolve) => {
    const queue: IWatchResponse[] = [];
    const maxQueued = o.maxQueued ?? 16;
    let draining = false;
    let ended = false;
    let lastHeard = Date.now();
    let created = false;

    const finish = (end: WatchEnd) => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      o.signal?.removeEventListener('abort', onAbort);
      try {
        stream.cancel();
      } catch {
        // already closed
      }
      resolve(end);
    };
    const onAbort = () => finish({ kind: 'stopped' });
    o.signal?.addEventListener('abort', onAbort, { once: true });

    const drain = async () => {
      if (draining) return;
      draining = true;
      try {
        while (queue.length && !ended) {
          const res = queue.shift()!;
          if (queue.length < maxQueued / 2 && stream.isPaused()) stream.resume();
          if (res.compact_revision && res.compact_revision !== '0') {
            finish({ kind: 'compacted', compactRevision: Number(res.compact_revision) });
            return;
          }
          if (res.canceled) {
            finish({ kind: 'lost', reason: `the member cancelled the watch${res.cancel_reason ? `: ${res.cancel_reason}` : ''}` });
            return;
          }
          if (res.created) created = true;
          if (res.events.length) {
            for (const batch of toEvents(res)) await h.onRevision(batch);
          } else if (!res.created) {
            h.onProgress(Number(res.header.revision));
          }
        }
      } catch (err) {
        finish({ kind: 'lost', reason: `writing the backup failed: ${messageOf(err)}` });
      } finally {
        draining = false;
      }
    };

    stream.on('data', (res: IWatchResponse) => {
      lastHeard = Date.now();
      queue.push(res);
      if (queue.length >= maxQueued) stream.pause();
      void drain();
    });
    stream.on('error', (err: Error) => finish({ kind: 'lost', reason: messageOf(err) }));
    stream.on('end', () => finish({ kind: 'lost', reason: 'the member closed the watch stream' }));

    const timer = setInterval(() => {
      if (ended) return;
      if (Date.now() - lastHeard > o.idleMs && !draining && queue.length === 0) {
        finish({ kind: 'lost', reason: `no answer from the member for ${o.idleMs} ms` });
        return;
      }
      // A progress request only makes sense once the watch exists; before, silence is the connect time.
      if (created && queue.length === 0) stream.write({ progress_request: {} });
    }, o.progressEveryMs);

    stream.write({
      create_request: {
        key: Buffer.from([0]),
        range_end: Buffer.from([0]),
        start_revision: String(o.startRevision),
        prev_kv: true,
        progress_notify: true,
      },
    });
  });
}
