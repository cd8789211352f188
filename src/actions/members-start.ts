/**
 * members.start: start one member (a forEach item) through its driver.
 *
 * A restarted etcd member serves clients only once it is part of a quorum (it accepts TCP and leaves calls
 * hanging before that). So start waits until the member answers when enough members run to form a quorum;
 * when too few run yet (the first members of a full-cluster start), it only checks that the process stays up,
 * and the cluster-wide health check that follows waits for the rest.
 */
import { driverFor, describeDriver } from '../drivers/index.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { etcdPool, itemMember, pollUntil } from './etcd-common.ts';
import { askStatus, memberLogTail, quorumOf } from './members-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

/** The member's process exited right after a start (bad data, bad flag, port in use): it will not come back by itself. */
export class MemberExitedError extends StepError {
  readonly logTail: string | undefined;
  constructor(member: string, logTail: string | undefined) {
    super('failed', `${member} exited right after it was started${logTail ? `; last log lines:\n${logTail}` : ''}`, {
      member,
      hint: 'read the member log: damaged data dir, a wrong flag, or its port in use',
    });
    this.logTail = logTail;
  }
}

export type StartInput = ActionInput<'members.start'>;

export interface StartOutput {
  member: string;
  pid?: number;
  answering: boolean;
  /** Too few members run for a quorum: the member cannot answer yet (its process is up). */
  waitingForQuorum?: true;
  memberId?: string;
  leaderId?: string;
}

/** How many inventory members run, per their drivers (a member whose driver cannot tell counts as not running). */
async function runningCount(members: MemberSpec[]): Promise<number> {
  const states = await Promise.all(members.map(async (m) => {
    try {
      return (await driverFor(m).status()).running;
    } catch {
      return false;
    }
  }));
  return states.filter(Boolean).length;
}

/** After a start: until the member answers, or (no quorum possible yet) its process has stayed up for a while. */
export async function waitStarted(ctx: ActionContext, m: MemberSpec, waitForMs: number, opts: { needLeader?: boolean } = {}): Promise<StartOutput> {
  const driver = driverFor(m);
  const pool = etcdPool(ctx);
  const started = Date.now();
  const settleMs = 2000;
  const n = ctx.inventory.members.length;
  let exitedSince: number | undefined;
  return pollUntil<StartOutput>(
    ctx,
    waitForMs,
    async (): Promise<{ value: StartOutput } | { reason: string }> => {
      const st = await driver.status();
      if (!st.running) {
        // A process that exits at once (bad data, bad flag, port taken) never comes back by itself.
        exitedSince ??= Date.now();
        if (m.driver.type === 'process' && Date.now() - exitedSince >= 500) {
          throw new MemberExitedError(m.name, memberLogTail(m));
        }
        return { reason: `${m.name} is not running (yet)` };
      }
      exitedSince = undefined;
      const s = await askStatus(ctx, pool, m);
      if (s.ok && (!opts.needLeader || s.status.leaderId !== '0')) {
        return { value: { member: m.name, ...(st.pid ? { pid: st.pid } : {}), answering: true, memberId: s.status.memberId, leaderId: s.status.leaderId } };
      }
      if (!opts.needLeader && Date.now() - started >= settleMs) {
        const running = await runningCount(ctx.inventory.members);
        if (running < quorumOf(n)) {
          ctx.log(`${m.name} runs (pid ${st.pid ?? '?'}) but cannot answer before a quorum forms: ${running} of ${n} members run, ${quorumOf(n)} needed`);
          return { value: { member: m.name, ...(st.pid ? { pid: st.pid } : {}), answering: false, waitingForQuorum: true as const } };
        }
      }
      return { reason: s.ok ? `${m.name} knows no leader` : `${m.name} does not answer: ${s.error}` };
    },
    { what: `${m.name} answering`, member: m.name, intervalMs: 250, hint: 'look at the member log' },
  );
}

export const startAction: ImplementedAction = implement('members.start', {
  async probe(ctx) {
    const m = itemMember(ctx, 'members.start');
    const st = await driverFor(m).status();
    if (!st.running) return { done: false, detail: `${m.name} is not running` };
    const s = await askStatus(ctx, etcdPool(ctx), m);
    if (!s.ok) return { done: false, detail: `${m.name} runs but does not answer: ${s.error}` };
    return { done: true, output: { member: m.name, ...(st.pid ? { pid: st.pid } : {}), answering: true, memberId: s.status.memberId, leaderId: s.status.leaderId }, detail: `${m.name} runs and answers` };
  },
  async plan(ctx, input) {
    const m = itemMember(ctx, 'members.start');
    return `start ${m.name}: ${describeDriver(m).start}; wait up to ${formatDuration(input.waitFor)} until it answers`;
  },
  async run(ctx, input) {
    const m = itemMember(ctx, 'members.start');
    ctx.log(`starting ${m.name}`);
    await driverFor(m).start({ signal: ctx.signal });
    etcdPool(ctx).forget(m.name);
    const out = await waitStarted(ctx, m, input.waitFor);
    if (out.answering) ctx.log(`${m.name} answers (pid ${out.pid ?? '?'})`);
    return out;
  },
});
