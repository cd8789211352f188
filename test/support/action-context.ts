/**
 * A minimal ActionContext for calling actions directly in tests (no engine, no journal): logs are collected,
 * resources (the etcd pool) are disposed by `dispose()`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ActionContext, ActionImpl, StepItem, StepRecord } from '../../src/actions/types.ts';
import { catalog } from '../../src/actions/catalog.ts';
import { loadRegistry } from '../../src/actions/registry.ts';
import { StepError } from '../../src/util/errors.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { createResourceScope } from '../../src/execute/resources.ts';

export interface TestActionContext {
  ctx: ActionContext;
  logs: string[];
  /** Another context sharing this one's resources (same pool) for the next step / item. */
  step(stepId: string, more?: Partial<ActionContext>): ActionContext;
  dispose(): Promise<void>;
}

export function makeActionContext(inventory: Inventory, more: Partial<ActionContext> = {}): TestActionContext {
  const logs: string[] = [];
  const resources = createResourceScope();
  const steps: Record<string, StepRecord> = more.steps ?? {};
  const base = (stepId: string, extra: Partial<ActionContext>): ActionContext => ({
    runId: 'test-run',
    stepId,
    attempt: 1,
    firstStartedAt: Date.now(),
    inventory,
    params: {},
    steps,
    signal: new AbortController().signal,
    dryRun: false,
    stateDir: mkdtempSync(join(tmpdir(), 'runbook-ctx-')),
    resources,
    log: (message) => { logs.push(`[${stepId}] ${message}`); },
    ...more,
    ...extra,
  });
  return {
    ctx: base(more.stepId ?? 'step', {}),
    logs,
    step: (stepId, extra = {}) => base(stepId, extra),
    dispose: () => resources.dispose(),
  };
}

/** The forEach item for one inventory member. */
export function memberItem(inventory: Inventory, name: string, opts: { index?: number; total?: number; done?: string[]; moveLeaderFirst?: boolean } = {}): StepItem {
  const member = inventory.members.find((m) => m.name === name);
  if (!member) throw new Error(`memberItem: no member ${name}`);
  return {
    key: name,
    index: opts.index ?? 0,
    total: opts.total ?? inventory.members.length,
    member,
    value: name,
    done: opts.done ?? [],
    ...(opts.moveLeaderFirst !== undefined ? { moveLeaderFirst: opts.moveLeaderFirst } : {}),
  };
}

/** A catalog action's implementation and its input parser (defaults applied), as a runbook step would get them. */
export const registry = await loadRegistry();

export function action(name: keyof typeof catalog): { impl: ActionImpl; input: (raw?: Record<string, unknown>) => any } {
  const impl = registry.impl(name);
  if (!impl) throw new Error(`no implementation for ${name}`);
  return { impl, input: (raw = {}) => (catalog[name].input as { parse(v: unknown): unknown }).parse(raw) };
}

/** The StepError a call rejects with; fails the test when it succeeds or throws anything else. */
export async function stepError(p: Promise<unknown>): Promise<StepError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StepError) return err;
    throw err;
  }
  throw new Error('expected a StepError, the call succeeded');
}

/**
 * members.set-flag over every voter as nospace-recovery's raise-quota step runs it: followers first, the leader
 * last, each member's probe (must say "not done"), run, verify, then the etcd.member-healthy gate. Returns the
 * order and each member's output.
 */
export async function rollingSetFlag(t: TestActionContext, inv: Inventory, flag: string, value: string | number): Promise<{ order: string[]; outs: any[] }> {
  const setFlag = action('members.set-flag');
  const gate = action('etcd.member-healthy');
  const input = setFlag.input({ flag, value });
  const { resolveMembers } = await import('../../src/actions/resolve-members.ts');
  const order = (await resolveMembers(t.step('raise-quota'), 'voters', 'followers-then-leader')).map((m) => m.name);
  const done: string[] = [];
  const outs: any[] = [];
  for (const [i, name] of order.entries()) {
    const ctx = t.step('raise-quota', { item: memberItem(inv, name, { index: i, done: [...done] }) });
    const probe = await setFlag.impl.probe!(ctx, input);
    if (probe.done) throw new Error(`${name}: set-flag probe says done before the change: ${probe.detail}`);
    const out = await setFlag.impl.run(ctx, input);
    await setFlag.impl.verify!(ctx, input, out);
    outs.push(out);
    await gate.impl.run(ctx, gate.input({ waitFor: '20s' }));
    done.push(name);
  }
  return { order, outs };
}
