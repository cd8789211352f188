/**
 * Fill a cluster to NOSPACE with heavy overwrite history: a live set of `liveFraction × quota` bytes (keys of
 * `valueBytes`) overwritten round-robin, many puts in flight, until etcd answers NOSPACE and raises the alarm.
 * After compaction the in-use size is about the live set, so a defrag has real work to do (copy the live set)
 * and a lot to reclaim (the history).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GRPCResourceExhastedError } from 'etcd3';
import type { TestCluster } from '../../test/support/etcd-cluster.ts';

export interface FillOptions {
  valueBytes?: number;
  liveFraction?: number;
  concurrency?: number;
  /** Small keys written before the fill (the availability load reads them). */
  probeKeys?: string[];
}

export interface FillResult {
  puts: number;
  liveKeys: number;
  ms: number;
}

export async function fillWithHistory(cluster: TestCluster, opts: FillOptions = {}): Promise<FillResult> {
  const valueBytes = opts.valueBytes ?? 64 * 1024;
  const liveKeys = Math.max(4, Math.floor((cluster.quotaBytes * (opts.liveFraction ?? 0.25)) / valueBytes));
  const concurrency = opts.concurrency ?? 16;
  const t0 = performance.now();
  // Write through every member (followers forward to the leader): spreads the client-side work.
  const clients = cluster.members.map((m) => cluster.client(m.name));
  for (const key of opts.probeKeys ?? []) await clients[0]!.put(key).value('probe').exec();
  // Incompressible values: etcd does not compress, but the page cache and disk do not care either way; random
  // bytes keep the numbers honest should that ever change.
  const value = randomBytes(valueBytes);
  const maxPuts = Math.ceil((cluster.quotaBytes * 4) / valueBytes) + 1024;
  let next = 0;
  let puts = 0;
  let nospace = false;
  let failure: Error | undefined;
  const worker = async (w: number) => {
    const c = clients[w % clients.length]!;
    while (!nospace && !failure) {
      const i = next++;
      if (i >= maxPuts) {
        failure = new Error(`fill: no NOSPACE after ${i} puts of ${valueBytes} bytes (quota ${cluster.quotaBytes})`);
        return;
      }
      // The etcd3 library closes a host's channel after an error it deems recoverable (NOSPACE is one), which
      // fails the other puts queued on it with "Channel closed before call started": those are retried, a few
      // times at most.
      for (let attempt = 1; ; attempt++) {
        try {
          await c.put(`bench/fill/${String(i % liveKeys).padStart(6, '0')}`).value(value).exec();
          puts++;
        } catch (err) {
          if (err instanceof GRPCResourceExhastedError) nospace = true;
          else if (attempt < 5 && /Channel closed before call started/.test((err as Error).message)) continue;
          else failure = new Error(`fill: put ${i} failed: ${(err as Error).message}`, { cause: err });
        }
        break;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  for (const c of clients) c.close();
  if (failure) throw failure;
  for (const until = Date.now() + 10_000; ; await sleep(100)) {
    if ((await cluster.alarms()).some((a) => a.alarm === 'NOSPACE')) break;
    if (Date.now() > until) throw new Error('fill: puts fail with NOSPACE but no NOSPACE alarm is listed');
  }
  return { puts, liveKeys, ms: Math.round(performance.now() - t0) };
}
