/**
 * etcd.alarm-disarm. NOSPACE is disarmed only when every member's db is clearly below the
 * quota (under 95% of it): otherwise the next write raises it again. Every disarm is checked against the alarm list afterwards (the
 * client does not fail when it disarmed nothing).
 */
import { disarmAlarm, listAlarms, type Alarm, type AlarmName } from '../etcd/maintenance.ts';
import { clusterView, idOf, type ClusterView } from '../etcd/view.ts';
import { StepError } from '../util/errors.ts';
import { formatBytes } from '../util/units.ts';
import { requestTarget } from './etcd-compact.ts';
import { atQuota, callOpts, effectiveQuota, etcdPool, NEAR_QUOTA_FRACTION } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type DisarmInput = ActionInput<'etcd.alarm-disarm'>;

export interface DisarmOutput {
  alarm: AlarmName;
  disarmed: { member: string; memberId: string }[];
  alreadyClear: boolean;
  quotaBytes?: number;
  dbSizes?: Record<string, number>;
}

function memberName(view: ClusterView, id: string): string {
  return view.members.find((p) => idOf(p) === id)?.name ?? view.memberList?.find((m) => m.id === id)?.name ?? id;
}

const matching = (alarms: Alarm[], alarm: AlarmName) => alarms.filter((a) => a.alarm === alarm);

async function belowQuotaCheck(ctx: ActionContext, view: ClusterView, input: DisarmInput): Promise<{ quotaBytes: number; dbSizes: Record<string, number> }> {
  const quota = await effectiveQuota(ctx, input.quotaBytes);
  const dbSizes: Record<string, number> = {};
  const over: string[] = [];
  for (const p of view.members) {
    if (!p.ok) {
      ctx.log(`${p.name} does not answer (${p.error}): its db size is unknown; if it is over the quota it raises ${input.alarm} again when it is back`);
      continue;
    }
    dbSizes[p.name] = p.status.dbSize;
    if (atQuota(p.status.dbSize, quota.bytes)) over.push(`${p.name} ${formatBytes(p.status.dbSize)} (${p.status.dbSize} bytes)`);
  }
  if (over.length > 0) {
    throw new StepError('precondition', `not disarming ${input.alarm}: db size above ${Math.round(NEAR_QUOTA_FRACTION * 100)}% of the quota of ${formatBytes(quota.bytes)} (${quota.bytes} bytes, ${quota.source}) on ${over.join(', ')}; the next write would raise it again`, {
      ...(over.length === 1 ? { member: over[0]!.split(' ')[0]! } : {}),
      hint: 'compact and defragment first (or raise --quota-backend-bytes)',
    });
  }
  return { quotaBytes: quota.bytes, dbSizes };
}

export const alarmDisarmAction: ImplementedAction = implement('etcd.alarm-disarm', {
  async probe(ctx, input) {
    const view = await clusterView(etcdPool(ctx), callOpts(ctx));
    requestTarget(view); // fails when no voter answers
    const left = matching(view.alarms ?? [], input.alarm);
    if (left.length === 0) return { done: true, output: { alarm: input.alarm, disarmed: [], alreadyClear: true }, detail: `no ${input.alarm} alarm` };
    return { done: false, detail: `${input.alarm} armed for ${left.map((a) => a.memberId).join(', ')}` };
  },
  async plan(ctx, input) {
    const view = await clusterView(etcdPool(ctx), callOpts(ctx));
    const armed = matching(view.alarms ?? [], input.alarm);
    if (armed.length === 0) return `nothing to do: no ${input.alarm} alarm`;
    const who = armed.map((a) => memberName(view, a.memberId)).join(', ');
    if (input.alarm !== 'NOSPACE' || !input.requireBelowQuota) return `disarm ${input.alarm} for ${who}`;
    const quota = await effectiveQuota(ctx, input.quotaBytes);
    const full = view.members.flatMap((p) => (p.ok && atQuota(p.status.dbSize, quota.bytes) ? [`${p.name} ${formatBytes(p.status.dbSize)} (${Math.round((100 * p.status.dbSize) / quota.bytes)}%)`] : []));
    const gate = `once every member's db is below ${Math.round(NEAR_QUOTA_FRACTION * 100)}% of the quota of ${formatBytes(quota.bytes)} (${quota.source})`;
    // Planned before compact/defrag ran: sizes now are not sizes then.
    return `disarm ${input.alarm} for ${who} ${gate}${full.length ? ` (now: ${full.join(', ')}; refuses if the earlier steps do not shrink them)` : ''}`;
  },
  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const view = await clusterView(pool, callOpts(ctx));
    const to = requestTarget(view);
    const armed = matching(view.alarms ?? (await listAlarms(pool, to.endpoint, callOpts(ctx))), input.alarm);
    if (armed.length === 0) return { alarm: input.alarm, disarmed: [], alreadyClear: true };
    const check = input.alarm === 'NOSPACE' && input.requireBelowQuota ? await belowQuotaCheck(ctx, view, input) : undefined;
    // One request per member's alarm (etcd disarms exactly the {member, alarm} given), all at once; verify then
    // reads the list back: the client does not fail when a request disarmed nothing.
    ctx.log(`disarming ${input.alarm} of ${armed.map((a) => `${memberName(view, a.memberId)} (${a.memberId})`).join(', ')}`);
    await Promise.all(armed.map((a) => disarmAlarm(pool, to.endpoint, a.memberId, input.alarm, callOpts(ctx))));
    return {
      alarm: input.alarm,
      disarmed: armed.map((a) => ({ member: memberName(view, a.memberId), memberId: a.memberId })),
      alreadyClear: false,
      ...(check ?? {}),
    };
  },
  async verify(ctx, input, output) {
    if (output.alreadyClear) return;
    const pool = etcdPool(ctx);
    const view = await clusterView(pool, callOpts(ctx));
    const to = requestTarget(view);
    const left = matching(await listAlarms(pool, to.endpoint, callOpts(ctx)), input.alarm);
    if (left.length > 0) {
      throw new StepError('failed', `${input.alarm} still armed for ${left.map((a) => memberName(view, a.memberId)).join(', ')} after disarming`, {
        hint: 'another write may have raised it again: check db sizes against the quota',
      });
    }
  },
});
