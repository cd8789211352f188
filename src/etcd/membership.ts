/** Cluster membership as etcd sees it, with hex ids. */
import { callMember, type CallOpts } from './call.ts';
import { hexIdToDecimal, toHexId } from './ids.ts';
import type { EtcdPool } from './pool.ts';

export interface EtcdMember {
  /** Hex, like etcdctl. */
  id: string;
  /** Empty for a member that was added but has not started yet. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

interface MemberWire {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner?: boolean;
}

function fromWire(m: MemberWire): EtcdMember {
  return { id: toHexId(m.ID), name: m.name, peerURLs: m.peerURLs ?? [], clientURLs: m.clientURLs ?? [], isLearner: m.isLearner === true };
}

export interface MemberListResult {
  clusterId: string;
  members: EtcdMember[];
}

/** The member list (linearizable by default: goes through the leader, so a partitioned member cannot answer stale). */
export async function memberList(pool: EtcdPool, endpointOrName: string, opts?: CallOpts & { linearizable?: boolean }): Promise<MemberListResult> {
  const res = await callMember(pool, endpointOrName, 'member list', (c, o) => c.cluster.memberList({ linearizable: opts?.linearizable ?? true }, o), opts);
  return { clusterId: toHexId(res.header.cluster_id), members: res.members.map((m) => fromWire(m as MemberWire)) };
}

/** Add a member (as a learner by default). Fails with "unhealthy cluster" (transient) right after another change. */
export async function memberAdd(pool: EtcdPool, endpointOrName: string, peerURLs: string[], isLearner = true, opts?: CallOpts): Promise<{ member: EtcdMember; members: EtcdMember[] }> {
  const res = await callMember(pool, endpointOrName, `member add ${peerURLs.join(',')}`, (c, o) => c.cluster.memberAdd({ peerURLs, isLearner }, o), opts);
  return { member: fromWire(res.member as MemberWire), members: res.members.map((m) => fromWire(m as MemberWire)) };
}

/** Remove a member by hex id. An id that is not a member fails with NotFound (kind `failed`): check the list first. */
export async function memberRemove(pool: EtcdPool, endpointOrName: string, idHex: string, opts?: CallOpts): Promise<EtcdMember[]> {
  const res = await callMember(pool, endpointOrName, `member remove ${idHex}`, (c, o) => c.cluster.memberRemove({ ID: hexIdToDecimal(idHex) }, o), opts);
  return res.members.map((m) => fromWire(m as MemberWire));
}

/** Promote a learner. Fails with FailedPrecondition ("not in sync") until it has caught up: poll with backoff. */
export async function memberPromote(pool: EtcdPool, endpointOrName: string, idHex: string, opts?: CallOpts): Promise<EtcdMember[]> {
  const res = await callMember(pool, endpointOrName, `member promote ${idHex}`, (c, o) => c.cluster.memberPromote({ ID: hexIdToDecimal(idHex) }, o), opts);
  return res.members.map((m) => fromWire(m as MemberWire));
}
