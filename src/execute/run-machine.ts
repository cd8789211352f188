/**
 * The compiled runbook (plain data, src/compile/machine.ts) made into an xstate machine: the actors bound by name,
 * the guards that read `decide`'s answer, and the actions that keep step outputs and forEach progress in context.
 */
import { assign, setup, type DoneActorEvent, type ErrorActorEvent } from 'xstate';
import { bindFunctions, type CompiledRunbook, type MachineContext } from '../compile/machine.ts';
import type { RunActors } from './actors.ts';
import type { RunContext } from './run-context.ts';
import { stepState } from './state.ts';
import { toErrorInfo } from './step-runner.ts';

/** The events the machine's transitions handle: its invoked actors finishing or failing. */
type MachineEvent = DoneActorEvent<unknown> | ErrorActorEvent<unknown>;

interface MachineInput {
  params: Record<string, unknown>;
}

const outputOf = (event: MachineEvent): unknown => ('output' in event ? event.output : undefined);

/** `decide`'s answer, read by the guards on its onDone transitions. */
function decided(event: MachineEvent, key: 'skip' | 'approval'): boolean {
  const o = outputOf(event);
  if (typeof o !== 'object' || o === null) return false;
  return key === 'skip' ? 'skip' in o && o.skip === true : 'approval' in o && o.approval === true;
}

export function createRunMachine(rc: RunContext, compiled: CompiledRunbook, actors: RunActors) {
  const { fold, emit } = rc;
  // One actor per action name (the compiled config invokes a step's action by name), all the same step actor.
  const stepActors: Record<string, RunActors['stepActor']> = {};
  for (const name of new Set(rc.runbook.steps.map((s) => s.action))) stepActors[name] = actors.stepActor;

  const runSetup = setup({
    types: {} as { context: MachineContext; input: MachineInput; events: MachineEvent },
    actors: { ...stepActors, decide: actors.decide, approval: actors.approval, items: actors.items, parallelItems: actors.parallelItems, gate: actors.gate },
    guards: {
      decidedSkip: ({ event }) => decided(event, 'skip'),
      decidedApproval: ({ event }) => decided(event, 'approval'),
      hasMoreItems: ({ context }, p: { stepId: string }) => (context.index[p.stepId] ?? 0) < (context.items[p.stepId]?.length ?? 0),
    },
    actions: {
      recordSkip: assign(({ context }, p: { stepId: string }) => ({ steps: { ...context.steps, [p.stepId]: { status: 'skipped' as const } } })),
      setItems: assign(({ context, event }, p: { stepId: string }) => {
        const output = outputOf(event);
        return {
          items: { ...context.items, [p.stepId]: Array.isArray(output) ? output.map(String) : [] },
          index: { ...context.index, [p.stepId]: 0 },
          steps: { ...context.steps, [p.stepId]: { status: 'succeeded' as const, items: {} } },
        };
      }),
      recordItem: assign(({ context, event }, p: { stepId: string }) => {
        const s = rc.step(p.stepId);
        const i = context.index[p.stepId] ?? 0;
        const key = context.items[p.stepId]![i]!;
        const prev = context.steps[p.stepId] ?? { status: 'succeeded' as const, items: {} };
        return {
          steps: { ...context.steps, [p.stepId]: { ...prev, items: { ...prev.items, [key]: outputOf(event) ?? null } } },
          index: s.gate ? context.index : { ...context.index, [p.stepId]: i + 1 },
        };
      }),
      /** parallelItems' answer: every item's output, in the items' order. */
      recordAllItems: assign(({ context, event }, p: { stepId: string }) => {
        const keys = context.items[p.stepId] ?? [];
        const outputs = outputOf(event);
        const list = Array.isArray(outputs) ? outputs : [];
        const prev = context.steps[p.stepId] ?? { status: 'succeeded' as const, items: {} };
        const items = { ...prev.items };
        keys.forEach((key, i) => {
          items[key] = list[i] ?? null;
        });
        return { steps: { ...context.steps, [p.stepId]: { ...prev, items } }, index: { ...context.index, [p.stepId]: keys.length } };
      }),
      advanceItem: assign(({ context }, p: { stepId: string }) => ({ index: { ...context.index, [p.stepId]: (context.index[p.stepId] ?? 0) + 1 } })),
      finishItems: ({ context }, p: { stepId: string }) => {
        const st = stepState(fold, p.stepId);
        if (st.status !== 'succeeded') emit({ type: 'step.finished', stepId: p.stepId, status: 'succeeded', durationMs: Date.now() - (st.startedAt ?? Date.now()), output: context.steps[p.stepId]?.items ?? {} });
      },
      recordOutput: assign(({ context, event }, p: { stepId: string }) => {
        const st = stepState(fold, p.stepId);
        const output = outputOf(event) ?? null;
        if (st.status !== 'succeeded') emit({ type: 'step.finished', stepId: p.stepId, status: 'succeeded', durationMs: Date.now() - (st.startedAt ?? Date.now()), output });
        return { steps: { ...context.steps, [p.stepId]: { status: 'succeeded' as const, output } } };
      }),
      recordFailure: assign(({ context, event }, p: { stepId: string; optional: boolean }) => {
        const info = toErrorInfo('error' in event ? event.error : undefined);
        const st = stepState(fold, p.stepId);
        if (info.kind === 'paused') return { error: { stepId: p.stepId, ...info } }; // still waiting: not a failure of the step
        if (st.status !== 'failed' || p.optional) emit({ type: 'step.finished', stepId: p.stepId, status: 'failed', durationMs: Date.now() - (st.startedAt ?? Date.now()) });
        const steps = { ...context.steps, [p.stepId]: { status: 'failed' as const } };
        if (p.optional) {
          emit({ type: 'step.log', stepId: p.stepId, message: `optional step failed, continuing: ${info.message}` });
          return { steps };
        }
        return { steps, error: { stepId: p.stepId, ...info } };
      }),
    },
  });

  const config = bindFunctions(compiled.config, {
    initialContext: () => ({ input }: { input: MachineInput }): MachineContext => ({ params: input.params, steps: {}, items: {}, index: {} }),
    ctxInput: ({ stepId }) => ({ context }: { context: MachineContext }) => ({ stepId, context }),
    itemInput: ({ stepId }) => ({ context }: { context: MachineContext }) => ({ stepId, index: context.index[stepId as string] ?? 0, context }),
    gateInput: ({ stepId }) => ({ context }: { context: MachineContext }) => ({ stepId, index: context.index[stepId as string] ?? 0, context }),
  });
  // The config is data compiled from the runbook's YAML (its state names exist only at run time), so xstate cannot
  // check it against the setup statically: this is its one typed boundary (test/unit/execute/executor.test.ts runs it).
  return runSetup.createMachine(config as Parameters<typeof runSetup.createMachine>[0]);
}
