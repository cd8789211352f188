/**
 * What the guard reports and never fixes by itself: each needs a decision only a human can take (a flag change and a
 * rolling restart, a bigger quota, a certificate renewal, a look at a stuck learner or an odd member).
 *
 * - auto-compaction-off: a member runs without --auto-compaction-retention (or 0): history grows until a client
 *   compacts (kube-apiserver does, every 5 minutes by default: then it is only info);
 * - default-quota: the quota is etcd's 2 GiB default while the db grows toward it (above half of it, or on course to
 *   reach it within a week at the growth seen);
 * - cert-expiring / cert-expired: a certificate the configuration names expires within 30 days;
 * - learner-stuck: a member has been a learner for longer than `learnerMaxMs`;
 * - uneven-db: voters' db sizes differ by more than half of the largest and at least `unevenMinBytes`, in several
 *   polls in a row (one member defragmented and not the others, or a member that does not apply compactions);
 * - nospace-alarm: too late for prevention: nospace-recovery is the runbook;
 * - member-unreachable: a member did not answer two polls in a row;
 * - prevention-ineffective: a rule still holds after a successful prevention run (live data near the quota).
 * Pure: the memory of earlier polls is passed in and updated.
 */
import type { CertInfo } from '../diagnose/certs.ts';
import { describeExpiry, EXPIRY_WARNING_DAYS } from '../diagnose/certs.ts';
import { ETCD_DEFAULT_QUOTA_BYTES } from '../etcd/quota.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import type { GuardFacts } from './facts.ts';


export interface GuardFinding {
  code: string;
  severity: 'info' | 'warning' | 'critical';
  /** The member it is about, '' for the cluster. */
  member: string;
  message: string;
}

export interface FindingOptions {
  learnerMaxMs: number;
  unevenMinBytes: number;
}

export const FINDING_DEFAULTS: FindingOptions = { learnerMaxMs: 10 * 60_000, unevenMinBytes: 64 * 1024 * 1024 };

const WEEK_MS = 7 * 86_400_000;
const GROWTH_WINDOW_MS = 6 * 3600_000;
const UNEVEN_POLLS = 3;

/** Voters whose db sizes differ by more than half of the largest and at least `minBytes` (also `runbook diagnose`). */
export function unevenDbSizes<T extends { name: string; dbSize: number }>(voters: readonly T[], minBytes: number): { max: T; min: T } | undefined {
  if (voters.length < 2) return undefined;
  const max = voters.reduce((a, b) => (b.dbSize > a.dbSize ? b : a));
  const min = voters.reduce((a, b) => (b.dbSize < a.dbSize ? b : a));
  const gap = max.dbSize - min.dbSize;
  return gap >= minBytes && gap > max.dbSize / 2 ? { max, min } : undefined;
}

export interface FindingMemory {
  learnerSince: Map<string, number>;
  /** Per member: [time, db size] samples over the growth window (at most one a minute). */
  sizes: Map<string, [number, number][]>;
  unevenPolls: number;
  /** Per member: polls in a row it did not answer. */
  downPolls: Map<string, number>;
}

export function newFindingMemory(): FindingMemory {
  return { learnerSince: new Map(), sizes: new Map(), unevenPolls: 0, downPolls: new Map() };
}

export interface FindingInputs {
  facts: GuardFacts;
  certificates: readonly CertInfo[];
  /** A run on this cluster is in progress (sizes are in flux: no uneven-db finding). */
  runActive: boolean;
  /** Rules that still hold after a successful prevention run. */
  ineffective: readonly string[];
}

export function assessFindings(input: FindingInputs, mem: FindingMemory, opts: FindingOptions): GuardFinding[] {
  const { facts } = input;
  const now = facts.at;
  const out: GuardFinding[] = [];
  const add = (code: string, severity: GuardFinding['severity'], message: string, member = '') => out.push({ code, severity, member, message });

  if (facts.cluster.alarms.includes('NOSPACE')) add('nospace-alarm', 'critical', 'NOSPACE alarm raised: the cluster refuses writes; prevention cannot run, recovery can: runbook run nospace-recovery');
  if (facts.cluster.autoCompaction === false) {
    add('auto-compaction-off', facts.cluster.kubernetes ? 'info' : 'warning', facts.cluster.kubernetes
      ? 'etcd auto-compaction is off: fine while kube-apiserver compacts (--etcd-compaction-interval, default 5m)'
      : 'etcd auto-compaction is off (no --auto-compaction-retention, or 0): history grows until something compacts it; set e.g. --auto-compaction-mode=periodic --auto-compaction-retention=1h');
  }

  for (const m of facts.members) {
    // A member that does not answer two polls in a row (one miss is a blip: a defrag, a GC pause, a busy machine).
    const down = m.reachable ? 0 : (mem.downPolls.get(m.name) ?? 0) + 1;
    mem.downPolls.set(m.name, down);
    if (down >= 2) add('member-unreachable', 'warning', `${m.name} does not answer${m.error ? `: ${m.error}` : ''}`, m.name);
    if (!m.reachable) continue;
    // growth, sampled at most once a minute over the window
    const series = mem.sizes.get(m.name) ?? [];
    if (!series.length || now - series.at(-1)![0] >= 60_000) series.push([now, m.dbSize]);
    while (series.length > 2 && now - series[0]![0] > GROWTH_WINDOW_MS) series.shift();
    mem.sizes.set(m.name, series);
    if (m.quota === ETCD_DEFAULT_QUOTA_BYTES) {
      const [t0, s0] = series[0]!;
      const rate = now > t0 ? (m.dbSize - s0) / (now - t0) : 0;
      const eta = rate > 0 ? (m.quota - m.dbSize) / rate : Infinity;
      if (m.usage >= 0.5 || eta < WEEK_MS) {
        add('default-quota', 'warning', `${m.name}: the quota is etcd's 2 GiB default and the db (${formatBytes(m.dbSize)}, ${Math.round(m.usage * 100)}%) grows toward it${Number.isFinite(eta) ? ` (about ${formatDuration(eta)} left at the growth seen)` : ''}: set --quota-backend-bytes (e.g. 8GiB)`, m.name);
      }
    }
    if (m.learner) {
      const since = mem.learnerSince.get(m.name) ?? now;
      mem.learnerSince.set(m.name, since);
      if (now - since >= opts.learnerMaxMs) add('learner-stuck', 'warning', `${m.name} has been a learner for ${formatDuration(now - since)}: it may never catch up (promote it, or remove and add it again)`, m.name);
    } else {
      mem.learnerSince.delete(m.name);
    }
  }

  const voters = facts.members.filter((m) => m.reachable && !m.learner);
  if (!input.runActive) {
    const uneven = unevenDbSizes(voters, opts.unevenMinBytes);
    mem.unevenPolls = uneven ? mem.unevenPolls + 1 : 0;
    if (uneven && mem.unevenPolls >= UNEVEN_POLLS) {
      const { max, min } = uneven;
      add('uneven-db', 'warning', `db sizes differ across voters: ${max.name} ${formatBytes(max.dbSize)}, ${min.name} ${formatBytes(min.dbSize)} (a member not defragmented, or not applying compactions)`, max.name);
    }
  }

  for (const c of input.certificates) {
    if (c.status === 'expired' || c.status === 'not-yet-valid') add('cert-expired', 'critical', `${c.role} ${c.path}: ${describeExpiry(c)}`);
    else if (c.status === 'expiring') add('cert-expiring', 'warning', `${c.role} ${c.path}: ${describeExpiry(c)} (less than ${EXPIRY_WARNING_DAYS} days)`);
  }
  for (const r of input.ineffective) {
    add('prevention-ineffective', 'warning', `rule ${r} still holds after a successful prevention run: the live data itself is near the limit; raise the quota or delete data`);
  }
  return out;
}

/** A finding's identity across polls (what appears and clears). */
export function findingKey(f: GuardFinding): string {
  return `${f.code}|${f.member}|${f.code.startsWith('cert-') ? f.message.split(':')[0] : ''}`;
}
