/**
 * Engine semantics with in-process actions whose effects are counted (no etcd involved: these tests are about
 * the journal, resume, retries, timeouts, approvals and dry-run, not about etcd).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ActionImpl, ActionMeta, ActionRegistry } from '../../../src/actions/types.ts';
import { resumeRun, startRun } from '../../../src/execute/executor.ts';
import { readJournal } from '../../../src/execute/journal.ts';
import { files } from '../../../src/execute/run-store.ts';
import type { Inventory } from '../../../src/inventory/types.ts';
import { DEFAULT_RETRY, type Runbook, type Step } from '../../../src/runbook/model.ts';
import { StepError } from '../../../src/util/errors.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-exec-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const inventory: Inventory = {
  name: 'unit',
  source: 'test',
  members: ['m1', 'm2', 'm3'].map((n, i) => ({ name: n, clientURL: `http://127.0.0.1:${23790 + i}`, peerURL: `http://127.0.0.1:${23800 + i}`, driver: { type: 'none' as const } })),
};

function step(id: string, action: string, extra: Partial<Step> = {}): Step {
  return { id, action, with: {}, retry: DEFAULT_RETRY, approval: 'none', optional: false, pos: { file: 'x', line: 1, col: 1 }, ...extra };
}

function runbook(steps: Step[], hash = 'h1'): Runbook {
  return { apiVersion: 'runbook/v1', name: 'unit', summary: 's', destructive: false, autoApprove: false, params: [], steps, source: { file: 'unit.yaml', hash } };
}

/** A registry whose actions count their effects; `fail` makes an action fail the first N times. */
function registry(effects: Record<string, number>, behaviour: Record<string, Partial<ActionImpl> & { failTimes?: number; kind?: string }> = {}): ActionRegistry {
  const metas: Record<string, ActionMeta> = {};
  const impls: Record<string, ActionImpl> = {};
  const fails: Record<string, number> = {};
  for (const name of ['effect', 'effect-once', 'read', 'slow']) {
    metas[name] = { name, summary: name, input: z.object({ tag: z.string().optional() }), mutates: name !== 'read', idempotent: name !== 'effect-once' };
    impls[name] = {
      async run(ctx) {
        const b = behaviour[name];
        fails[name] = (fails[name] ?? 0) + 1;
        if (b?.failTimes && fails[name]! <= b.failTimes) throw new StepError((b.kind ?? 'transient') as StepError['kind'], `${name} failed on purpose`);
        if (name === 'slow') await new Promise((r, j) => { const t = setTimeout(r, 5_000); ctx.signal.addEventListener('abort', () => { clearTimeout(t); j(ctx.signal.reason); }); });
        const key = `${ctx.stepId}${ctx.item ? `:${ctx.item.key}` : ''}`;
        effects[key] = (effects[key] ?? 0) + 1;
        return { key };
      },
      ...(behaviour[name]?.probe ? { probe: behaviour[name]!.probe } : {}),
    };
  }
  return { meta: (n) => metas[n], names: () => Object.keys(metas), impl: (n) => impls[n] };
}

/** Poll (not a fixed sleep) until the awaited state holds; fails after 5 s. */
async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  for (const until = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > until) throw new Error(`waitFor: not true after ${ms} ms: ${cond.toString()}`);
  }
}

describe('executor', () => {
  it('runs steps in order, loops forEach over members, journals each item, reports success', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect'), step('b', 'effect', { forEach: { kind: 'members', members: 'all', order: 'as-listed', moveLeaderFirst: false } }), step('c', 'read')]);
    const h = startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir });
    const r = await h.done;
    expect(r.status).toBe('succeeded');
    expect(effects).toEqual({ a: 1, 'b:m1': 1, 'b:m2': 1, 'b:m3': 1, c: 1 });
    const types = readJournal(files.journal(h.dir!)).records.map((x) => x.type);
    expect(types[0]).toBe('run.started');
    expect(types.at(-1)).toBe('run.finished');
    expect(types.filter((t) => t === 'step.succeeded')).toHaveLength(5);
  });

  it('skips a step whose when is false and records why', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect', { when: 'params.go == true' }), step('b', 'effect')]);
    const r = await startRun({ runbook: rb, runbookText: 'x', inventory, params: { go: false }, registry: registry(effects), stateDir: dir }).done;
    expect(r.status).toBe('succeeded');
    expect(effects).toEqual({ b: 1 });
    expect(r.records.find((x) => x.type === 'step.skipped')).toMatchObject({ stepId: 'a' });
  });

  it('retries with backoff and stops at maximumAttempts', async () => {
    const effects: Record<string, number> = {};
    const retry = { ...DEFAULT_RETRY, maximumAttempts: 3, initialIntervalMs: 10 };
    const ok = await startRun({ runbook: runbook([step('a', 'effect', { retry })]), runbookText: 'x', inventory, params: {}, registry: registry(effects, { effect: { failTimes: 2 } }), stateDir: dir }).done;
    expect(ok.status).toBe('succeeded');
    expect(ok.records.filter((x) => x.type === 'step.failed')).toHaveLength(2);
    const bad = await startRun({ runbook: runbook([step('a', 'effect', { retry })]), runbookText: 'x', inventory: { ...inventory, name: 'other' }, params: {}, registry: registry({}, { effect: { failTimes: 5 } }), stateDir: dir }).done;
    expect(bad.status).toBe('failed');
    expect(bad.exitCode).toBe(1);
    expect(bad.records.filter((x) => x.type === 'step.started')).toHaveLength(3);
  });

  it('never retries a precondition failure', async () => {
    const retry = { ...DEFAULT_RETRY, maximumAttempts: 5, initialIntervalMs: 10 };
    const r = await startRun({ runbook: runbook([step('a', 'effect', { retry })]), runbookText: 'x', inventory, params: {}, registry: registry({}, { effect: { failTimes: 5, kind: 'precondition' } }), stateDir: dir }).done;
    expect(r.status).toBe('failed');
    expect(r.records.filter((x) => x.type === 'step.started')).toHaveLength(1);
  });

  it('a timeout stops the attempt (its signal aborts) and fails the step with kind timeout', async () => {
    const r = await startRun({ runbook: runbook([step('a', 'slow', { timeoutMs: 100 })]), runbookText: 'x', inventory, params: {}, registry: registry({}), stateDir: dir }).done;
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ kind: 'timeout', stepId: 'a' });
  });

  it('resume after a failure does not repeat steps that succeeded', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect'), step('b', 'effect', { forEach: { kind: 'members', members: 'all', order: 'as-listed', moveLeaderFirst: false } }), step('c', 'effect-once')]);
    const first = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects, { 'effect-once': { failTimes: 1, kind: 'failed' } }), stateDir: dir }).done;
    expect(first.status).toBe('failed');
    const reg = registry(effects);
    const second = await resumeRun({ stateDir: dir, runId: first.runId, registry: reg, runbook: rb, runbookText: 'x' }).done;
    expect(second.status).toBe('succeeded');
    expect(effects).toEqual({ a: 1, 'b:m1': 1, 'b:m2': 1, 'b:m3': 1, c: 1 });
  });

  it('a step left in doubt by a crash (started, never finished) is probed on resume: done there, it is not run again', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect-once'), step('b', 'effect')]);
    const first = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir }).done;
    expect(first.status).toBe('succeeded');
    // The crash: the effect of a happened, but the runner died before journaling its success (cut the journal there).
    const journalFile = files.journal(path.join(dir, 'runs', first.runId));
    const lines = fs.readFileSync(journalFile, 'utf8').trimEnd().split('\n');
    const cut = lines.findIndex((l) => JSON.parse(l).type === 'step.succeeded');
    expect(JSON.parse(lines[cut - 1]!)).toMatchObject({ type: 'step.started', stepId: 'a' });
    fs.writeFileSync(journalFile, `${lines.slice(0, cut).join('\n')}\n`);
    expect(effects).toEqual({ a: 1, b: 1 });

    let probes = 0;
    const reg = registry(effects, { 'effect-once': { probe: async () => { probes++; return { done: true, output: { key: 'a' } }; } } });
    const second = await resumeRun({ stateDir: dir, runId: first.runId, registry: reg, runbook: rb, runbookText: 'x' }).done;
    expect(second.status).toBe('succeeded');
    expect(probes).toBe(1);
    expect(effects).toEqual({ a: 1, b: 2 }); // a (not idempotent) was not run again; b (idempotent, never started) ran
    const recs = readJournal(journalFile).records;
    expect(recs.find((x) => x.type === 'step.probe' && x.stepId === 'a')).toMatchObject({ done: true, inDoubt: true });
    expect(recs.findLast((x) => x.type === 'step.succeeded' && x.stepId === 'a')).toMatchObject({ via: 'probe' });
  });

  it('resume refuses when the runbook changed', async () => {
    const rb = runbook([step('a', 'effect', { retry: DEFAULT_RETRY })]);
    const first = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry({}, { effect: { failTimes: 1, kind: 'failed' } }), stateDir: dir }).done;
    expect(() => resumeRun({ stateDir: dir, runId: first.runId, registry: registry({}), runbook: runbook(rb.steps, 'h2'), runbookText: 'y' })).toThrow(/changed since run/);
  });

  it('approval: waits, a deny ends the run with status denied; an approve lets it go on', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect', { approval: 'required' }), step('b', 'effect')]);
    const h = startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir });
    await waitFor(() => h.pendingApprovals().length > 0);
    expect(h.pendingApprovals()).toEqual(['a']);
    expect(effects).toEqual({});
    expect(await h.deny('a', 'bob', 'test', 'not now')).toBe(true);
    const r = await h.done;
    expect(r.status).toBe('denied');
    expect(effects).toEqual({});

    const h2 = startRun({ runbook: rb, runbookText: 'x', inventory: { ...inventory, name: 'two' }, params: {}, registry: registry(effects), stateDir: dir });
    await waitFor(() => h2.pendingApprovals().includes('a'));
    expect(await h2.approve('a', 'alice', 'test')).toBe(true);
    expect(await h2.approve('a', 'carol', 'test')).toBe(false); // first decision wins
    const r2 = await h2.done;
    expect(r2.status).toBe('succeeded');
    expect(r2.records.find((x) => x.type === 'approval.granted')).toMatchObject({ by: 'alice' });
  });

  it('dry-run calls no mutating run(), runs read-only steps only until the first planned mutation, writes nothing', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('b', 'read'), step('a', 'effect'), step('c', 'read')]);
    const r = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir, dryRun: true }).done;
    expect(r.status).toBe('succeeded');
    expect(effects).toEqual({ b: 1 });
    expect(r.records.filter((x) => x.type === 'step.plan').map((x) => (x as { stepId: string }).stepId)).toEqual(['a', 'c']);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a second run on the same cluster is refused while the first holds the lock', async () => {
    const rb = runbook([step('a', 'slow')]);
    const h = startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry({}), stateDir: dir });
    expect(() => startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry({}), stateDir: dir })).toThrow(new RegExp(`locked by run ${h.runId}`));
    await h.done;
  }, 20_000);
});
