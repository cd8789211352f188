/**
 * A member's Prometheus metrics (GET <client URL>/metrics, served by every etcd on its client port), for the one
 * thing no gRPC call tells: whether the member has *finished* a compaction. etcd records a compaction as done
 * (`compactMainRev`, what a read at an old revision checks) as soon as it is scheduled; deleting the old
 * revisions from the backend runs afterwards, in the background, on every member by itself. A defrag started on a
 * member before that is over copies the history it was meant to drop. The histogram
 * etcd_debugging_mvcc_db_compaction_total_duration_milliseconds is observed when a compaction's deletes are done,
 * so its count going up is the signal (etcd 3.4 to 3.6; it restarts at 0 with the process).
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { http, https } from '../util/node-http.ts';
import { StepError } from '../util/errors.ts';
import type { CallOpts } from './call.ts';
import { sameURL } from './ids.ts';
import type { EtcdPool } from './pool.ts';
import { METRIC_NAMES } from './versions.ts';

const COMPACTIONS_DONE = 'etcd_debugging_mvcc_db_compaction_total_duration_milliseconds_count';
const MAX_BYTES = 8 * 1024 * 1024;

/**
 * Where a member serves /metrics: the inventory's `metricsURL` for it when given (etcd's --listen-metrics-urls,
 * kubeadm's http://127.0.0.1:2381), else its client URL.
 */
export function metricsBase(pool: EtcdPool, endpoint: string): string {
  const spec = pool.inventory.members.find((m) => sameURL(m.clientURL, endpoint));
  return spec?.metricsURL ?? endpoint;
}

/** The metrics page of a member, as text. Throws a StepError naming the member. */
export async function fetchMetrics(pool: EtcdPool, endpointOrName: string, opts: CallOpts = {}): Promise<string> {
  const endpoint = pool.endpointOf(endpointOrName);
  const member = pool.nameOf(endpointOrName);
  const timeoutMs = Math.max(1, Math.min(opts.timeoutMs ?? pool.requestTimeoutMs, (opts.deadline ?? Infinity) - Date.now()));
  const base = metricsBase(pool, endpoint);
  const url = new URL('/metrics', base);
  const secure = url.protocol === 'https:';
  const agent = pool.httpAgent(base);
  return new Promise<string>((resolve, reject) => {
    const fail = (why: string) => reject(new StepError('transient', `${member}: GET /metrics: ${why}`, { member }));
    const options = { method: 'GET', signal: opts.signal, timeout: timeoutMs, agent: agent as HttpAgent & HttpsAgent };
    const req = (secure ? https.request : http.request)(url, options, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(`HTTP ${res.statusCode}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BYTES) {
          req.destroy();
          return fail(`more than ${MAX_BYTES} bytes`);
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', (err) => fail(err.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => fail(opts.signal?.aborted ? 'cancelled' : `${err.message}${base !== endpoint ? ` (metrics URL ${base})` : ''}`));
    req.end();
  });
}

/** The value of a metric without labels, or undefined when the page does not have it. */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * How many compactions this member has finished since it started, or undefined when it does not say (another
 * etcd version, metrics off, the page unreachable): callers then fall back to what gRPC can tell.
 */
export async function compactionsFinished(pool: EtcdPool, endpointOrName: string, opts: CallOpts = {}): Promise<number | undefined> {
  try {
    return metricValue(await fetchMetrics(pool, endpointOrName, opts), COMPACTIONS_DONE);
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    return undefined;
  }
}

/** What a member says about itself on /metrics (etcd 3.4 to 3.6); a field is undefined when the page lacks it. */
export interface MetricsFacts {
  /** etcd_server_quota_backend_bytes: the backend quota this member runs with (not the inventory's guess). */
  quotaBytes?: number;
  /** etcd_mvcc_db_total_size_in_bytes (3.4 also exports it under etcd_debugging_mvcc_…): the db file's size. */
  dbTotalBytes?: number;
  /** etcd_mvcc_db_total_size_in_use_in_bytes: the bytes in use (the rest is free pages a defrag gives back). */
  dbInUseBytes?: number;
  /** etcd_server_has_leader: 1 when the member sees a leader. */
  hasLeader?: boolean;
  /** etcd_server_version{server_version="…"}. */
  serverVersion?: string;
  /** etcd_debugging_mvcc_current_revision: the member's store revision. */
  currentRevision?: number;
  /** etcd_debugging_mvcc_compact_revision: the revision history was last compacted at (0 = never). */
  compactRevision?: number;
  /** etcd_server_is_learner: 1 while the member is a learner. */
  isLearner?: boolean;
}

/** The first of a fact's names (versions.ts METRIC_NAMES: every name it had from 3.4 to 3.6) the page has. */
function firstValue(text: string, names: readonly string[]): number | undefined {
  for (const n of names) {
    const v = metricValue(text, n);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Parse the facts above out of a metrics page. */
export function metricsFacts(text: string): MetricsFacts {
  const facts: MetricsFacts = {};
  const quota = firstValue(text, METRIC_NAMES.quotaBytes);
  if (quota !== undefined) facts.quotaBytes = quota;
  const total = firstValue(text, METRIC_NAMES.dbTotalBytes);
  if (total !== undefined) facts.dbTotalBytes = total;
  const inUse = firstValue(text, METRIC_NAMES.dbInUseBytes);
  if (inUse !== undefined) facts.dbInUseBytes = inUse;
  const leader = firstValue(text, METRIC_NAMES.hasLeader);
  if (leader !== undefined) facts.hasLeader = leader === 1;
  const current = metricValue(text, 'etcd_debugging_mvcc_current_revision');
  if (current !== undefined) facts.currentRevision = current;
  const compacted = metricValue(text, 'etcd_debugging_mvcc_compact_revision');
  if (compacted !== undefined) facts.compactRevision = compacted;
  const learner = metricValue(text, 'etcd_server_is_learner');
  if (learner !== undefined) facts.isLearner = learner === 1;
  const v = new RegExp(`^${METRIC_NAMES.serverVersion[0]}\\{server_version="([^"]+)"\\} `, 'm').exec(text);
  if (v) facts.serverVersion = v[1]!;
  return facts;
}

/** A member's /metrics facts, or why they could not be read (never throws, except on cancellation). */
export async function memberMetrics(pool: EtcdPool, endpointOrName: string, opts: CallOpts = {}): Promise<MetricsFacts | { error: string }> {
  try {
    return metricsFacts(await fetchMetrics(pool, endpointOrName, opts));
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
