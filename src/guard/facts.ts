/**
 * What one poll saw, as the variables the rules see. Pure: the samples come from src/guard/poll.ts.
 *
 * Every number is present (0 when unknown, with `reachable` or `quotaSource` saying so): a CEL comparison with null
 * is an error, and a rule must not fail because one member did not answer.
 */
import { alarmsFromStatusErrors } from '../etcd/maintenance.ts';
import type { MetricsFacts } from '../etcd/metrics.ts';
import type { MemberStatus } from '../etcd/status.ts';
import type { Inventory } from '../inventory/types.ts';
import { ETCD_DEFAULT_QUOTA_BYTES } from '../etcd/quota.ts';


/** One member at one poll: its status and its /metrics, each possibly missing. */
export interface MemberSample {
  name: string;
  endpoint: string;
  status?: MemberStatus;
  metrics?: MetricsFacts;
  /** Why status failed (the member counts as unreachable). */
  error?: string;
  /** Why /metrics failed (the quota then comes from the inventory, else the default). */
  metricsError?: string;
}

export interface MemberFacts {
  name: string;
  reachable: boolean;
  leader: boolean;
  learner: boolean;
  dbSize: number;
  dbInUse: number;
  quota: number;
  /** member = its own etcd_server_quota_backend_bytes; inventory; default = etcd's 2 GiB (not confirmed). */
  quotaSource: 'member' | 'inventory' | 'default';
  /** dbSize / quota. */
  usage: number;
  /** (dbSize − in use) / dbSize. */
  fragmentation: number;
  /** dbSize − in use: what a defrag gives back. */
  reclaimable: number;
  revision: number;
  compactRevision: number;
  alarms: string[];
  version: string;
  /** Why status failed ('' when it answered). */
  error: string;
}

export interface ClusterFacts {
  name: string;
  members: number;
  reachable: number;
  /** The leader's inventory name ('' when none is known). */
  leader: string;
  revision: number;
  /** The last compaction's revision (0 = never, or unknown: see compactionKnown). */
  compactRevision: number;
  compactionKnown: boolean;
  /** revision − compactRevision: history written since the last compaction (0 when unknown). */
  history: number;
  /** From the members' flags: true when every readable member compacts by itself, false when one does not, null unknown. */
  autoCompaction: boolean | null;
  /** A Kubernetes control plane on top (kube-apiserver compacts etcd every 5 minutes by default). */
  kubernetes: boolean;
  alarms: string[];
}

export interface GuardFacts {
  at: number;
  cluster: ClusterFacts;
  members: MemberFacts[];
}

export function memberFacts(s: MemberSample, inventory: Inventory): MemberFacts {
  const st = s.status;
  const m = s.metrics ?? {};
  const dbSize = st?.dbSize ?? m.dbTotalBytes ?? 0;
  const inUseRaw = st && st.dbSizeInUse > 0 ? st.dbSizeInUse : m.dbInUseBytes ?? 0;
  const dbInUse = inUseRaw > 0 ? inUseRaw : dbSize;
  const quota = m.quotaBytes && m.quotaBytes > 0 ? m.quotaBytes : inventory.quotaBytes && inventory.quotaBytes > 0 ? inventory.quotaBytes : ETCD_DEFAULT_QUOTA_BYTES;
  const quotaSource = m.quotaBytes && m.quotaBytes > 0 ? 'member' : inventory.quotaBytes && inventory.quotaBytes > 0 ? 'inventory' : 'default';
  const reclaimable = Math.max(0, dbSize - dbInUse);
  return {
    name: s.name,
    reachable: st !== undefined,
    leader: st?.isLeader ?? false,
    learner: st?.isLearner ?? m.isLearner ?? false,
    dbSize,
    dbInUse,
    quota,
    quotaSource,
    usage: dbSize / quota,
    fragmentation: dbSize > 0 ? reclaimable / dbSize : 0,
    reclaimable,
    revision: st?.revision ?? m.currentRevision ?? 0,
    compactRevision: m.compactRevision ?? 0,
    alarms: alarmsFromStatusErrors(st?.errors ?? []).map((a) => a.alarm),
    version: st?.version ?? m.serverVersion ?? '',
    error: st ? '' : s.error ?? '',
  };
}

export function buildFacts(samples: MemberSample[], inventory: Inventory, autoCompaction: boolean | null, at: number): GuardFacts {
  const members = samples.map((s) => memberFacts(s, inventory));
  const reachable = members.filter((m) => m.reachable);
  const revision = Math.max(0, ...members.map((m) => m.revision));
  const compactKnown = samples.some((s) => s.metrics?.compactRevision !== undefined);
  const compactRevision = Math.max(0, ...members.map((m) => m.compactRevision));
  return {
    at,
    members,
    cluster: {
      name: inventory.name,
      members: members.length,
      reachable: reachable.length,
      leader: members.find((m) => m.leader)?.name ?? '',
      revision,
      compactRevision,
      compactionKnown: compactKnown,
      history: compactKnown ? Math.max(0, revision - compactRevision) : 0,
      autoCompaction,
      kubernetes: inventory.kubernetes !== undefined || inventory.members.some((m) => m.driver.type === 'static-pod'),
      alarms: [...new Set(members.flatMap((m) => m.alarms))],
    },
  };
}
