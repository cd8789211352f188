/**
 * Read-only fact gathering for `runbook diagnose`: status of every member, member list, alarms, the compact revision,
 * the members' flags (through their drivers, on this machine only) and the certificates the configuration names.
 * Nothing here writes to etcd, to a member or to a file.
 */
import { driverFor } from '../drivers/index.ts';
import { getFlag } from '../drivers/process.ts';
import type { CallOpts } from '../etcd/call.ts';
import { compactedAtLeast } from '../etcd/kv.ts';
import { accessHint, errorClass, shortGrpcMessage } from '../etcd/errors.ts';
import { memberMetrics, type MetricsFacts } from '../etcd/metrics.ts';
import { EtcdPool } from '../etcd/pool.ts';
import { quotaDisagreement } from '../etcd/quota.ts';
import { clusterView, idOf, isLearner, unreadable, type ClusterView } from '../etcd/view.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { messageOf } from '../util/errors.ts';
import { parseBytes, parseDuration } from '../util/units.ts';
import { hostFor, sshLabel } from '../hosts/index.ts';
import { inspectCertFile, inspectCertText, type CertInfo } from './certs.ts';
import type { CannotRead, Diagnosis, MemberFacts, MemberFlags, QuotaSource } from './types.ts';

export type Facts = Omit<Diagnosis, 'status' | 'findings' | 'recommendations'>;

export const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;

const FLAGS: Record<Exclude<keyof MemberFlags, 'from'>, string> = {
  quotaBackendBytes: 'quota-backend-bytes',
  autoCompactionRetention: 'auto-compaction-retention',
  autoCompactionMode: 'auto-compaction-mode',
  certFile: 'cert-file',
  trustedCaFile: 'trusted-ca-file',
  peerCertFile: 'peer-cert-file',
  peerTrustedCaFile: 'peer-trusted-ca-file',
};

const FLAGS_TIMEOUT_MS = 20_000;

/** The member's etcd flags through its driver (one look at its command line, on this machine or over ssh). */
export async function readMemberFlags(m: MemberSpec): Promise<{ flags?: MemberFlags; note?: string }> {
  const type = m.driver.type;
  if (type === 'none') return { note: 'flags not read: driver none' };
  try {
    // A remote host that hangs must not hang a read-only report.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${FLAGS_TIMEOUT_MS / 1000}s${m.ssh ? ` from ${sshLabel(m.ssh)}` : ''}`)), FLAGS_TIMEOUT_MS);
    });
    const { argv, from } = await Promise.race([driverFor(m).argv(), gaveUp]).finally(() => clearTimeout(timer));
    const flags: MemberFlags = { from };
    for (const [key, flag] of Object.entries(FLAGS) as [Exclude<keyof MemberFlags, 'from'>, string][]) {
      const v = getFlag(argv, flag);
      if (v !== undefined) flags[key] = v;
    }
    return { flags };
  } catch (err) {
    return { note: `flags not read: ${messageOf(err)}` };
  }
}

/** etcd's auto-compaction is off when the retention is absent or zero ("0", "0h", "0s"). */
export function autoCompactionOff(retention: string | undefined): boolean {
  if (retention === undefined || retention.trim() === '') return true;
  const n = /^\s*\d+(\.\d+)?\s*$/.test(retention) ? Number(retention) : parseDuration(retention);
  return n === 0;
}

function quotaOf(inventory: Inventory, flags: MemberFlags | undefined, metrics: MetricsFacts | undefined): { bytes: number; source: QuotaSource } {
  if (metrics?.quotaBytes !== undefined && metrics.quotaBytes > 0) return { bytes: metrics.quotaBytes, source: 'member /metrics' };
  if (inventory.quotaBytes !== undefined && inventory.quotaBytes > 0) return { bytes: inventory.quotaBytes, source: 'inventory' };
  const fromFlag = flags?.quotaBackendBytes !== undefined ? parseBytes(flags.quotaBackendBytes) : undefined;
  if (fromFlag !== undefined && fromFlag > 0) return { bytes: fromFlag, source: 'member flag --quota-backend-bytes' };
  return { bytes: DEFAULT_QUOTA_BYTES, source: 'etcd default (2 GiB)' };
}

/**
 * The cluster's compact revision, by bisection on "is revision r compacted?" (a read at r − 1 fails exactly when
 * r ≤ the compact revision). About log2(revision) tiny reads; 0 when never compacted.
 */
export async function compactRevision(pool: EtcdPool, endpoint: string, revision: number, opts: CallOpts): Promise<number> {
  let lo = 1; // compacted at least 1: always true
  let hi = revision + 1; // reading at the current revision always works
  for (let i = 0; hi - lo > 1 && i < 64; i++) {
    const mid = Math.floor((lo + hi) / 2);
    if (await compactedAtLeast(pool, endpoint, mid, opts)) lo = mid;
    else hi = mid;
  }
  return lo <= 1 ? 0 : lo;
}

function memberFacts(view: ClusterView, i: number, inventory: Inventory, flagInfo: { flags?: MemberFlags; note?: string }, metrics: MetricsFacts | undefined): MemberFacts {
  const p = view.members[i]!;
  const quota = quotaOf(inventory, flagInfo.flags, metrics);
  const retention = flagInfo.flags?.autoCompactionRetention;
  const base: MemberFacts = {
    name: p.name,
    endpoint: p.endpoint,
    reachable: p.ok,
    isLeader: false,
    isLearner: isLearner(p),
    quotaBytes: quota.bytes,
    quotaSource: quota.source,
    autoCompactionDisabled: flagInfo.flags ? autoCompactionOff(retention) : null,
    ...(flagInfo.flags ? { flags: flagInfo.flags } : {}),
    ...(flagInfo.note ? { flagsNote: flagInfo.note } : {}),
  };
  const id = idOf(p);
  if (id) base.memberId = id;
  // /metrics needs no credentials: a member that refuses status for want of them still tells its version.
  if (!p.ok) return { ...base, error: p.error, errorClass: p.errorClass, ...(metrics?.serverVersion ? { version: metrics.serverVersion } : {}) };
  const s = p.status;
  return {
    ...base,
    isLeader: view.leaderId !== null && s.memberId === view.leaderId,
    version: s.version,
    raftTerm: s.raftTerm,
    raftIndex: s.raftIndex,
    revision: s.revision,
    dbSize: s.dbSize,
    ...(s.dbSizeInUse > 0 ? { dbSizeInUse: s.dbSizeInUse, fragmentation: s.dbSize > 0 ? Math.max(0, (s.dbSize - s.dbSizeInUse) / s.dbSize) : 0 } : {}),
    usage: s.dbSize / quota.bytes,
  };
}

/**
 * The certificates of the client configuration (on this machine) and the ones each member's flags name, read on
 * that member's host (over ssh for a remote member: the paths are its paths).
 */
async function certificates(inventory: Inventory, members: MemberFacts[], now: number): Promise<CertInfo[]> {
  const wanted: { role: string; path: string; member?: MemberSpec }[] = [];
  if (inventory.tls?.cacert) wanted.push({ role: 'CA (client config)', path: inventory.tls.cacert });
  if (inventory.tls?.cert) wanted.push({ role: 'client cert', path: inventory.tls.cert });
  members.forEach((m, i) => {
    const f = m.flags;
    const member = inventory.members[i];
    if (!f || !member) return;
    const at = (role: string, path: string | undefined) => path && wanted.push({ role: `${m.name} ${role}`, path, member });
    at('server cert (--cert-file)', f.certFile);
    at('client CA (--trusted-ca-file)', f.trustedCaFile);
    at('peer cert (--peer-cert-file)', f.peerCertFile);
    at('peer CA (--peer-trusted-ca-file)', f.peerTrustedCaFile);
  });
  // One entry per file: a CA shared by every member is listed once, with every role it plays (per host).
  const byFile = new Map<string, { path: string; roles: string[]; member?: MemberSpec }>();
  for (const w of wanted) {
    const key = `${w.member?.ssh ? sshLabel(w.member.ssh) : ''}\0${w.path}`;
    const e = byFile.get(key) ?? { path: w.path, roles: [], ...(w.member?.ssh ? { member: w.member } : {}) };
    e.roles.push(w.role);
    byFile.set(key, e);
  }
  return Promise.all(
    [...byFile.values()].map(async ({ path, roles, member }) => {
      const role = roles.join(', ');
      if (!member?.ssh) return inspectCertFile(path, role, now);
      const host = hostFor(member);
      try {
        const text = await host.readText(path);
        if (text === undefined) return { role, path: `${path} (${host.label})`, status: 'unreadable' as const, error: 'ENOENT' };
        return inspectCertText(text, `${path} (${host.label})`, role, now);
      } catch (err) {
        return { role, path: `${path} (${host.label})`, status: 'unreadable' as const, error: messageOf(err) };
      }
    }),
  );
}

export async function collectFacts(inventory: Inventory, opts: { timeoutMs?: number; signal?: AbortSignal; now?: number } = {}): Promise<Facts> {
  const now = opts.now ?? Date.now();
  const pool = new EtcdPool(inventory, opts.timeoutMs ? { requestTimeoutMs: opts.timeoutMs } : {});
  const callOpts: CallOpts = opts.signal ? { signal: opts.signal } : {};
  const notes: string[] = [];
  try {
    const [view, flagInfos, metrics] = await Promise.all([
      clusterView(pool, callOpts),
      Promise.all(inventory.members.map(readMemberFlags)),
      Promise.all(inventory.members.map((m) => memberMetrics(pool, m.clientURL, callOpts))),
    ]);
    const metricsOf = (i: number) => {
      const f = metrics[i]!;
      return 'error' in f ? undefined : f;
    };
    const members = inventory.members.map((_, i) => memberFacts(view, i, inventory, flagInfos[i]!, metricsOf(i)));
    const cannotRead: CannotRead[] = unreadable(view).map((p) => ({
      member: p.name,
      what: 'status',
      errorClass: p.errorClass as 'auth' | 'tls',
      reason: p.error,
      fix: p.hint ?? 'check the auth and TLS settings of the inventory',
    }));
    const live = members.flatMap((m) => (m.quotaSource === 'member /metrics' ? [{ name: m.name, bytes: m.quotaBytes }] : []));
    const nameOfId = (id: string) => view.members.find((p) => idOf(p) === id)?.name ?? view.memberList?.find((m) => m.id === id)?.name ?? id;

    let compact: number | null = null;
    const via = view.leader ?? view.members.find((p) => p.ok && !isLearner(p));
    if (via && view.revision > 0) {
      try {
        compact = await compactRevision(pool, via.endpoint, view.revision, callOpts);
      } catch (err) {
        const klass = errorClass(err);
        if (klass === 'auth' || klass === 'tls') {
          cannotRead.push({ what: 'keys (the compact revision)', errorClass: klass, reason: shortGrpcMessage(err), fix: accessHint(err) ?? 'check the auth settings of the inventory' });
        } else {
          notes.push(`compact revision not read: ${messageOf(err)}`);
        }
      }
    }
    if (view.errors.length) notes.push(...view.errors.map((e) => `member list / alarms: ${e}`));
    const leaderProbe = view.leader;
    return {
      cluster: inventory.name,
      source: inventory.source,
      checkedAt: new Date(now).toISOString(),
      leader: leaderProbe ? { name: leaderProbe.name, memberId: leaderProbe.status.memberId } : view.leaderId ? { name: nameOfId(view.leaderId), memberId: view.leaderId } : null,
      raftTerm: leaderProbe ? leaderProbe.status.raftTerm : members.reduce<number | null>((t, m) => (m.raftTerm !== undefined && (t === null || m.raftTerm > t) ? m.raftTerm : t), null),
      clusterId: view.clusterId,
      clusterIds: view.clusterIds,
      revision: view.revision > 0 ? view.revision : null,
      compactRevision: compact,
      compactionGap: compact !== null && view.revision > 0 ? view.revision - compact : null,
      members,
      learners: members.filter((m) => m.isLearner).map((m) => m.name),
      alarms: (view.alarms ?? []).map((a) => ({ member: nameOfId(a.memberId), memberId: a.memberId, alarm: a.alarm })),
      unknownMembers: view.unknownMembers.map((m) => ({ id: m.id, name: m.name, peerURLs: m.peerURLs })),
      certificates: await certificates(inventory, members, now),
      cannotRead,
      quotaWarning: quotaDisagreement(inventory, live) ?? null,
      notes: [...notes, ...(view.alarms === null && view.members.some((p) => p.ok) ? ['alarms could not be listed'] : [])],
    };
  } finally {
    pool.close();
  }
}
