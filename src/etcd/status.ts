/** Member status as numbers and hex ids (the wire gives 64-bit values as decimal strings). */
import type { IStatusResponse } from 'etcd3';
import { callMember, type CallOpts } from './call.ts';
import { isZeroId, toHexId } from './ids.ts';
import type { EtcdPool } from './pool.ts';

export interface MemberStatus {
  /** The client URL asked. */
  endpoint: string;
  /** Inventory name, or the endpoint when it is not in the inventory. */
  name: string;
  /** Hex, like etcdctl. */
  memberId: string;
  /** Hex; "0" when the member knows no leader. */
  leaderId: string;
  clusterId: string;
  version: string;
  dbSize: number;
  /** 0 = not reported (etcd < 3.4): then everything counts as reclaimable, so a defrag is never skipped wrongly. */
  dbSizeInUse: number;
  /** The member's current store revision. */
  revision: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex?: number;
  isLearner: boolean;
  isLeader: boolean;
  /** e.g. "memberID:17161531507652365892 alarm:NOSPACE " (etcd reports active alarms here). */
  errors: string[];
}

/** The fields of StatusResponse etcd 3.4 sends that etcd3 1.1.2's typings leave out. */
type StatusWire = IStatusResponse & { raftAppliedIndex?: string; dbSizeInUse?: string; isLearner?: boolean; errors?: string[] };

export function statusFromWire(endpoint: string, name: string, raw: IStatusResponse): MemberStatus {
  const r = raw as StatusWire;
  const memberId = toHexId(r.header.member_id);
  const leaderId = isZeroId(r.leader) ? '0' : toHexId(r.leader);
  return {
    endpoint,
    name,
    memberId,
    leaderId,
    clusterId: toHexId(r.header.cluster_id),
    version: r.version,
    dbSize: Number(r.dbSize),
    dbSizeInUse: Number(r.dbSizeInUse ?? 0),
    revision: Number(r.header.revision),
    raftIndex: Number(r.raftIndex),
    raftTerm: Number(r.raftTerm),
    ...(r.raftAppliedIndex !== undefined ? { raftAppliedIndex: Number(r.raftAppliedIndex) } : {}),
    isLearner: r.isLearner === true,
    isLeader: memberId === leaderId,
    errors: r.errors ?? [],
  };
}

/** Status of one member (by inventory name or client URL). */
export async function memberStatus(pool: EtcdPool, endpointOrName: string, opts?: CallOpts): Promise<MemberStatus> {
  const endpoint = pool.endpointOf(endpointOrName);
  const raw = await callMember(pool, endpoint, 'status', (c, o) => c.maintenance.status(o), opts);
  return statusFromWire(endpoint, pool.nameOf(endpoint), raw);
}

/** Bytes a defragmentation would give back (0 when unknown). */
export function reclaimable(s: Pick<MemberStatus, 'dbSize' | 'dbSizeInUse'>): number {
  return Math.max(0, s.dbSize - s.dbSizeInUse);
}
