/**
 * Read-only polling of one cluster: every member's status (gRPC) and then its /metrics page (HTTP), members in
 * parallel, each member's two requests one after the other, so never more than one request is in flight to a
 * member. A poll ends when every member has answered or given up (the deadline is at most the interval), and the
 * next poll starts only after that: polls never overlap either.
 */
import { fetchMetrics, metricsFacts } from '../etcd/metrics.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus } from '../etcd/status.ts';
import { messageOf } from '../util/errors.ts';
import type { MemberSample } from './facts.ts';

export interface PollOptions {
  /** Deadline of each request. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called after each request (for the requests-per-member metric). */
  onRequest?: (member: string, kind: 'status' | 'metrics', ok: boolean) => void;
}

/** Status, then /metrics, of one member. Never throws: what failed is in the sample. */
export async function pollMember(pool: EtcdPool, name: string, opts: PollOptions): Promise<MemberSample> {
  const endpoint = pool.endpointOf(name);
  const sample: MemberSample = { name, endpoint };
  const call = { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) };
  try {
    sample.status = await memberStatus(pool, name, call);
    opts.onRequest?.(name, 'status', true);
  } catch (err) {
    sample.error = messageOf(err);
    opts.onRequest?.(name, 'status', false);
  }
  if (opts.signal?.aborted) return sample;
  try {
    sample.metrics = metricsFacts(await fetchMetrics(pool, name, call));
    opts.onRequest?.(name, 'metrics', true);
  } catch (err) {
    sample.metricsError = messageOf(err);
    opts.onRequest?.(name, 'metrics', false);
  }
  return sample;
}

/** One poll of every inventory member. */
export function pollCluster(pool: EtcdPool, opts: PollOptions): Promise<MemberSample[]> {
  return Promise.all(pool.inventory.members.map((m) => pollMember(pool, m.name, opts)));
}
