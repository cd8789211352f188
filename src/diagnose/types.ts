/** What `runbook diagnose` finds: facts per member and for the cluster, findings by severity, recommended runbooks. */
import type { CertInfo } from './certs.ts';

/** Where a member's quota came from: its own /metrics first; the rest are guesses, named as such. */
export type QuotaSource = 'member /metrics' | 'inventory' | 'member flag --quota-backend-bytes' | 'etcd default (2 GiB)';

/** Something the tool could not read for want of credentials or TLS trust: the operator's input to fix, not a fault of the cluster. */
export interface CannotRead {
  /** The member, or absent for a cluster-wide read (the keys, for the compact revision). */
  member?: string;
  what: string;
  errorClass: 'auth' | 'tls';
  /** etcd's or the TLS layer's words. */
  reason: string;
  /** What to change. */
  fix: string;
}

export interface MemberFlags {
  /** Where they were read: the running process's argv, the configured command, or the static-pod manifest. */
  from: string;
  quotaBackendBytes?: string;
  autoCompactionRetention?: string;
  autoCompactionMode?: string;
  certFile?: string;
  trustedCaFile?: string;
  peerCertFile?: string;
  peerTrustedCaFile?: string;
}

export interface MemberFacts {
  name: string;
  endpoint: string;
  reachable: boolean;
  /** Why the member did not answer. */
  error?: string;
  /** What the error means: only `unreachable` is a member that may be down; `auth`/`tls` is a member not readable by this tool. */
  errorClass?: import('../etcd/errors.ts').ErrorClass;
  memberId?: string;
  isLeader: boolean;
  isLearner: boolean;
  version?: string;
  raftTerm?: number;
  raftIndex?: number;
  revision?: number;
  dbSize?: number;
  dbSizeInUse?: number;
  /** (db size − in use) / db size: the share of the file a defrag would give back. */
  fragmentation?: number;
  quotaBytes: number;
  quotaSource: QuotaSource;
  /** db size / quota. */
  usage?: number;
  /** The member's etcd flags, when its driver lets us read them (local process or static-pod manifest). */
  flags?: MemberFlags;
  /** Why the flags are unknown. */
  flagsNote?: string;
  /** null = unknown (flags unreadable). */
  autoCompactionDisabled: boolean | null;
}

export type Severity = 'info' | 'warning' | 'critical';

export interface Finding {
  severity: Severity;
  /** Stable identifier for scripts: nospace-alarm, corrupt-alarm, member-down, no-quorum, quota-usage, cert-expired… */
  code: string;
  member?: string;
  message: string;
}

export interface Recommendation {
  /** The runbook to run; absent when the fix is outside runbook (e.g. renew a certificate). */
  runbook?: string;
  reason: string;
  /** The exact command to run. */
  command?: string;
  /** The dry run to look at first. */
  plan?: string;
}

export interface Diagnosis {
  cluster: string;
  /** The inventory file, or "--endpoints". */
  source: string;
  checkedAt: string;
  status: 'healthy' | 'warning' | 'critical';
  leader: { name: string; memberId: string } | null;
  raftTerm: number | null;
  clusterId: string | null;
  /** Every cluster id the members report (more than one: the inventory mixes clusters). */
  clusterIds: string[];
  revision: number | null;
  /** The last compacted revision (0 = never compacted), null when it could not be read. */
  compactRevision: number | null;
  /** revision − compactRevision: history a compaction would drop. */
  compactionGap: number | null;
  members: MemberFacts[];
  learners: string[];
  alarms: { member: string; memberId: string; alarm: string }[];
  /** etcd members the inventory does not name. */
  unknownMembers: { id: string; name: string; peerURLs: string[] }[];
  certificates: CertInfo[];
  /** What could not be read for want of credentials or TLS trust (then no runbook is recommended). */
  cannotRead: CannotRead[];
  /** The inventory's quotaBytes is not what the members report (or they disagree): names both. */
  quotaWarning: string | null;
  findings: Finding[];
  recommendations: Recommendation[];
  notes: string[];
}
