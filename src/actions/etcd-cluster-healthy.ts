/**
 * etcd.cluster-healthy, the final verification, polled up to `waitFor`: one leader, one cluster id, every voter
 * answering, no alarms, equal KV hashes.
 */
import { hashKV, type KVHash } from '../etcd/maintenance.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus, type MemberStatus } from '../etcd/status.ts';
import { clusterView, isLearner, type MemberProbe } from '../etcd/view.ts';
import { sameURL } from '../etcd/ids.ts';
import { isAlreadyCompacted } from '../etcd/errors.ts';
import { StepError } from '../util/errors.ts';
import { callOpts, etcdPool, pollUntil, preflightOutput } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

const HASH_TIMEOUT_MS = 60_000;

export type ClusterHealthyInput = ActionInput<'etcd.cluster-healthy'>;

export interface ClusterHealthyOutput {
  clusterId: string;
  leader: string;
  leaderId: string;
  voters: string[];
  learners: string[];
  /** Voters down that preflight allowed (allowUnreachable): not checked. */
  unreachable: string[];
  revision: number;
  hash?: { revision: number; value: number };
}

/**
 * KV hashes of every voter at one revision. Returns the common hash, or a reason to look again (members at
 * different revisions that could not be compared yet). Different hashes at the same revision are not a passing
 * state: the data diverged, and waiting will not fix it.
 */
export async function compareHashes(ctx: ActionContext, pool: EtcdPool, endpoints: { name: string; endpoint: string }[]): Promise<{ value: { revision: number; value: number } } | { reason: string }> {
  // Hashing reads the whole keyspace: on a multi-GB backend that takes longer than a plain request.
  const opts = callOpts(ctx, { timeoutMs: Math.max(pool.requestTimeoutMs, HASH_TIMEOUT_MS) });
  const at = async (rev: number) => Promise.all(endpoints.map(async (e) => ({ ...e, h: await hashKV(pool, e.endpoint, rev, opts) })));
  let hashes = await at(0);
  const revs = new Set(hashes.map((x) => x.h.revision));
  if (revs.size > 1) {
    const rev = Math.min(...revs);
    try {
      hashes = await at(rev);
    } catch (err) {
      if (isAlreadyCompacted(err)) return { reason: `members at different revisions (${[...revs].join(', ')}) and ${rev} is compacted` };
      throw err;
    }
  }
  const first: KVHash = hashes[0]!.h;
  const differ = hashes.filter((x) => x.h.hash !== first.hash);
  if (differ.length > 0) {
    throw new StepError('precondition', `KV hashes differ at revision ${first.revision}: ${hashes.map((x) => `${x.name} ${x.h.hash}`).join(', ')}`, {
      hint: 'the members hold different data: find the odd one out (etcdctl endpoint hashkv) and replace it',
    });
  }
  return { value: { revision: first.revision, value: first.hash } };
}

async function checkCluster(ctx: ActionContext, pool: EtcdPool, input: ClusterHealthyInput, moved: Set<string>): Promise<{ value: ClusterHealthyOutput } | { reason: string }> {
  const view = await clusterView(pool, callOpts(ctx));
  if (!view.memberList) return { reason: `no member answers the member list${view.errors.length ? `: ${view.errors.join('; ')}` : ''}` };
  const voterIds = new Set(view.memberList.filter((m) => !m.isLearner).map((m) => m.id));
  // Members preflight let the run go on without may still be down: reported, not waited for (quorum still is).
  const allowed = new Set(preflightOutput(ctx)?.unreachable ?? []);
  const voters: { name: string; endpoint: string; status?: MemberStatus }[] = view.members.flatMap((p) => (p.ok && !isLearner(p) ? [{ name: p.name, endpoint: p.endpoint, status: p.status }] : []));
  // A voter that does not answer on the inventory's client URL but advertises another one (a replacement started
  // on a new address, before the operator updates the inventory) is asked there before it counts as down.
  const downVoters: MemberProbe[] = [];
  for (const p of view.members.filter((x) => !x.ok && !isLearner(x))) {
    const elsewhere = p.member?.clientURLs.find((u) => !sameURL(u, p.endpoint));
    if (elsewhere) {
      try {
        voters.push({ name: p.name, endpoint: elsewhere, status: await memberStatus(pool, elsewhere, callOpts(ctx)) });
        if (!moved.has(p.name)) ctx.log(`${p.name} answers on its advertised client URL ${elsewhere}, not on the inventory's ${p.endpoint}: update the inventory`);
        moved.add(p.name);
        continue;
      } catch {
        /* down there too */
      }
    }
    downVoters.push(p);
  }
  const down = downVoters.filter((p) => !allowed.has(p.name));
  if (down.length > 0) return { reason: `not answering: ${down.map((p) => `${p.name} (${p.ok ? '' : p.error})`).join('; ')}` };
  const quorum = Math.floor(voterIds.size / 2) + 1;
  if (voterIds.size - downVoters.length < quorum) return { reason: `only ${voterIds.size - downVoters.length} of ${voterIds.size} voters answer (quorum ${quorum})` };
  for (const m of view.unknownMembers.filter((x) => !x.isLearner)) {
    const url = m.clientURLs[0];
    if (!url) return { reason: `voter ${m.name || m.id} has no client URL (not started?)` };
    try {
      voters.push({ name: m.name || m.id, endpoint: url, status: await memberStatus(pool, url, callOpts(ctx)) });
    } catch (err) {
      return { reason: `voter ${m.name || m.id} (not in the inventory): ${(err as Error).message}` };
    }
  }
  if (input.expectVoters !== undefined && voterIds.size !== input.expectVoters) return { reason: `${voterIds.size} voters, expected ${input.expectVoters}` };
  if (view.clusterIds.length !== 1) return { reason: `members report different cluster ids: ${view.clusterIds.join(', ')}` };
  const leaders = new Set(voters.map((v) => v.status!.leaderId));
  if (leaders.size !== 1 || leaders.has('0')) return { reason: `no agreed leader: ${voters.map((v) => `${v.name}→${v.status!.leaderId}`).join(' ')}` };
  const leaderId = [...leaders][0]!;
  if (!voterIds.has(leaderId)) return { reason: `leader ${leaderId} is not a voter in the member list` };
  if (view.alarms === null) return { reason: 'alarm list unavailable' };
  if (view.alarms.length > 0) return { reason: `alarms: ${view.alarms.map((a) => `${a.alarm}@${a.memberId}`).join(', ')}` };
  let hash: ClusterHealthyOutput['hash'];
  if (input.hashes) {
    const h = await compareHashes(ctx, pool, voters);
    if ('reason' in h) return h;
    hash = h.value;
  }
  const leader = voters.find((v) => v.status!.memberId === leaderId)?.name ?? leaderId;
  return {
    value: {
      clusterId: view.clusterIds[0]!,
      leader,
      leaderId,
      voters: voters.map((v) => v.name),
      learners: view.members.filter((p) => isLearner(p)).map((p) => p.name),
      unreachable: downVoters.map((p) => p.name),
      revision: view.revision,
      ...(hash ? { hash } : {}),
    },
  };
}

export const clusterHealthyAction: ImplementedAction = implement('etcd.cluster-healthy', {
  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const moved = new Set<string>();
    const out = await pollUntil(
      ctx,
      input.waitFor,
      async () => {
        try {
          return await checkCluster(ctx, pool, input, moved);
        } catch (err) {
          if (err instanceof StepError && (err.kind === 'precondition' || err.kind === 'invalid' || err.kind === 'cancelled')) throw err;
          return { reason: (err as Error).message };
        }
      },
      { what: 'cluster healthy', intervalMs: 250 },
    );
    const skipped = out.unreachable.length ? `; not checked (down, allowed by preflight): ${out.unreachable.join(', ')}` : '';
    ctx.log(`cluster healthy: leader ${out.leader}, voters ${out.voters.join(', ')}${out.hash ? `, equal hashes at revision ${out.hash.revision}` : ''}${skipped}`);
    return out;
  },
});
