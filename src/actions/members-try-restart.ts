/**
 * members.try-restart: after a power loss, start every member that is not running on its existing data (WAL
 * replay usually suffices) and wait up to `waitFor` for a healthy quorum: an agreed leader, a majority answering,
 * and a write that goes through. It reports; it never fails because the cluster did not recover (the runbook
 * branches on `recovered` and restores from a snapshot then). A member that exits at once is reported with the
 * tail of its log, and when too many did for a quorum to form, it stops waiting early.
 *
 * `recovered: false` leads a runbook to a destructive restore, so it is only reported on positive evidence: members
 * that do not run or exit after a start (a permanent data error in their own log is not retried), or no healthy
 * quorum after the wait. A cluster this tool cannot READ (credentials required, TLS refused) is not evidence of
 * anything: the step fails with what to fix in the inventory, and nothing is stopped or restored.
 */
import { driverFor } from '../drivers/index.ts';
import { accessHint, errorClass, isNoSpace, shortGrpcMessage } from '../etcd/errors.ts';
import { putDeleteCanary } from '../etcd/kv.ts';
import { clusterView, unreadable, type ClusterView } from '../etcd/view.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { callOpts, etcdPool, sleep } from './etcd-common.ts';
import { POLL_CALL_MS, memberLogTail, quorumOf } from './members-common.ts';
import { permanentDataError } from './member-log.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type TryRestartInput = ActionInput<'members.try-restart'>;

export interface TryRestartMember {
  name: string;
  running: boolean;
  answering: boolean;
  /** Started by this step (it was not running). */
  started: boolean;
  pid?: number;
  /** Why it could not be started or asked (driver missing, start failed). */
  error?: string;
  /** It was started and exited: the last lines of its log. */
  exited?: boolean;
  logTail?: string;
  /** Its log shows damage a restart cannot cure (invalid database, WAL CRC mismatch): not started again. */
  dataError?: string;
}

export interface TryRestartOutput {
  recovered: boolean;
  detail: string;
  leader?: string;
  members: TryRestartMember[];
  durationMs: number;
}

const CANARY_KEY = '/runbook/canary';

interface Tracked {
  spec: MemberSpec;
  state: TryRestartMember;
  /** Its driver failed to start it (a member without a usable driver may still be brought back by someone else). */
  startFailed?: boolean;
  /** Starts after it exited: a member can fail once for a passing reason (a port still held by its dead self). */
  restarts?: number;
}

const MAX_RESTARTS = 2;
/** Poll every 100 ms for this long after the starts, then every 500 ms. */
const FAST_POLL_FOR_MS = 3_000;

async function refresh(t: Tracked): Promise<void> {
  if (t.state.error && !t.state.started) return; // no usable driver
  try {
    const st = await driverFor(t.spec).status();
    t.state.running = st.running;
    if (st.pid) t.state.pid = st.pid;
    else delete t.state.pid;
    // Only a process we can see has exited; a static pod may simply not be started by the kubelet yet.
    if (t.state.started && !st.running && t.spec.driver.type === 'process') {
      t.state.exited = true;
      const tail = memberLogTail(t.spec);
      if (tail) t.state.logTail = tail;
      const damage = permanentDataError(tail);
      if (damage) t.state.dataError = damage;
    }
  } catch (err) {
    t.state.error = messageOf(err);
  }
}

/**
 * The tool cannot read the cluster (no credentials, TLS refused): refuse at once. Waiting cannot change it, and
 * "not recovered" would send the runbook to stop the members and restore an older snapshot over healthy data.
 */
function refuseUnreadable(what: string, hint: string | undefined): never {
  throw new StepError('invalid', `cannot read the cluster (${what}): that is not evidence the members are down, so nothing is stopped or restored`, {
    hint: hint ?? 'check the auth and TLS settings of the inventory',
  });
}

/** A healthy quorum, or why not. Writes a canary (the cluster's own write path) only once a leader is agreed. */
async function quorumCheck(ctx: ActionContext, view: ClusterView, n: number): Promise<{ ok: true; detail: string; leader: string } | { ok: false; detail: string }> {
  const locked = unreadable(view);
  if (locked.length > 0) refuseUnreadable(locked.map((p) => `${p.name}: ${p.error}`).join('; '), locked[0]!.hint);
  const answering = view.members.filter((p) => p.ok);
  if (answering.length < quorumOf(n)) return { ok: false, detail: `${answering.length} of ${n} members answer, ${quorumOf(n)} needed` };
  if (!view.leaderId) return { ok: false, detail: `no agreed leader (reported: ${view.leaderIds.join(', ') || 'none'})` };
  const via = view.leader ?? answering[0]!;
  const leader = view.leader?.name ?? view.leaderId;
  try {
    await putDeleteCanary(etcdPool(ctx), via.endpoint, CANARY_KEY, { ...callOpts(ctx, { timeoutMs: POLL_CALL_MS * 2 }), tag: `${ctx.runId}/${ctx.stepId}` });
    return { ok: true, leader, detail: `quorum formed: leader ${leader}, ${answering.length} of ${n} members answer, a write went through` };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const klass = errorClass(err);
    if (klass === 'auth' || klass === 'tls') refuseUnreadable(`a write through ${via.name}: ${shortGrpcMessage(err)}`, accessHint(err));
    if (isNoSpace(err)) {
      // The data is there and a quorum formed; only writes are refused. Restoring a snapshot would lose data.
      return { ok: true, leader, detail: `quorum formed (leader ${leader}, ${answering.length} of ${n} answer) but writes are refused by a NOSPACE alarm: run nospace-recovery` };
    }
    return { ok: false, detail: `leader ${leader} agreed but a write failed: ${shortGrpcMessage(err)}` };
  }
}

export const tryRestartAction: ImplementedAction = implement('members.try-restart', {
  async plan(ctx, input) {
    const down: string[] = [];
    for (const m of ctx.inventory.members) {
      try {
        if (!(await driverFor(m).status()).running) down.push(m.name);
      } catch (err) {
        down.push(`${m.name} (${messageOf(err)})`);
      }
    }
    return `start ${down.length ? down.join(', ') : 'no member (all run)'} on existing data; wait up to ${formatDuration(input.waitFor)} for a leader, a majority answering and a write; report (never fails for no quorum)`;
  },

  async run(ctx, input) {
    const t0 = Date.now();
    const pool = etcdPool(ctx);
    const n = ctx.inventory.members.length;
    const tracked: Tracked[] = ctx.inventory.members.map((spec) => ({ spec, state: { name: spec.name, running: false, answering: false, started: false } }));

    for (const t of tracked) {
      let driver;
      try {
        driver = driverFor(t.spec);
        const st = await driver.status();
        t.state.running = st.running;
        if (st.pid) t.state.pid = st.pid;
        if (!st.running) {
          ctx.log(`starting ${t.spec.name} on its existing data`);
          await driver.start({ signal: ctx.signal });
          t.state.started = true;
          pool.forget(t.spec.name);
        }
      } catch (err) {
        if (err instanceof StepError && err.kind === 'cancelled') throw err;
        t.state.error = messageOf(err);
        if (driver) t.startFailed = true;
        ctx.log(`${t.spec.name}: ${t.state.error}`);
      }
    }

    const until = Math.min(t0 + input.waitFor, ctx.deadline ?? Infinity);
    let result: { ok: true; detail: string; leader: string } | { ok: false; detail: string } = { ok: false, detail: 'not checked' };
    for (;;) {
      if (ctx.signal.aborted) throw new StepError('cancelled', 'cancelled');
      await Promise.all(tracked.map(refresh));
      for (const t of tracked) {
        if (!t.state.exited || (t.restarts ?? 0) >= MAX_RESTARTS) continue;
        if (t.state.dataError) {
          // Damage on disk: another start only fails the same way; it counts as lost at once.
          if (t.restarts !== MAX_RESTARTS) ctx.log(`${t.spec.name} cannot start on its data (its log: ${t.state.dataError}): not starting it again`);
          t.restarts = MAX_RESTARTS;
          continue;
        }
        t.restarts = (t.restarts ?? 0) + 1;
        ctx.log(`${t.spec.name} exited after it was started; starting it again (${t.restarts} of ${MAX_RESTARTS})${t.state.logTail ? `; its last log lines:\n${t.state.logTail}` : ''}`);
        try {
          await driverFor(t.spec).start({ signal: ctx.signal });
          delete t.state.exited;
          pool.forget(t.spec.name);
        } catch (err) {
          if (err instanceof StepError && err.kind === 'cancelled') throw err;
          t.state.error = messageOf(err);
        }
      }
      const view = await clusterView(pool, callOpts(ctx, { timeoutMs: POLL_CALL_MS }));
      for (const t of tracked) t.state.answering = view.members.find((p) => p.name === t.spec.name)?.ok === true;
      result = await quorumCheck(ctx, view, n);
      if (result.ok) break;
      const lost = tracked.filter((t) => !t.state.running && !t.state.answering && (t.state.exited || t.startFailed));
      if (n - lost.length < quorumOf(n)) {
        const why = (t: Tracked) => (t.state.dataError ? `has a data error (${t.state.dataError})` : t.state.exited ? 'exited after start' : `cannot be started (${t.state.error})`);
        result = { ok: false, detail: `no quorum can form: ${lost.map((t) => `${t.spec.name} ${why(t)}`).join('; ')}` };
        break;
      }
      if (Date.now() >= until) {
        result = { ok: false, detail: `no healthy quorum after ${formatDuration(Date.now() - t0)}: ${result.detail}` };
        break;
      }
      // Tightly at first: a member on damaged data exits within a fraction of a second of its start, and a healthy
      // quorum forms within about an election timeout; later polls only wait out slow starts.
      const pause = Date.now() - t0 < FAST_POLL_FOR_MS ? 100 : 500;
      await sleep(Math.min(pause, Math.max(0, until - Date.now())), ctx.signal);
    }
    for (const t of tracked) if (t.state.exited) ctx.log(`${t.spec.name} exited after it was started${t.state.logTail ? `; last log lines:\n${t.state.logTail}` : ''}`);
    ctx.log(result.ok ? `recovered: ${result.detail}` : `not recovered: ${result.detail}`);
    return {
      recovered: result.ok,
      detail: result.detail,
      ...(result.ok ? { leader: result.leader } : {}),
      members: tracked.map((t) => t.state),
      durationMs: Date.now() - t0,
    };
  },
});
