/**
 * Members of a `forEach: { members: ... }`, selected and ordered from what the cluster says (learners, the leader).
 * Used by the registry (resolveMembers), so loaded with the first member loop of a run, not at start.
 */
import type { MemberSpec } from '../inventory/types.ts';
import { clusterView, isLearner } from '../etcd/view.ts';
import { StepError } from '../util/errors.ts';
import { callOpts, etcdPool } from './etcd-common.ts';
import type { ActionContext } from './types.ts';

/**
 * Inventory members for a forEach, ordered. `voters`: members etcd does not list as learners (matched by id, peer
 * URL, client URL or name); a member etcd does not list at all is left out. `followers-then-leader`: inventory
 * order with the current leader moved last. When no member answers, every inventory member counts as a voter and
 * the order is as listed (the actions themselves then fail or skip per member).
 */
export async function resolveMembers(
  ctx: ActionContext,
  selector: 'all' | 'voters' | 'learners',
  order: 'as-listed' | 'followers-then-leader',
): Promise<MemberSpec[]> {
  const view = await clusterView(etcdPool(ctx), callOpts(ctx));
  if (!view.memberList) {
    if (selector === 'learners') throw new StepError('transient', `cannot tell learners apart: no member answers (${view.members.map((p) => (p.ok ? p.name : `${p.name}: ${p.error}`)).join('; ')})`);
    ctx.log('no member answers: taking every inventory member, in inventory order');
    return ctx.inventory.members;
  }
  let picked = view.members.filter((p) => {
    if (selector === 'all') return true;
    if (!p.member) {
      ctx.log(`${p.name} is not in etcd's member list: left out of the ${selector}`);
      return false;
    }
    return selector === 'learners' ? isLearner(p) : !isLearner(p);
  });
  if (order === 'followers-then-leader' && view.leaderId) {
    const isLeader = (p: (typeof picked)[number]) => (p.ok ? p.status.memberId : p.member?.id) === view.leaderId;
    picked = [...picked.filter((p) => !isLeader(p)), ...picked.filter(isLeader)];
  } else if (order === 'followers-then-leader') {
    ctx.log(`no agreed leader right now (${view.leaderIds.join(', ') || 'none'}): members in inventory order`);
  }
  return picked.map((p) => p.spec);
}
