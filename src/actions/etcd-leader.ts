/** Leadership: choose a successor, move leadership (always through the current leader), wait until it holds. */
import { moveLeader } from '../etcd/maintenance.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus } from '../etcd/status.ts';
import { clusterView, findMember, idOf, isLearner, type ClusterView, type MemberProbe } from '../etcd/view.ts';
import { StepError } from '../util/errors.ts';
import { callOpts, etcdPool, pollUntil } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

type Answering = MemberProbe & { ok: true };

/**
 * The best voter to take over: answering, not a learner, not excluded, knows the current leader; members named
 * in `prefer` first (e.g. ones already defragmented), then the most caught-up (highest applied index).
 */
export function pickSuccessor(view: ClusterView, opts: { exclude?: string[]; prefer?: string[] } = {}): Answering | undefined {
  const exclude = new Set(opts.exclude ?? []);
  const prefer = opts.prefer ?? [];
  const candidates = view.members.filter(
    (p): p is Answering => p.ok && !isLearner(p) && !p.status.isLeader && p.status.leaderId !== '0' && !exclude.has(p.name) && !exclude.has(p.status.memberId),
  );
  const applied = (p: Answering) => p.status.raftAppliedIndex ?? p.status.raftIndex;
  candidates.sort((a, b) => {
    const pa = prefer.includes(a.name) ? 0 : 1;
    const pb = prefer.includes(b.name) ? 0 : 1;
    return pa - pb || applied(b) - applied(a);
  });
  return candidates[0];
}

/** Move leadership from the current leader to `to` and wait (bounded) until `to` reports itself leader. */
export async function transferLeadership(ctx: ActionContext, pool: EtcdPool, leader: Answering, to: Answering, waitForMs = 15_000): Promise<void> {
  ctx.log(`moving leadership from ${leader.name} to ${to.name}`, { from: leader.status.memberId, to: to.status.memberId });
  await moveLeader(pool, leader.endpoint, to.status.memberId, callOpts(ctx, { timeoutMs: Math.max(pool.requestTimeoutMs, 10_000) }));
  await pollUntil(
    ctx,
    waitForMs,
    async () => {
      try {
        const s = await memberStatus(pool, to.endpoint, callOpts(ctx));
        return s.isLeader ? { value: true } : { reason: `${to.name} reports leader ${s.leaderId}` };
      } catch (err) {
        return { reason: `${to.name}: ${(err as Error).message}` };
      }
    },
    { what: `leadership moved to ${to.name}`, member: to.name, intervalMs: 100 },
  );
}

type MoveLeaderInput = ActionInput<'etcd.move-leader'>;

/** The member leadership should move away from: input.awayFrom, else the forEach item (as a view entry name). */
function awayName(ctx: ActionContext, view: ClusterView, input: MoveLeaderInput): string | undefined {
  if (input.awayFrom) {
    const p = findMember(view, input.awayFrom);
    if (!p) throw new StepError('invalid', `move-leader: no member ${JSON.stringify(input.awayFrom)} in inventory ${ctx.inventory.name}`);
    return p.name;
  }
  return ctx.item?.member?.name;
}
interface MoveLeaderOutput {
  from: string;
  to: string;
  fromId: string;
  toId: string;
  moved: boolean;
}

function target(ctx: ActionContext, view: ClusterView, input: MoveLeaderInput): Answering {
  if (input.to) {
    const p = findMember(view, input.to);
    if (!p) throw new StepError('invalid', `move-leader: no member ${JSON.stringify(input.to)} in inventory ${ctx.inventory.name}`);
    if (!p.ok) throw new StepError('precondition', `move-leader: ${p.name} does not answer (${p.error})`, { member: p.name });
    if (isLearner(p)) throw new StepError('precondition', `move-leader: ${p.name} is a learner and cannot lead`, { member: p.name });
    return p;
  }
  const away = awayName(ctx, view, input);
  const succ = pickSuccessor(view, away ? { exclude: [away] } : {});
  if (!succ) throw new StepError('precondition', 'move-leader: no other healthy voter to take over leadership');
  return succ;
}

export const moveLeaderAction: ImplementedAction = implement('etcd.move-leader', {
  async probe(ctx, input) {
    const view = await clusterView(etcdPool(ctx), callOpts(ctx));
    const leader = view.leader;
    if (!leader) return { done: false, detail: 'no agreed leader' };
    const out = (to: Answering): MoveLeaderOutput => ({ from: to.name, to: to.name, fromId: to.status.memberId, toId: to.status.memberId, moved: false });
    if (input.to) {
      const p = findMember(view, input.to);
      if (p && idOf(p) === view.leaderId) return { done: true, output: out(leader), detail: `${leader.name} already leads` };
      return { done: false, detail: `${leader.name} leads` };
    }
    const away = awayName(ctx, view, input);
    if (away) {
      if (leader.name !== away) return { done: true, output: out(leader), detail: `${leader.name} leads, not ${away}` };
      return { done: false, detail: `${leader.name} leads` };
    }
    return { done: false, detail: `${leader.name} leads` };
  },
  async plan(ctx, input) {
    const view = await clusterView(etcdPool(ctx), callOpts(ctx));
    if (!view.leader) return 'move leadership: no agreed leader right now (would fail)';
    return `move leadership from ${view.leader.name} to ${target(ctx, view, input).name}`;
  },
  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const view = await clusterView(pool, callOpts(ctx));
    const leader = view.leader;
    if (!leader) throw new StepError('transient', `move-leader: no agreed leader (reported: ${view.leaderIds.join(', ') || 'none'})`);
    const to = target(ctx, view, input);
    if (to.status.memberId === leader.status.memberId) {
      return { from: leader.name, to: to.name, fromId: leader.status.memberId, toId: to.status.memberId, moved: false };
    }
    await transferLeadership(ctx, pool, leader, to);
    return { from: leader.name, to: to.name, fromId: leader.status.memberId, toId: to.status.memberId, moved: true };
  },
});

