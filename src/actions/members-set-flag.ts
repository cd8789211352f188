/**
 * members.set-flag: change one etcd flag of one member through its driver and restart it. The runbook runs it
 * as a rolling restart (followers first, leader last, a health gate between members); here, for one member:
 * refuse when its restart would cost the quorum, hand leadership off when it leads, stop, change the flag, start,
 * wait until it answers and knows a leader, and check the running process has the new value.
 *
 * Stop → edit → start (rather than edit → restart) keeps a static pod to one restart: the kubelet restarts a
 * pod by itself when its manifest changes.
 */
import { describeDriver, driverFor } from '../drivers/index.ts';
import { clusterView, isLearner } from '../etcd/view.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { parseBytes } from '../util/units.ts';
import { flagName } from '../etcd/versions.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { callOpts, etcdPool, itemMember } from './etcd-common.ts';
import { POLL_CALL_MS, askStatus, moveLeadershipOff, quorumOf } from './members-common.ts';
import { MemberExitedError, waitStarted } from './members-start.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type SetFlagInput = ActionInput<'members.set-flag'>;

export interface SetFlagOutput {
  member: string;
  flag: string;
  value: string;
  previous?: string;
  restarted: boolean;
  leaderMovedTo?: string;
  pid?: number;
}

/** How long a restarted member may take to answer and find its leader. */
const RESTART_WAIT_MS = 60_000;

/**
 * The value as etcd wants it on its command line. Byte-size flags (`*-bytes`) take a plain integer, so a size
 * like "8GiB" becomes "8589934592" (etcd would refuse to start on "8GiB").
 */
export function flagValue(flag: string, value: string | number | boolean): string {
  if (flag.endsWith('-bytes') && typeof value === 'string') {
    const n = parseBytes(value);
    if (n !== undefined) return String(n);
  }
  return String(value);
}

const valueOf = (input: SetFlagInput): string => flagValue(input.flag, input.value);

/**
 * The flag's name for the etcd the member runs (its own Status): 3.6 drops the `experimental-` prefix of graduated
 * flags and 3.4/3.5 know only the prefixed name (src/etcd/versions.ts RENAMED_IN_3_6), so a runbook written with
 * either name sets the one this member reads. A member that does not answer keeps the name as written.
 */
async function flagFor(ctx: ActionContext, m: MemberSpec, flag: string): Promise<string> {
  const s = await askStatus(ctx, etcdPool(ctx), m);
  if (!s.ok || !s.status.version) return flag;
  const name = flagName(flag, s.status.version);
  if (name !== flag.replace(/^--?/, '')) ctx.log(`${m.name} runs etcd ${s.status.version}: --${flag} is --${name} there`);
  return name;
}

/** Refuse when the other answering voters are not a quorum on their own (this restart would stop the cluster). */
async function checkQuorumWithout(ctx: ActionContext, name: string): Promise<void> {
  const view = await clusterView(etcdPool(ctx), callOpts(ctx, { timeoutMs: POLL_CALL_MS * 2 }));
  const self = view.members.find((p) => p.name === name);
  if (!view.memberList || !self?.ok || isLearner(self)) return; // not answering (restarting cannot make it worse) or a learner
  const voters = view.memberList.filter((m) => !m.isLearner).length;
  if (voters <= 1) {
    ctx.log(`${name} is the only voter: the cluster is unavailable while it restarts`);
    return;
  }
  const others = view.members.filter((p) => p.ok && p.name !== name && !isLearner(p)).map((p) => p.name);
  if (others.length < quorumOf(voters)) {
    throw new StepError('precondition', `restarting ${name} would lose quorum: of ${voters} voters only ${others.length} others answer (${others.join(', ') || 'none'}), ${quorumOf(voters)} needed`, {
      member: name,
      hint: 'bring the other members back first (etcd.cluster-healthy)',
    });
  }
}

export const setFlagAction: ImplementedAction = implement('members.set-flag', {
  async probe(ctx, input) {
    const m = itemMember(ctx, 'members.set-flag');
    const flag = await flagFor(ctx, m, input.flag);
    const driver = driverFor(m);
    const value = valueOf(input);
    const current = await driver.getFlag(flag);
    if (current !== value) return { done: false, detail: `${m.name}: --${flag} is ${current ?? 'not set'}` };
    const st = await driver.status();
    if (!st.running) return { done: false, detail: `${m.name} has --${flag}=${value} configured but is not running` };
    const s = await askStatus(ctx, etcdPool(ctx), m);
    if (!s.ok) return { done: false, detail: `${m.name} runs with --${flag}=${value} but does not answer: ${s.error}` };
    if (s.status.leaderId === '0') return { done: false, detail: `${m.name} runs with --${flag}=${value} but knows no leader` };
    return {
      done: true,
      output: { member: m.name, flag: flag, value, previous: value, restarted: false, ...(st.pid ? { pid: st.pid } : {}) },
      detail: `${m.name} already runs with --${flag}=${value}`,
    };
  },

  async plan(ctx, input) {
    const m = itemMember(ctx, 'members.set-flag');
    const flag = await flagFor(ctx, m, input.flag);
    const d = describeDriver(m);
    const current = await driverFor(m).getFlag(flag);
    const s = await askStatus(ctx, etcdPool(ctx), m);
    const lead = s.ok && s.status.isLeader ? '; it leads: move leadership to another healthy voter first' : '';
    return `${m.name}: --${flag} ${current ?? '(not set)'} → ${valueOf(input)}${lead}; ${d.stop}; ${d.setFlag}; ${d.start}; wait until it answers and knows a leader`;
  },

  async run(ctx, input) {
    const m = itemMember(ctx, 'members.set-flag');
    const flag = await flagFor(ctx, m, input.flag);
    const driver = driverFor(m);
    const pool = etcdPool(ctx);
    const value = valueOf(input);

    await checkQuorumWithout(ctx, m.name);
    const leaderMovedTo = await moveLeadershipOff(ctx, pool, m, ctx.item?.done ?? []);

    ctx.log(`restarting ${m.name} with --${flag}=${value}`);
    await driver.stop();
    pool.forget(m.name);
    let previous: string | undefined;
    try {
      const r = await driver.setFlag(flag, value);
      previous = r.previous;
      ctx.log(r.changed ? `${m.name}: --${flag} ${r.previous ?? '(not set)'} → ${value}` : `${m.name}: --${flag} was already ${value} in its configuration`);
    } catch (err) {
      // Never leave the member down because the edit failed: start it again on its old configuration.
      ctx.log(`changing the flag of ${m.name} failed (${messageOf(err)}): starting it again unchanged`);
      await driver.start({ signal: ctx.signal }).catch(() => {});
      throw err;
    }
    await driver.start({ signal: ctx.signal });
    const waitMs = () => Math.min(RESTART_WAIT_MS, ctx.deadline ? ctx.deadline - Date.now() : RESTART_WAIT_MS);
    let started;
    try {
      started = await waitStarted(ctx, m, waitMs(), { needLeader: true });
    } catch (err) {
      // The process exited at once with the new value: put the old one back and start it again, so a bad value
      // never leaves the member down. (A member that is merely slow is left alone: it may still come up.)
      if (!(err instanceof MemberExitedError) || previous === undefined) throw err;
      ctx.log(`${m.name} exited with --${flag}=${value}: rolling back to ${previous}`);
      await driver.stop();
      await driver.setFlag(flag, previous);
      await driver.start({ signal: ctx.signal });
      pool.forget(m.name);
      await waitStarted(ctx, m, waitMs(), { needLeader: true });
      throw new StepError('failed', `${m.name} would not run with --${flag}=${value} (it exited at once); rolled back to ${previous} and it runs again${err.logTail ? `. Its log said:\n${err.logTail}` : ''}`, {
        member: m.name,
        hint: `check the value of --${flag} against etcd's documentation`,
      });
    }
    const live = await driver.getFlag(flag);
    if (live !== value) {
      throw new StepError('failed', `${m.name} restarted but runs with --${flag}=${live ?? '(not set)'}, not ${value}`, { member: m.name, hint: 'check the member configuration (a later duplicate flag?)' });
    }
    ctx.log(`${m.name} runs with --${flag}=${value} (pid ${started.pid ?? '?'}) and follows leader ${started.leaderId ?? '?'}`);
    return {
      member: m.name,
      flag: flag,
      value,
      ...(previous !== undefined ? { previous } : {}),
      restarted: true,
      ...(leaderMovedTo ? { leaderMovedTo } : {}),
      ...(started.pid ? { pid: started.pid } : {}),
    };
  },

  async verify(ctx, input) {
    const m = itemMember(ctx, 'members.set-flag');
    const flag = await flagFor(ctx, m, input.flag);
    const live = await driverFor(m).getFlag(flag);
    if (live !== valueOf(input)) throw new StepError('failed', `${m.name}: --${flag} is ${live ?? 'not set'} after the restart`, { member: m.name });
  },
});
