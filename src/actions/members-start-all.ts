/**
 * members.start-all: start every member of the cluster at once (a restored cluster: no member can answer before a
 * majority runs, so starting them one after another makes the first wait alone for a quorum that cannot form
 * yet), then watch all of them together until every member answers and they agree on a leader.
 *
 * Each started member is watched for an early exit the whole time: a member whose process is gone (process
 * driver: we can see it) fails the step at once with the end of its log. When that log shows damaged data, the
 * error says so and that starting it again cannot help (it is not retried); anything else (a port still held, a
 * flag) says what the log says.
 */
import { driverFor, describeDriver } from '../drivers/index.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { dataErrorIn } from './member-log.ts';
import { etcdPool, sleep } from './etcd-common.ts';
import { askStatus, memberLogTail } from './members-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type StartAllInput = ActionInput<'members.start-all'>;

export interface StartAllMember {
  member: string;
  /** Started by this step (it was not running). */
  started: boolean;
  pid?: number;
  memberId: string;
  leaderId: string;
}

export interface StartAllOutput {
  members: StartAllMember[];
  leaderId: string;
  /** Step start → every member answered with the same leader. */
  durationMs: number;
}

/** A started member whose process is gone: it will not come back by itself. */
export class MemberStartExitedError extends StepError {
  readonly logTail: string | undefined;
  readonly dataError: string | undefined;
  constructor(member: string, logTail: string | undefined) {
    const dataError = logTail ? dataErrorIn(logTail) : undefined;
    super(
      'failed',
      dataError
        ? `${member} exited right after it was started: its log says its data is damaged (${dataError}); starting it again cannot fix that${logTail ? `; last log lines:\n${logTail}` : ''}`
        : `${member} exited right after it was started${logTail ? `; last log lines:\n${logTail}` : ''}`,
      {
        member,
        hint: dataError
          ? 'its data dir is not usable: restore it (or replace the member); the run can be resumed after'
          : 'read the member log: a wrong flag, or its port in use',
      },
    );
    this.logTail = logTail;
    this.dataError = dataError;
  }
}

/** A process-driver member counts as exited once its process has been gone this long (its pid file is written after spawn). */
const EXIT_GRACE_MS = 300;
const POLL_MS = 100;
/** A member waiting for a quorum accepts the call and answers once it is ready: one call may wait this long. */
const ASK_MS = 2000;

interface Watched {
  spec: MemberSpec;
  started: boolean;
  pid?: number;
  exitedSince?: number;
  asking?: Promise<void>;
  answer?: { memberId: string; leaderId: string };
  reason: string;
}

async function everyoneAnswers(ctx: ActionContext): Promise<StartAllOutput | undefined> {
  const pool = etcdPool(ctx);
  const answers = await Promise.all(ctx.inventory.members.map(async (m) => ({ m, s: await askStatus(ctx, pool, m) })));
  if (!answers.every((a) => a.s.ok && a.s.status.leaderId !== '0')) return undefined;
  const leaders = new Set(answers.map((a) => (a.s.ok ? a.s.status.leaderId : '')));
  if (leaders.size !== 1) return undefined;
  return {
    members: answers.map((a) => ({ member: a.m.name, started: false, memberId: a.s.ok ? a.s.status.memberId : '', leaderId: a.s.ok ? a.s.status.leaderId : '' })),
    leaderId: [...leaders][0]!,
    durationMs: 0,
  };
}

export const startAllAction: ImplementedAction = implement('members.start-all', {
  async probe(ctx) {
    for (const m of ctx.inventory.members) {
      const st = await driverFor(m).status();
      if (!st.running) return { done: false, detail: `${m.name} is not running` };
    }
    const out = await everyoneAnswers(ctx);
    return out ? { done: true, output: out, detail: 'every member runs and answers with the same leader' } : { done: false, detail: 'not every member answers with the same leader yet' };
  },

  async plan(ctx, input) {
    const how = ctx.inventory.members.map((m) => `${m.name}: ${describeDriver(m).start}`).join('; ');
    return `start every member that is not running, all at once (${how}); wait up to ${formatDuration(input.waitFor)} until every member answers and they agree on a leader; fail at once when one exits`;
  },

  async run(ctx, input) {
    const t0 = Date.now();
    const pool = etcdPool(ctx);
    const watched: Watched[] = await Promise.all(
      ctx.inventory.members.map(async (spec): Promise<Watched> => {
        const driver = driverFor(spec);
        const st = await driver.status();
        if (st.running) return { spec, started: false, ...(st.pid ? { pid: st.pid } : {}), reason: 'not asked yet' };
        ctx.log(`starting ${spec.name}`);
        await driver.start({ signal: ctx.signal });
        pool.forget(spec.name);
        return { spec, started: true, reason: 'not asked yet' };
      }),
    );
    const until = Math.min(t0 + input.waitFor, ctx.deadline ?? Infinity);
    for (;;) {
      if (ctx.signal.aborted) throw new StepError('cancelled', 'cancelled');
      await Promise.all(
        watched.map(async (w) => {
          const st = await driverFor(w.spec).status();
          if (st.running) {
            delete w.exitedSince;
            if (st.pid) w.pid = st.pid;
            return;
          }
          w.reason = 'not running';
          delete w.answer;
          // Only a process we can see has exited; a static pod may simply not be started by the kubelet yet.
          if (w.spec.driver.type !== 'process') return;
          w.exitedSince ??= Date.now();
          if (Date.now() - w.exitedSince >= EXIT_GRACE_MS) throw new MemberStartExitedError(w.spec.name, memberLogTail(w.spec));
        }),
      );
      for (const w of watched) {
        if (w.asking || w.exitedSince !== undefined) continue;
        w.asking = askStatus(ctx, pool, w.spec, ASK_MS).then((s) => {
          if (s.ok && s.status.leaderId !== '0') w.answer = { memberId: s.status.memberId, leaderId: s.status.leaderId };
          else {
            delete w.answer;
            w.reason = s.ok ? 'knows no leader yet' : s.error;
          }
        }).finally(() => {
          delete w.asking;
        });
      }
      const leaders = new Set(watched.map((w) => w.answer?.leaderId));
      if (watched.every((w) => w.answer) && leaders.size === 1) {
        const out: StartAllOutput = {
          members: watched.map((w) => ({ member: w.spec.name, started: w.started, ...(w.pid ? { pid: w.pid } : {}), memberId: w.answer!.memberId, leaderId: w.answer!.leaderId })),
          leaderId: [...leaders][0]!,
          durationMs: Date.now() - t0,
        };
        ctx.log(`every member answers (leader ${out.leaderId}) ${formatDuration(out.durationMs)} after the start`);
        return out;
      }
      if (Date.now() >= until) {
        const why = watched.map((w) => `${w.spec.name}: ${w.answer ? `leader ${w.answer.leaderId}` : w.reason}`).join('; ');
        const stepBound = ctx.deadline !== undefined && until === ctx.deadline;
        throw new StepError(stepBound ? 'timeout' : 'transient', `not every member answers with the same leader after ${formatDuration(Date.now() - t0)}: ${why}`, {
          hint: 'look at the member logs (peer URLs reachable? the restored data dirs in place?)',
        });
      }
      await sleep(POLL_MS, ctx.signal);
    }
  },
});
