/**
 * Runbook → xstate v5 machine config. Pure and deterministic: no I/O, and the same runbook always gives the same
 * config. Behaviour is referenced by name (actors = action names plus `decide`, `approval`, `items`, `gate`;
 * actions = context updates) and supplied by the executor through `setup(...)`.
 *
 * Each step is a compound state:
 *   check ─(skip)──────────────────────────────▶ next step
 *     ├─(approval needed)─▶ approval ─▶ items|run
 *     └──────────────────────────────▶ items|run
 *   items ─▶ next ─(more)─▶ item ─▶ [gate] ─▶ next ─(done)─▶ next step     (forEach: a loop over context.items)
 *   items ─▶ all ─▶ next step                                                (forEach parallel: every item at once)
 *   run ─▶ [gate] ─▶ next step
 * Any error goes to `__failed` (or on to the next step when the step is optional); a denial to `__denied`.
 */
import type { Runbook, Step } from '../runbook/model.ts';
import type { ErrorInfo } from '../events/types.ts';

export const FINAL = { succeeded: '__succeeded', failed: '__failed', denied: '__denied' } as const;

export interface MachineContext {
  params: Record<string, unknown>;
  /** Outputs of finished steps, as `steps` in expressions. */
  steps: Record<string, { status: 'succeeded' | 'skipped' | 'failed'; output?: unknown; items?: Record<string, unknown> }>;
  /** forEach item keys per step and the index of the next item. */
  items: Record<string, string[]>;
  index: Record<string, number>;
  error?: ErrorInfo & { stepId: string };
}

export interface StepInput {
  stepId: string;
  index?: number;
}

// xstate's config type is very generic; keep ours explicit and plain.
export type StateConfig = Record<string, unknown>;

export interface CompiledRunbook {
  id: string;
  config: StateConfig & { states: Record<string, StateConfig> };
  /** State ids in order: one per step, then the finals. */
  stepIds: string[];
  hash: string;
}

function ref(id: string): string {
  return `#${id}`;
}

function compileStep(step: Step, next: string): StateConfig {
  const fail = step.optional
    ? [{ target: ref(next), actions: [{ type: 'recordFailure', params: { stepId: step.id, optional: true } }] }]
    : [{ target: ref(FINAL.failed), actions: [{ type: 'recordFailure', params: { stepId: step.id, optional: false } }] }];
  const body = step.forEach ? 'items' : 'run';
  const afterRun = step.gate ? 'gate' : ref(next);
  const states: Record<string, StateConfig> = {
    check: {
      invoke: {
        src: 'decide',
        input: { $fn: 'ctxInput', stepId: step.id },
        onDone: [
          { guard: 'decidedSkip', target: ref(next), actions: [{ type: 'recordSkip', params: { stepId: step.id } }] },
          { guard: 'decidedApproval', target: 'approval' },
          { target: body },
        ],
        onError: fail,
      },
    },
    approval: {
      tags: ['awaiting-approval'],
      invoke: {
        src: 'approval',
        input: { $fn: 'ctxInput', stepId: step.id },
        onDone: { target: body },
        onError: { target: ref(FINAL.denied), actions: [{ type: 'recordFailure', params: { stepId: step.id, optional: false } }] },
      },
    },
  };
  if (step.forEach) {
    states.items = {
      invoke: {
        src: 'items',
        input: { $fn: 'ctxInput', stepId: step.id },
        onDone: { target: step.forEach.parallel ? 'all' : 'next', actions: [{ type: 'setItems', params: { stepId: step.id } }] },
        onError: fail,
      },
    };
  }
  if (step.forEach?.parallel) {
    states.all = {
      invoke: {
        src: 'parallelItems',
        input: { $fn: 'ctxInput', stepId: step.id },
        onDone: { target: ref(next), actions: [{ type: 'recordAllItems', params: { stepId: step.id } }, { type: 'finishItems', params: { stepId: step.id } }] },
        onError: fail,
      },
    };
  } else if (step.forEach) {
    states.next = {
      always: [
        { guard: { type: 'hasMoreItems', params: { stepId: step.id } }, target: 'item' },
        { target: ref(next), actions: [{ type: 'finishItems', params: { stepId: step.id } }] },
      ],
    };
    states.item = {
      invoke: {
        src: step.action,
        input: { $fn: 'itemInput', stepId: step.id },
        onDone: { target: step.gate ? 'gate' : 'next', actions: [{ type: 'recordItem', params: { stepId: step.id } }] },
        onError: fail,
      },
    };
    if (step.gate) {
      states.gate = {
        invoke: {
          src: 'gate',
          input: { $fn: 'gateInput', stepId: step.id },
          onDone: { target: 'next', actions: [{ type: 'advanceItem', params: { stepId: step.id } }] },
          onError: fail,
        },
      };
    }
  } else {
    states.run = {
      invoke: {
        src: step.action,
        input: { $fn: 'ctxInput', stepId: step.id },
        onDone: { target: afterRun, actions: [{ type: 'recordOutput', params: { stepId: step.id } }] },
        onError: fail,
      },
    };
    if (step.gate) {
      states.gate = {
        invoke: {
          src: 'gate',
          input: { $fn: 'ctxInput', stepId: step.id },
          onDone: { target: ref(next) },
          onError: fail,
        },
      };
    }
  }
  return { id: step.id, initial: 'check', states };
}

/** Compile a validated runbook. The machine id is the runbook name; state ids are the step ids. */
export function compileRunbook(runbook: Runbook): CompiledRunbook {
  const states: Record<string, StateConfig> = {};
  runbook.steps.forEach((step, i) => {
    const next = runbook.steps[i + 1]?.id ?? FINAL.succeeded;
    states[step.id] = compileStep(step, next);
  });
  states[FINAL.succeeded] = { id: FINAL.succeeded, type: 'final' };
  states[FINAL.failed] = { id: FINAL.failed, type: 'final' };
  states[FINAL.denied] = { id: FINAL.denied, type: 'final' };
  return {
    id: runbook.name,
    config: {
      id: runbook.name,
      initial: runbook.steps[0]?.id ?? FINAL.succeeded,
      context: { $fn: 'initialContext' },
      states,
    },
    stepIds: runbook.steps.map((s) => s.id),
    hash: runbook.source.hash,
  };
}

/**
 * Replace `{ $fn: name, ...args }` markers with functions. The compiled config stays plain data (printable,
 * comparable in tests); the executor binds the few places where xstate wants a function of context.
 */
export function bindFunctions(node: unknown, fns: Record<string, (args: Record<string, unknown>) => unknown>): unknown {
  if (Array.isArray(node)) return node.map((n) => bindFunctions(n, fns));
  if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    if (typeof obj.$fn === 'string') {
      const make = fns[obj.$fn];
      if (!make) throw new Error(`no binding for ${obj.$fn}`);
      const { $fn: _, ...args } = obj;
      return make(args);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = bindFunctions(v, fns);
    return out;
  }
  return node;
}

/** A Mermaid stateDiagram of the compiled machine: one state per step, with skip/approval/loop/gate/failure edges. */
export function toMermaid(runbook: Runbook): string {
  const lines = ['stateDiagram-v2'];
  const name = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');
  const first = runbook.steps[0]?.id;
  lines.push(`  [*] --> ${first ? name(first) : name(FINAL.succeeded)}`);
  runbook.steps.forEach((step, i) => {
    const id = name(step.id);
    const next = name(runbook.steps[i + 1]?.id ?? FINAL.succeeded);
    const label = [step.action, step.forEach ? `${step.forEach.kind === 'members' ? `forEach ${step.forEach.members} (${step.forEach.parallel ? 'at once' : step.forEach.order})` : 'forEach items'}${step.forEach.kind === 'items' && step.forEach.parallel ? ' (at once)' : ''}` : '', step.approval === 'required' ? 'approval' : '', step.gate ? `gate ${step.gate}` : '']
      .filter(Boolean)
      .join(' · ');
    // Mermaid's line break in a label is <br/>; a "\n" would be shown as the two characters.
    lines.push(`  ${id} : ${step.id}<br/>${label}`);
    lines.push(`  ${id} --> ${next} : done`);
    if (step.when) lines.push(`  ${id} --> ${next} : skip unless ${step.when.replace(/[:"]/g, ' ')}`);
    if (step.forEach && !step.forEach.parallel) lines.push(`  ${id} --> ${id} : next item`);
    lines.push(`  ${id} --> ${step.optional ? next : name(FINAL.failed)} : ${step.optional ? 'error (optional)' : 'error'}`);
    if (step.approval === 'required') lines.push(`  ${id} --> ${name(FINAL.denied)} : denied`);
  });
  lines.push(`  ${name(FINAL.succeeded)} --> [*]`, `  ${name(FINAL.failed)} --> [*]`);
  if (runbook.steps.some((s) => s.approval === 'required')) lines.push(`  ${name(FINAL.denied)} --> [*]`);
  return `${lines.join('\n')}\n`;
}
