/**
 * Replay delta records into the scratch member: one transaction per original revision (so a transaction of the
 * cluster is applied whole or not at all), and after each one the member's revision must be exactly the record's
 * revision, or the replay stops: a divergence is an error, never a silently different keyspace (the same check
 * gardener's etcd-backup-restore makes after each delta snapshot).
 *
 * Leases (the choice, documented in README "Continuous backup"): a key keeps its lease id. A lease the base
 * snapshot holds is already there; a lease first seen in the deltas is granted on the scratch member under the
 * same id with the granted TTL the stream recorded (60 s when the stream could not learn it: the lease was
 * already gone when asked). As with any etcd snapshot restore, every lease's TTL then starts afresh when the
 * restored cluster elects its first leader: holders that still keep their lease alive keep their keys; keys
 * whose holder is gone expire one TTL after the restore. While the replay runs, every lease on the scratch member
 * is kept alive, so none expires there and deletes keys the cluster did not delete.
 */
import type { EtcdClient } from '../etcd/client.ts';
import { StepError, messageOf } from '../util/errors.ts';
import type { Span } from './chain.ts';
import type { RevisionRecord } from './record.ts';
import { readRecords } from './segment-reader.ts';

export const FALLBACK_LEASE_TTL = 60;
const CALL_MS = 30_000;

export interface ReplayResult {
  revisions: number;
  events: number;
  leasesGranted: number;
  lastRevision: number;
}

/** Keeps every known lease alive on one stream, once a second. */
function keepLeasesAlive(client: EtcdClient, leases: Set<string>): { stop(): void } {
  let stream: Awaited<ReturnType<EtcdClient['leaseClient']['leaseKeepAlive']>> | undefined;
  let stopped = false;
  const open = client.leaseClient.leaseKeepAlive().then(
    (s) => {
      stream = s;
      s.on('data', () => {});
      s.on('error', () => {});
    },
    () => {},
  );
  const timer = setInterval(() => {
    if (stopped || !stream) return;
    for (const id of leases) stream.write({ ID: id });
  }, 1000);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      void open.then(() => stream?.cancel());
    },
  };
}

async function applyRecord(client: EtcdClient, r: RevisionRecord, leases: Set<string>, ttls: Map<string, number>): Promise<number> {
  let granted = 0;
  for (const [id, ttl] of Object.entries(r.leases ?? {})) if (ttl > 0) ttls.set(id, ttl);
  for (const e of r.events) {
    if (e.type !== 'put' || !e.lease || leases.has(e.lease)) continue;
    const ttl = ttls.get(e.lease) ?? FALLBACK_LEASE_TTL;
    try {
      await client.leaseClient.leaseGrant({ ID: e.lease, TTL: ttl }, { deadline: Date.now() + CALL_MS });
      granted++;
    } catch (err) {
      if (!/lease already exists/.test(messageOf(err))) throw new StepError('failed', `replaying revision ${r.revision}: granting lease ${e.lease} failed: ${messageOf(err)}`);
    }
    leases.add(e.lease);
  }
  const res = await client.kv.txn(
    {
      compare: [],
      success: r.events.map((e) =>
        e.type === 'put'
          ? { request_put: { key: e.key, value: e.value ?? Buffer.alloc(0), ...(e.lease ? { lease: e.lease } : {}) } }
          : { request_delete_range: { key: e.key } },
      ),
      failure: [],
    },
    { deadline: Date.now() + CALL_MS },
  );
  const got = Number(res.header.revision);
  if (got !== r.revision) {
    throw new StepError('failed', `replaying revision ${r.revision} gave revision ${got} on the scratch member: the deltas do not continue the base snapshot (wrong base, or a damaged or missing segment); nothing was restored`);
  }
  return granted;
}

/** Replay every record after `from` up to `to` (inclusive) from the spans, in order. */
export async function replay(client: EtcdClient, spans: Span[], from: number, to: number, o: { signal?: AbortSignal; log?: (m: string) => void } = {}): Promise<ReplayResult> {
  const listed = await client.leaseClient.leaseLeases({ deadline: Date.now() + CALL_MS });
  const leases = new Set(listed.leases.map((l) => String(l.ID)));
  const ttls = new Map<string, number>();
  const ka = keepLeasesAlive(client, leases);
  const out: ReplayResult = { revisions: 0, events: 0, leasesGranted: 0, lastRevision: from };
  let lastLog = Date.now();
  try {
    outer: for (const s of spans) {
      for await (const r of readRecords(s.path, undefined, { after: out.lastRevision, ...(o.signal ? { signal: o.signal } : {}) })) {
        if (r.revision > to) break outer;
        if (r.revision !== out.lastRevision + 1) {
          throw new StepError('failed', `the deltas skip from revision ${out.lastRevision} to ${r.revision} in ${s.path}: not restorable across that gap`);
        }
        out.leasesGranted += await applyRecord(client, r, leases, ttls);
        out.revisions++;
        out.events += r.events.length;
        out.lastRevision = r.revision;
        if (Date.now() - lastLog > 5000) {
          o.log?.(`replayed up to revision ${r.revision} of ${to}`);
          lastLog = Date.now();
        }
      }
    }
  } finally {
    ka.stop();
  }
  if (out.lastRevision !== to) throw new StepError('failed', `the deltas end at revision ${out.lastRevision}, before the target ${to}`);
  return out;
}
