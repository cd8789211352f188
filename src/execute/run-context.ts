/**
 * What the parts of a running run share: the options it was started with, its journal and fold, its abort signal,
 * and the helpers that turn a step of the runbook into an action's context and input.
 */
import type { ActionContext, ActionRegistry, ResourceScope, StepItem } from '../actions/types.ts';
import type { MachineContext } from '../compile/machine.ts';
import { renderTemplate } from '../compile/expr.ts';
import type { ClusterIdentity, IdentityReason } from '../events/cluster-identity.ts';
import type { JournalRecord, RunEvent } from '../events/types.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import type { Runbook, Step } from '../runbook/model.ts';
import type { JournalWriter } from '../store/journal.ts';
import { storableInventory } from '../store/run-dir.ts';
import type { ApprovalDecision } from '../store/run-dir.ts';
import type { RunLock, StateStore, StoreJournalWriter } from '../store/types.ts';
import { StepError } from '../util/errors.ts';
import type { RunOptions } from './run-types.ts';
import { stepState, type RunState } from './state.ts';
import type { StepEnv } from './step-runner.ts';

/** The identity to journal before the first step (start; resume when the live cluster tells more). */
export interface Pin {
  reason: IdentityReason;
  identity: ClusterIdentity;
  previousClusterId?: string | null;
}

/** Where a run's approval decisions are kept: its store (a dry run keeps none). */
export type Decisions = Pick<StateStore, 'decideApproval' | 'readApproval'>;

/** A dry run records nothing: a decision given for it is not kept, and none is ever found. */
export const noDecisions: Decisions = {
  decideApproval: async (_runId, _stepId, d) => ({ decision: { ...d, at: '' } as ApprovalDecision, first: false }),
  readApproval: async () => undefined,
};

/** A run as the engine runs it: the caller's options plus what starting or resuming it prepared. */
export interface RunInternals extends RunOptions {
  runId: string;
  /** The journal: the store's (fenced in etcd), or an in-memory one for a dry run. */
  journal: JournalWriter & Partial<Pick<StoreJournalWriter, 'saveSnapshot' | 'location' | 'dir'>>;
  fold: RunState;
  resolutions: Record<string, 'done' | 'rerun'>;
  /** The run's lock (none for a dry run). */
  lock: RunLock | undefined;
  decisions: Decisions;
  pin?: Pin;
  resumed: boolean;
  resumeNote?: string;
  /** The persisted machine snapshot read from the store (resume). */
  snapshotText?: string;
}

export interface RunContext {
  x: RunInternals;
  runbook: Runbook;
  registry: ActionRegistry;
  fold: RunState;
  /** The journal as written (through the emitter's latch) and read. */
  journal: JournalWriter;
  abort: AbortController;
  resources: ResourceScope;
  resumeCommand: string;
  emit(event: RunEvent): JournalRecord;
  step(id: string): Step;
  hasStep(id: string): boolean;
  env: StepEnv;
  /** What `when:`, `with:` and `forEach.items` expressions see. */
  scope(context: MachineContext, item?: StepItem): Record<string, unknown>;
  makeContext: StepEnv['makeContext'];
  /** The step's `with:`, rendered and checked against the action's schema. */
  renderInput(s: Step, context: MachineContext, item?: StepItem): unknown;
  itemFor(s: Step, context: MachineContext, index: number): StepItem;
}

function inventoryView(inv: Inventory): Record<string, unknown> {
  const s = storableInventory(inv) as unknown as Record<string, unknown>;
  for (const k of ['tls', 'auth', 'kubernetes', 'snapshots', 'etcdBinDir', 'quotaBytes', 'requestTimeoutMs']) s[k] ??= null;
  return s;
}

function findMember(inv: Inventory, name: string): MemberSpec | undefined {
  return inv.members.find((m) => m.name === name);
}

export function createRunContext(x: RunInternals, parts: {
  abort: AbortController;
  resources: ResourceScope;
  resumeCommand: string;
  emit(event: RunEvent): JournalRecord;
  journalView: JournalWriter;
}): RunContext {
  const { runbook, registry, fold, runId } = x;
  const { emit, abort, resources, resumeCommand } = parts;
  const stepsById = new Map(runbook.steps.map((s) => [s.id, s]));
  const invView = inventoryView(x.inventory);

  const scope = (context: MachineContext, item?: StepItem) => ({
    params: context.params,
    inventory: invView,
    steps: context.steps,
    item: item ? { key: item.key, index: item.index, name: item.member?.name ?? item.key, value: item.value ?? null } : null,
  });

  const makeContext = (s: Step, attempt: number, item: StepItem | undefined, signal: AbortSignal, deadline: number | undefined): ActionContext => ({
    runId,
    stepId: s.id,
    attempt,
    firstStartedAt: stepState(fold, s.id).item.get(item?.key ?? '')?.firstStartedAt ?? Date.now(),
    ...(item ? { item } : {}),
    inventory: x.inventory,
    params: x.params,
    steps: Object.fromEntries([...fold.steps].map(([id, st]) => [id, {
      status: st.status === 'succeeded' ? 'succeeded' : st.status === 'skipped' ? 'skipped' : 'failed',
      output: st.output ?? st.item.get('')?.output,
      items: Object.fromEntries([...st.item].filter(([k]) => k !== '').map(([k, v]) => [k, v.output])),
    }])) as ActionContext['steps'],
    signal,
    ...(deadline ? { deadline } : {}),
    dryRun: x.dryRun ?? false,
    stateDir: x.stateDir,
    resources,
    log: (message, data) => {
      emit({ type: 'step.log', stepId: s.id, ...(item ? { item: item.key } : {}), message, ...(data ? { data } : {}) });
    },
  });

  const renderInput = (s: Step, context: MachineContext, item?: StepItem): unknown => {
    const meta = registry.meta(s.action);
    if (!meta) throw new StepError('invalid', `unknown action "${s.action}"`);
    let raw: unknown;
    try {
      raw = renderTemplate(s.with, scope(context, item));
    } catch (err) {
      throw new StepError('invalid', `step "${s.id}": ${(err as Error).message}`);
    }
    // A template that gives null means "not given": drop the key so the action's default applies.
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      raw = Object.fromEntries(Object.entries(raw as Record<string, unknown>).filter(([, v]) => v !== null));
    }
    const parsed = meta.input.safeParse(raw);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'with'}: ${i.message}`).join('; ');
      throw new StepError('invalid', `step "${s.id}": input for ${s.action} is invalid after substitution: ${msg}`);
    }
    return parsed.data;
  };

  const itemFor = (s: Step, context: MachineContext, index: number): StepItem => {
    const keys = context.items[s.id] ?? [];
    const key = keys[index]!;
    const member = findMember(x.inventory, key);
    const st = stepState(fold, s.id);
    const done = keys.filter((k) => st.item.get(k)?.status === 'succeeded');
    return {
      key, index, total: keys.length, value: key, done,
      ...(member ? { member } : {}),
      ...(s.forEach?.kind === 'members' ? { moveLeaderFirst: s.forEach.moveLeaderFirst } : {}),
    };
  };

  const env: StepEnv = {
    runId, journal: parts.journalView, fold, signal: abort.signal, dryRun: x.dryRun ?? false, resolutions: x.resolutions, resumeCommand, makeContext,
  };

  return {
    x, runbook, registry, fold, journal: x.journal, abort, resources, resumeCommand, emit, env,
    step: (id) => stepsById.get(id)!,
    hasStep: (id) => stepsById.has(id),
    scope, makeContext, renderInput, itemFor,
  };
}
