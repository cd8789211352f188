/** etcd.member-healthy: a member answers status, knows a leader, has no alarm of its own; polled up to `waitFor` (a gate between members). */
import { alarmsFromStatusErrors } from '../etcd/maintenance.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus, type MemberStatus } from '../etcd/status.ts';
import { clusterView, findMember } from '../etcd/view.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { formatBytes } from '../util/units.ts';
import { atQuota, callOpts, effectiveQuota, etcdPool, pollUntil, preflightOutput } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type MemberHealthyInput = ActionInput<'etcd.member-healthy'>;

export interface MemberHealthyOutput {
  member: string;
  memberId: string;
  leaderId: string;
  dbSize: number;
  isLearner: boolean;
  /** Alarms raised for this member that do not block (NOSPACE with the db back under the quota). */
  alarms: string[];
  /** Why the member was not checked (it was down at preflight and allowUnreachable was set). */
  skipped?: string;
}

async function targetMember(ctx: ActionContext, pool: EtcdPool, input: MemberHealthyInput): Promise<MemberSpec> {
  if (input.member) {
    const byName = pool.spec(input.member);
    if (byName) return byName;
    const p = findMember(await clusterView(pool, callOpts(ctx)), input.member);
    if (!p) throw new StepError('invalid', `member-healthy: no member ${JSON.stringify(input.member)} in inventory ${ctx.inventory.name}`);
    return p.spec;
  }
  if (ctx.item?.member) return ctx.item.member;
  throw new StepError('invalid', 'member-healthy: name a member (with: { member: ... }) or use it in a member forEach / as a gate');
}

/**
 * One check. NOSPACE raised for the member blocks only while its db is still at the quota (see atQuota): during
 * nospace-recovery the alarm stays armed (by design) until every member is defragmented, and the gate that runs
 * between members takes no input. CORRUPT always fails at once (waiting does not fix it).
 */
function judge(s: MemberStatus, quotaBytes: number): { value: MemberHealthyOutput } | { reason: string } {
  if (s.leaderId === '0') return { reason: `${s.name} knows no leader` };
  const own = alarmsFromStatusErrors(s.errors).filter((a) => a.memberId === s.memberId);
  if (own.some((a) => a.alarm === 'CORRUPT')) {
    throw new StepError('precondition', `${s.name} (${s.memberId}) has a CORRUPT alarm`, { member: s.name, hint: 'its data differs from the others: replace it or restore' });
  }
  if (own.some((a) => a.alarm === 'NOSPACE') && atQuota(s.dbSize, quotaBytes)) {
    return { reason: `${s.name} has a NOSPACE alarm and its db (${formatBytes(s.dbSize)}) is still at the quota (${formatBytes(quotaBytes)})` };
  }
  return { value: { member: s.name, memberId: s.memberId, leaderId: s.leaderId, dbSize: s.dbSize, isLearner: s.isLearner, alarms: own.map((a) => a.alarm) } };
}

export const memberHealthyAction: ImplementedAction = implement('etcd.member-healthy', {
  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const spec = await targetMember(ctx, pool, input);
    const quota = await effectiveQuota(ctx);
    // As the gate of a member that preflight let the run go on without: one look, and no waiting when it is still down.
    if (!input.member && preflightOutput(ctx)?.unreachable.includes(spec.name)) {
      try {
        const r = judge(await memberStatus(pool, spec.clientURL, callOpts(ctx)), quota.bytes);
        if ('value' in r) return r.value;
        ctx.log(`${spec.name}: ${r.reason} (preflight allowed it to be unreachable: not waiting)`);
      } catch (err) {
        if (err instanceof StepError && err.kind === 'precondition') throw err;
        ctx.log(`${spec.name} still does not answer (preflight allowed it to be unreachable: not waiting)`);
      }
      return { member: spec.name, memberId: '', leaderId: '', dbSize: 0, isLearner: false, alarms: [], skipped: 'unreachable (allowed by preflight)' };
    }
    return pollUntil(
      ctx,
      input.waitFor,
      async () => {
        try {
          return judge(await memberStatus(pool, spec.clientURL, callOpts(ctx)), quota.bytes);
        } catch (err) {
          if (err instanceof StepError && (err.kind === 'precondition' || err.kind === 'invalid' || err.kind === 'cancelled')) throw err;
          return { reason: (err as Error).message };
        }
      },
      { what: `${spec.name} healthy`, member: spec.name, intervalMs: 200 },
    );
  },
});
