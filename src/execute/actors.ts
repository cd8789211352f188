/**
 * The actors the compiled machine invokes by name (src/compile/machine.ts): `decide` (skip? approval?), `approval`,
 * `items` (a forEach's list, pinned on first resolution), `parallelItems` (every item of a parallel forEach at
 * once), `gate`, and one step actor under every action's name, which runs the step (or one item) through the step
 * runner (probe / run / verify).
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

  /** One step, or one item of a forEach step: skipped when the journal says it succeeded. */
  async function runOne(input: ActorInput): Promise<unknown> {
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
  }

  const stepActor = fromPromise<unknown, ActorInput>(({ input }) => runOne(input));

  /**
   * Every item of a `parallel: true` forEach at once, each through runOne (journaled, probed and retried on its
   * own, so a resume redoes only the items that did not succeed). A failed item does not abort the others: an
   * attempt cut off halfway (a restore into its .part dir) helps nobody. Once every item has ended the step fails
   * with the first failure in the items' order, the others' failures logged; or answers every output, in order.
   */
  const parallelItems = fromPromise<unknown[], ActorInput>(async ({ input }) => {
    const keys = input.context.items[input.stepId] ?? [];
    const settled = await Promise.allSettled(keys.map((_, index) => runOne({ ...input, index })));
    const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [{ key: keys[i]!, error: r.reason as unknown }] : []));
    if (failed.length > 0) {
      for (const f of failed.slice(1)) emit({ type: 'step.log', stepId: input.stepId, item: f.key, message: `also failed: ${f.error instanceof Error ? f.error.message : String(f.error)}` });
      throw failed[0]!.error;
    }
    return settled.map((r) => (r.status === 'fulfilled' ? r.value : null));
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
    emit({ type: 'step.items', stepId: s.id, items: keys, ...(fe.parallel ? { parallel: true } : {}) });
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

  return { stepActor, decide, approval, items, parallelItems, gate };
}

export type RunActors = ReturnType<typeof createActors>;
