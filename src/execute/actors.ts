/**
 * The actors the compiled machine invokes by name (src/compile/machine.ts): `decide` (skip? approval?), `approval`,
 * `items` (a forEach's list, pinned on first resolution), `gate`, and one step actor under every action's name,
 * which runs the step through the step runner (probe / run / verify).
 */
import { fromPromise } from 'xstate';
import type { MachineContext, StepInput } from '../compile/machine.ts';
import { evalBool, evalExpr } from '../compile/expr.ts';
import { StepError } from '../util/errors.ts';
import type { Approvals } from './approvals.ts';
import { checkIdentity, repinIfAnswering } from './identity-guard.ts';
import { pinnedIdentity } from './identity.ts';
import type { RunContext } from './run-context.ts';
import { stepState } from './state.ts';
import { runStep } from './step-runner.ts';

/** What every actor is invoked with: its step (and item index) and the machine's context. */
export type ActorInput = StepInput & { context: MachineContext };

/** `decide`'s answer. */
export interface StepDecision {
  skip: boolean;
  approval: boolean;
  reason?: string;
}

export function createActors(rc: RunContext, approvals: Approvals) {
  const { x, registry, fold, emit, abort } = rc;
  const extraApprovals = new Set(x.extraApprovals ?? []);

  const stepActor = fromPromise<unknown, ActorInput>(async ({ input }) => {
    const s = rc.step(input.stepId);
    const meta = registry.meta(s.action)!;
    const item = input.index === undefined ? undefined : rc.itemFor(s, input.context, input.index);
    const st = stepState(fold, s.id).item.get(item?.key ?? '');
    if (st?.status === 'succeeded') return st.output;
    const value = rc.renderInput(s, input.context, item);
    if (meta.perMember === 'required' && !item?.member) throw new StepError('invalid', `step "${s.id}": ${s.action} needs a forEach over members`);
    await registry.load?.([s.action]);
    if (meta.mutates && !x.dryRun) {
      await checkIdentity(rc, s, item);
      // A restore gives the cluster new ids: say so before the first member is restored, so that the new identity
      // the restored members answer with is taken as this run's (and nothing else's) from here on.
      const pinned = pinnedIdentity(rc.journal.records);
      if (meta.resetsIdentity && pinned && pinned.reason !== 'restore') {
        emit({ type: 'cluster.identity', reason: 'restore', identity: { clusterId: null, members: [], peerURLs: pinned.peerURLs }, previousClusterId: pinned.clusterId });
      }
    }
    const output = await runStep(rc.env, s, meta, registry.impl(s.action), value, item);
    if (!x.dryRun && pinnedIdentity(rc.journal.records)?.clusterId === null) await repinIfAnswering(rc);
    return output;
  });

  const decide = fromPromise<StepDecision, ActorInput>(async ({ input }) => {
    const s = rc.step(input.stepId);
    const st = stepState(fold, s.id);
    if (st.status === 'skipped') return { skip: true, approval: false };
    let skip = false;
    let reason = '';
    if (s.when) {
      try {
        skip = !evalBool(s.when, rc.scope(input.context));
      } catch (err) {
        throw new StepError('invalid', `step "${s.id}": when: ${(err as Error).message}`);
      }
      reason = `when: ${s.when} is false`;
    }
    if (skip) {
      emit({ type: 'step.skipped', stepId: s.id, reason });
      return { skip, approval: false, reason };
    }
    const needs = (s.approval === 'required' || s.action === 'approve' || extraApprovals.has(s.id)) && st.approval?.status !== 'granted' && !x.dryRun;
    if (x.dryRun && (s.approval === 'required' || extraApprovals.has(s.id))) {
      emit({ type: 'step.log', stepId: s.id, message: 'would wait for approval here' });
    }
    return { skip: false, approval: needs };
  });

  const approval = fromPromise<void, ActorInput>(({ input }) => approvals.await(input.stepId));

  const items = fromPromise<string[], ActorInput>(async ({ input }) => {
    const s = rc.step(input.stepId);
    const st = stepState(fold, s.id);
    if (st.items) return st.items; // pinned on first resolution: a resume walks the same list
    const fe = s.forEach!;
    let keys: string[];
    if (fe.kind === 'members') {
      const ctx = rc.makeContext(s, 1, undefined, abort.signal, Date.now() + 30_000);
      const members = registry.resolveMembers
        ? await registry.resolveMembers(ctx, fe.members, fe.order)
        : x.inventory.members;
      keys = members.map((m) => m.name);
    } else {
      const list = evalExpr(fe.items, rc.scope(input.context));
      if (!Array.isArray(list)) throw new StepError('invalid', `step "${s.id}": forEach.items did not give a list`);
      keys = list.map((v) => (v && typeof v === 'object' && 'name' in v ? String((v as { name: unknown }).name) : String(v)));
      if (new Set(keys).size !== keys.length) throw new StepError('invalid', `step "${s.id}": forEach.items has duplicate entries`);
    }
    emit({ type: 'step.items', stepId: s.id, items: keys });
    return keys;
  });

  const gate = fromPromise<void, ActorInput>(async ({ input }) => {
    const s = rc.step(input.stepId);
    const meta = registry.meta(s.gate!);
    await registry.load?.([s.gate!]);
    const impl = registry.impl(s.gate!);
    if (!meta || !impl) throw new StepError('unimplemented', `gate "${s.gate}" has no implementation`);
    const item = input.index === undefined ? undefined : rc.itemFor(s, input.context, input.index);
    if (x.dryRun) {
      emit({ type: 'step.log', stepId: s.id, ...(item ? { item: item.key } : {}), message: `would check gate ${s.gate} here` });
      return;
    }
    const value = meta.input.parse({});
    const ctx = rc.makeContext(s, 1, item, abort.signal, undefined);
    await impl.run(ctx, value);
    emit({ type: 'step.log', stepId: s.id, ...(item ? { item: item.key } : {}), message: `gate ${s.gate} passed` });
  });

  return { stepActor, decide, approval, items, gate };
}

export type RunActors = ReturnType<typeof createActors>;
