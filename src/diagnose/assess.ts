/**
 * From facts to findings (by severity) and to the runbook that fits, with the exact command. Pure: no I/O.
 *
 * Critical (exit 6): an alarm, a member down, no quorum or no leader, members of different clusters, a db above 90%
 * of its quota, an expired (or not yet valid) certificate. Warning: a db above 80%, a certificate expiring within
 * 30 days, heavy fragmentation, a long uncompacted history, auto-compaction off, mixed versions.
 */
import { shellQuote } from '../exec/ssh.ts';
import { formatBytes } from '../util/units.ts';
import { ETCD_DEFAULT_QUOTA_BYTES } from '../etcd/quota.ts';
import { FINDING_DEFAULTS, unevenDbSizes } from '../guard/findings.ts';
import { EXPIRY_WARNING_DAYS, describeExpiry } from './certs.ts';
import type { Facts } from './collect.ts';
import type { Diagnosis, Finding, Recommendation } from './types.ts';

export const USAGE_WARNING = 0.8;
export const USAGE_CRITICAL = 0.9;
/** Fragmentation worth a warning: at least half the file free, and at least this much to gain. */
export const FRAGMENTATION_WARNING = 0.5;
export const FRAGMENTATION_MIN_BYTES = 64 * 1024 * 1024;
export const COMPACTION_GAP_WARNING = 1_000_000;

export interface AssessContext {
  /** How the cluster was named on the command line, to build commands: ['-i', 'cluster.yaml'] or ['--endpoints', …]. */
  target: string[];
  /** The members have drivers (an inventory), so runbooks that stop and start members can run. */
  hasDrivers: boolean;
  /** A Kubernetes control plane sits on top (kube-apiserver compacts etcd itself). */
  kubernetes: boolean;
}

export { shellQuote };

function command(verb: 'run' | 'plan', runbook: string, ctx: AssessContext, params: Record<string, string> = {}): string {
  const p = Object.entries(params).flatMap(([k, v]) => ['-p', `${k}=${v}`]);
  return ['runbook', verb, runbook, ...ctx.target, ...p].map(shellQuote).join(' ');
}

function recommend(runbook: string, reason: string, ctx: AssessContext, params: Record<string, string> = {}, needsDrivers = false): Recommendation {
  const note = needsDrivers && !ctx.hasDrivers ? ' (it stops and starts members: it needs an inventory, cluster.yaml, with member drivers, not --endpoints)' : '';
  return { runbook, reason: `${reason}${note}`, command: command('run', runbook, ctx, params), plan: command('plan', runbook, ctx, params) };
}

const pct = (r: number) => `${Math.round(r * 100)}%`;

export function assess(facts: Facts, ctx: AssessContext): Pick<Diagnosis, 'findings' | 'recommendations' | 'status'> {
  const findings: Finding[] = [];
  const add = (severity: Finding['severity'], code: string, message: string, member?: string) =>
    findings.push({ severity, code, message, ...(member ? { member } : {}) });

  // ---- alarms, members, quorum ----
  for (const a of facts.alarms) {
    if (a.alarm === 'NOSPACE') add('critical', 'nospace-alarm', `NOSPACE alarm on ${a.member} (${a.memberId}): the cluster refuses writes (mvcc: database space exceeded)`, a.member);
    else if (a.alarm === 'CORRUPT') add('critical', 'corrupt-alarm', `CORRUPT alarm on ${a.member} (${a.memberId}): its data differs from the others`, a.member);
    else add('critical', 'alarm', `${a.alarm} alarm on ${a.member} (${a.memberId})`, a.member);
  }
  // A member refused for want of credentials or TLS trust answered: it is not down, the tool just cannot read it.
  const cannotRead = facts.cannotRead ?? [];
  for (const c of cannotRead) {
    const who = c.member ? `${c.member} ` : '';
    const what = c.errorClass === 'auth' ? 'credentials required' : 'TLS refused';
    add('critical', c.errorClass === 'auth' ? 'credentials-required' : 'tls-refused', `cannot read ${who}${c.what}: ${what} (${c.reason}): ${c.fix}`, c.member);
  }
  const blind = cannotRead.length > 0;
  const down = facts.members.filter((m) => !m.reachable && m.errorClass !== 'auth' && m.errorClass !== 'tls');
  for (const m of down) add('critical', 'member-down', `${m.name} (${m.endpoint}) does not answer: ${m.error ?? 'no answer'}`, m.name);
  const voters = facts.members.filter((m) => !m.isLearner);
  const quorum = Math.floor(voters.length / 2) + 1;
  const answeringVoters = voters.filter((m) => m.reachable).length;
  // Quorum and leader are unknown, not missing, while members cannot be read.
  const noQuorum = !blind && answeringVoters < quorum;
  if (noQuorum) add('critical', 'no-quorum', `no quorum: ${answeringVoters} of ${voters.length} voters answer, ${quorum} needed`);
  else if (!blind && !facts.leader) add('critical', 'no-leader', 'no agreed leader (an election in progress, or members that cannot reach each other)');
  if (facts.quotaWarning) add('warning', 'quota-mismatch', facts.quotaWarning);
  if (facts.clusterIds.length > 1) add('critical', 'mixed-clusters', `members report different cluster ids (${facts.clusterIds.join(', ')}): the inventory mixes clusters`);
  for (const u of facts.unknownMembers) add('warning', 'unknown-member', `etcd lists member ${u.name || '(unstarted)'} ${u.id} (${u.peerURLs.join(',')}) that the inventory does not name`);
  for (const l of facts.learners) add('info', 'learner', `${l} is a learner (not a voter yet)`, l);

  // ---- space ----
  for (const m of facts.members) {
    if (m.usage === undefined || m.dbSize === undefined) continue;
    const text = `${m.name}: db ${formatBytes(m.dbSize)} is ${pct(m.usage)} of its quota ${formatBytes(m.quotaBytes)} (${m.quotaSource})`;
    if (m.usage > USAGE_CRITICAL) add('critical', 'quota-usage', text, m.name);
    else if (m.usage > USAGE_WARNING) add('warning', 'quota-usage', text, m.name);
    if (m.fragmentation !== undefined && m.dbSizeInUse !== undefined && m.fragmentation >= FRAGMENTATION_WARNING && m.dbSize - m.dbSizeInUse >= FRAGMENTATION_MIN_BYTES) {
      add('warning', 'fragmentation', `${m.name}: ${pct(m.fragmentation)} of the db is free pages (${formatBytes(m.dbSize - m.dbSizeInUse)} a defrag would give back)`, m.name);
    }
  }
  // Also what `runbook guard` reports (src/guard/findings.ts): the default quota filling up, uneven db sizes. Both
  // only below the quota-usage warning: above it that finding (and nospace-recovery) is what to act on, and members
  // part-way through a recovery differ in size anyway.
  const nearQuota = facts.members.some((m) => m.usage !== undefined && m.usage > USAGE_WARNING);
  for (const m of facts.members) {
    if (m.quotaBytes === ETCD_DEFAULT_QUOTA_BYTES && m.usage !== undefined && m.usage >= 0.5 && m.usage <= USAGE_WARNING && m.dbSize !== undefined) {
      add('warning', 'default-quota', `${m.name}: the quota is etcd's 2 GiB default and the db (${formatBytes(m.dbSize)}, ${pct(m.usage)}) is past half of it: set --quota-backend-bytes (e.g. 8GiB)`, m.name);
    }
  }
  const uneven = unevenDbSizes(facts.members.flatMap((m) => (m.reachable && !m.isLearner && m.dbSize !== undefined ? [{ name: m.name, dbSize: m.dbSize }] : [])), FINDING_DEFAULTS.unevenMinBytes);
  if (uneven && !nearQuota) add('warning', 'uneven-db', `db sizes differ across voters: ${uneven.max.name} ${formatBytes(uneven.max.dbSize)}, ${uneven.min.name} ${formatBytes(uneven.min.dbSize)} (a member not defragmented, or not applying compactions)`, uneven.max.name);
  if (facts.compactionGap !== null && facts.compactionGap > COMPACTION_GAP_WARNING) {
    add('warning', 'compaction-gap', `${facts.compactionGap} revisions of history since the last compaction (at ${facts.compactRevision || 'never'}): a compaction would free their space`);
  }
  const noAutoCompaction = facts.members.filter((m) => m.autoCompactionDisabled === true).map((m) => m.name);
  if (noAutoCompaction.length) {
    add(
      ctx.kubernetes ? 'info' : 'warning',
      'auto-compaction-off',
      `auto-compaction looks disabled on ${noAutoCompaction.join(', ')} (no --auto-compaction-retention, or 0): ${ctx.kubernetes ? 'fine when kube-apiserver compacts (--etcd-compaction-interval, default 5m)' : 'history grows until a client compacts it'}`,
    );
  }
  const versions = [...new Set(facts.members.flatMap((m) => (m.version ? [m.version] : [])))];
  if (versions.length > 1) add('warning', 'mixed-versions', `members run different versions: ${facts.members.filter((m) => m.version).map((m) => `${m.name} ${m.version}`).join(', ')}`);

  // ---- certificates ----
  for (const c of facts.certificates) {
    const text = `${c.role} ${c.path}: ${describeExpiry(c)}`;
    if (c.status === 'expired') add('critical', 'cert-expired', text);
    else if (c.status === 'not-yet-valid') add('critical', 'cert-not-yet-valid', text);
    else if (c.status === 'expiring') add('warning', 'cert-expiring', `${text} (less than ${EXPIRY_WARNING_DAYS} days)`);
    else if (c.status === 'unreadable') add('warning', 'cert-unreadable', text);
  }

  // ---- what to do ----
  const recommendations: Recommendation[] = [];
  const expired = facts.certificates.filter((c) => c.status === 'expired' || c.status === 'not-yet-valid');
  const clientSide = expired.filter((c) => /client cert|CA \(client config\)/.test(c.role));
  if (clientSide.length && (down.length || blind)) {
    recommendations.push({
      reason: `${clientSide.map((c) => `${c.role} ${c.path}`).join(' and ')} ${clientSide.length > 1 ? 'are' : 'is'} not valid, so members refuse the TLS handshake and nothing can be checked or recovered through the API: renew it (kubeadm: kubeadm certs renew etcd-healthcheck-client), then diagnose again`,
    });
  } else if (blind) {
    // No runbook on a cluster this tool cannot read: its state is unknown, and a recovery would act on a guess.
    const fixes = [...new Set(cannotRead.map((c) => c.fix))];
    recommendations.push({ reason: `fix the inventory so the cluster can be read, then diagnose again: ${fixes.join('; ')}` });
  } else {
    const serverSide = expired.filter((c) => !clientSide.includes(c));
    if (serverSide.length) {
      recommendations.push({ reason: `renew the member certificates (${serverSide.map((c) => c.path).join(', ')}; kubeadm: kubeadm certs renew etcd-server etcd-peer) and restart the members one at a time` });
    }
    const nospace = facts.alarms.some((a) => a.alarm === 'NOSPACE');
    const full = facts.members.filter((m) => m.usage !== undefined && m.usage > USAGE_WARNING);
    if (noQuorum) {
      recommendations.push(recommend('power-loss-restore', `no quorum (${answeringVoters} of ${voters.length} voters answer): restart the members on their data, or restore them all from the newest valid snapshot`, ctx, {}, true));
    } else {
      if (nospace || full.length) {
        const why = nospace ? 'the NOSPACE alarm is raised' : `${full.map((m) => `${m.name} at ${pct(m.usage!)}`).join(', ')} of the quota`;
        recommendations.push(recommend('nospace-recovery', `${why}: compact, defragment every member, disarm`, ctx, down.length ? { allowUnreachable: 'true' } : {}));
      }
      const corrupt = facts.alarms.filter((a) => a.alarm === 'CORRUPT').map((a) => a.member);
      const replace = [...new Set([...down.filter((m) => !m.isLearner).map((m) => m.name), ...corrupt])];
      if (replace.length) {
        const first = replace[0]!;
        const why = corrupt.includes(first) ? `${first} has a CORRUPT alarm` : `${first} does not answer; if it cannot simply be started again on its data, replace it`;
        recommendations.push(recommend('member-replacement', `${why}${replace.length > 1 ? ` (then ${replace.slice(1).join(', ')}, one at a time)` : ''}`, ctx, { member: first }, true));
      }
    }
  }

  const rank = { critical: 0, warning: 1, info: 2 } as const;
  findings.sort((a, b) => rank[a.severity] - rank[b.severity]);
  const status = findings.some((f) => f.severity === 'critical') ? 'critical' : findings.some((f) => f.severity === 'warning') ? 'warning' : 'healthy';
  return { findings, recommendations, status };
}
