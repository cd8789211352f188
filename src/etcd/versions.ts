/**
 * Every choice that depends on etcd's version, in one table. The version is the CLUSTER's (what its members report
 * in Status, journaled at preflight and kept in snapshot manifests), never that of whichever binary PATH finds
 * first; what a found tool can actually do is then proved by a capability probe (snapshot-tools.ts), because
 * patch releases add flags (`--bump-revision` reached 3.5 in a patch release) and a version alone cannot say so.
 *
 * What differs (measured on 3.4.23, 3.5.16, 3.5.30; 3.6 from its CHANGELOG and upgrade guide, it cannot run here):
 * - snapshot status / restore: `etcdctl` on 3.4; `etcdutl` on 3.5 (etcdctl's still work, deprecated); only
 *   `etcdutl` from 3.6 (etcdctl's are removed).
 * - moving revisions forward on restore (`--bump-revision N --mark-compacted`): only tools whose
 *   `snapshot restore --help` lists it (3.5.16 and 3.5.30 etcdutl and etcdctl do; 3.4.23 etcdctl does not).
 * - a tool older than the cluster never opens its snapshot (a 3.5 snapshot is not restored with a 3.4 tool).
 * - metrics: 3.4 also exports `etcd_debugging_mvcc_db_total_size_in_bytes`; 3.5+ only `etcd_mvcc_db_total_size_in_bytes`.
 * - log format: 3.4 logs text (capnslog) unless `--logger=zap`; 3.5+ JSON (zap); 3.6 adds `--log-format`.
 * - flags: 3.6 drops the `--experimental-` prefix of graduated flags (see RENAMED_IN_3_6) and removes `--enable-v2`.
 */

export interface EtcdVersion {
  major: number;
  minor: number;
  patch: number;
  /** "3.5.30" (no pre-release suffix). */
  text: string;
}

/**
 * The version in what etcd, etcdctl, etcdutl, Status or /metrics print: "3.5.30", "v3.6.0-rc.1",
 * "etcd Version: 3.4.23", "etcdutl version: 3.5.9", "etcd_server_version{server_version=\"3.5.30\"} 1".
 */
export function parseEtcdVersion(text: string | undefined | null): EtcdVersion | undefined {
  if (!text) return undefined;
  const m = /(?:^|[^\d.])v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: `${Number(m[1])}.${Number(m[2])}.${Number(m[3])}` };
}

function asVersion(v: EtcdVersion | string): EtcdVersion {
  if (typeof v !== 'string') return v;
  const p = parseEtcdVersion(v);
  if (!p) throw new Error(`not an etcd version: ${JSON.stringify(v)}`);
  return p;
}

/** < 0, 0, > 0 as a is older than, the same as, newer than b. */
export function compareVersions(a: EtcdVersion | string, b: EtcdVersion | string): number {
  const x = asVersion(a);
  const y = asVersion(b);
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
}

/** Is v at least `min` ("3.5" or "3.5.10")? */
export function atLeast(v: EtcdVersion | string, min: string): boolean {
  const [maj = 0, mnr = 0, pat = 0] = min.split('.').map(Number);
  const x = asVersion(v);
  return compareVersions(x, { major: maj, minor: mnr, patch: pat, text: min }) >= 0;
}

/** "3.5" of a version: what data compatibility follows (patch releases of one minor read each other's data). */
export function minorOf(v: EtcdVersion | string): string {
  const x = asVersion(v);
  return `${x.major}.${x.minor}`;
}

/** The oldest of several versions (a cluster mid-upgrade runs at its oldest member's version). */
export function oldestOf(versions: (string | null | undefined)[]): EtcdVersion | undefined {
  const parsed = versions.map((v) => parseEtcdVersion(v ?? undefined)).filter((v): v is EtcdVersion => v !== undefined);
  return parsed.sort(compareVersions)[0];
}

export type SnapshotToolKind = 'etcdutl' | 'etcdctl';

/**
 * /metrics names, for pages read before the member's version is known (the version is on the same page): every
 * name a fact has had from 3.4 to 3.6, the current one first.
 */
export const METRIC_NAMES = {
  quotaBytes: ['etcd_server_quota_backend_bytes'],
  dbTotalBytes: ['etcd_mvcc_db_total_size_in_bytes', 'etcd_debugging_mvcc_db_total_size_in_bytes'],
  dbInUseBytes: ['etcd_mvcc_db_total_size_in_use_in_bytes'],
  hasLeader: ['etcd_server_has_leader'],
  serverVersion: ['etcd_server_version'],
} as const;

/** The graduated flags 3.6 renamed (old name without its `--experimental-` prefix → 3.6 name). From etcd's 3.6 upgrade guide. */
export const RENAMED_IN_3_6: Readonly<Record<string, string>> = {
  'experimental-bootstrap-defrag-threshold-megabytes': 'bootstrap-defrag-threshold-megabytes',
  'experimental-compaction-batch-limit': 'compaction-batch-limit',
  'experimental-compact-hash-check-time': 'compact-hash-check-time',
  'experimental-compaction-sleep-interval': 'compaction-sleep-interval',
  'experimental-corrupt-check-time': 'corrupt-check-time',
  'experimental-enable-distributed-tracing': 'enable-distributed-tracing',
  'experimental-distributed-tracing-address': 'distributed-tracing-address',
  'experimental-distributed-tracing-instance-id': 'distributed-tracing-instance-id',
  'experimental-distributed-tracing-sampling-rate': 'distributed-tracing-sampling-rate',
  'experimental-distributed-tracing-service-name': 'distributed-tracing-service-name',
  'experimental-downgrade-check-time': 'downgrade-check-time',
  'experimental-max-learners': 'max-learners',
  'experimental-memory-mlock': 'memory-mlock',
  'experimental-peer-skip-client-san-verification': 'peer-skip-client-san-verification',
  'experimental-snapshot-catchup-entries': 'snapshot-catchup-entries',
  'experimental-warning-apply-duration': 'warning-apply-duration',
  'experimental-watch-progress-notify-interval': 'watch-progress-notify-interval',
};

/**
 * What members log (zap JSON; 3.4 with --logger=zap, 3.5+ by default) about the work a recovery asks of them, by
 * `msg`: every wording from 3.4 to 3.5 (measured). 3.4 logs one "defragmented" line with `took`; 3.5 logs
 * "defragmenting" when it starts and "finished defragmenting directory" when done (with `took`, when present).
 */
export const LOG_MESSAGES = {
  defragStarted: ['starting defragment', 'defragmenting'],
  defragDone: ['defragmented', 'finished defragmenting directory'],
  compactionDone: ['finished scheduled compaction'],
} as const;

export interface VersionTraits {
  version: string;
  /** Tools that open this version's snapshots offline (status, restore), preferred first. */
  snapshotTools: SnapshotToolKind[];
  /** Tools whose snapshot commands still work but are deprecated on this version (said in the log). */
  deprecatedSnapshotTools: SnapshotToolKind[];
  /** /metrics names of the db size (the first is current). */
  dbSizeMetrics: string[];
  dbSizeInUseMetric: string;
  serverVersionMetric: string;
  /** What a member logs by default: text (capnslog) on 3.4, JSON (zap) from 3.5. */
  defaultLogFormat: 'text' | 'json';
  /** `--enable-v2` is gone from 3.6. */
  hasV2Flag: boolean;
}

/** The table. Unknown future versions get the newest row. */
export function traitsOf(v: EtcdVersion | string): VersionTraits {
  const x = asVersion(v);
  const common = { version: x.text, dbSizeInUseMetric: METRIC_NAMES.dbInUseBytes[0], serverVersionMetric: METRIC_NAMES.serverVersion[0] };
  if (!atLeast(x, '3.5')) {
    return {
      ...common,
      snapshotTools: ['etcdctl'],
      deprecatedSnapshotTools: [],
      dbSizeMetrics: [...METRIC_NAMES.dbTotalBytes],
      defaultLogFormat: 'text',
      hasV2Flag: true,
    };
  }
  if (!atLeast(x, '3.6')) {
    return { ...common, snapshotTools: ['etcdutl', 'etcdctl'], deprecatedSnapshotTools: ['etcdctl'], dbSizeMetrics: ['etcd_mvcc_db_total_size_in_bytes'], defaultLogFormat: 'json', hasV2Flag: true };
  }
  return { ...common, snapshotTools: ['etcdutl'], deprecatedSnapshotTools: [], dbSizeMetrics: ['etcd_mvcc_db_total_size_in_bytes'], defaultLogFormat: 'json', hasV2Flag: false };
}

/**
 * The name a flag has on this version: an `experimental-` flag 3.6 graduated under its new name, a graduated name
 * back to its `experimental-` form before 3.6. Others unchanged. (Without leading dashes.)
 */
export function flagName(flag: string, v: EtcdVersion | string): string {
  const bare = flag.replace(/^--?/, '');
  if (atLeast(v, '3.6')) return RENAMED_IN_3_6[bare] ?? bare;
  const old = Object.entries(RENAMED_IN_3_6).find(([, now]) => now === bare)?.[0];
  return old ?? bare;
}

/**
 * Can a tool of version `tool` open a snapshot of a cluster at `cluster`? Never an older minor than the cluster (a
 * 3.4 tool on a 3.5 snapshot); and a 3.6+ cluster's snapshots only with etcdutl.
 */
export function toolFitsCluster(kind: SnapshotToolKind, tool: EtcdVersion | string, cluster: EtcdVersion | string | undefined): { ok: true } | { ok: false; why: string } {
  const t = asVersion(tool);
  if (kind === 'etcdctl' && atLeast(t, '3.6')) return { ok: false, why: `etcdctl ${t.text} has no snapshot restore/status (removed in 3.6: use etcdutl)` };
  if (cluster === undefined) return { ok: true };
  const c = asVersion(cluster);
  if (t.major !== c.major || t.minor < c.minor) return { ok: false, why: `${kind} ${t.text} is older than the cluster (${c.text}): a ${minorOf(c)} snapshot is never opened with a ${minorOf(t)} tool` };
  if (!traitsOf(c).snapshotTools.includes(kind)) return { ok: false, why: `${kind} does not restore etcd ${minorOf(c)} snapshots` };
  return { ok: true };
}
