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
import { readJournal } from '../../../src/store/journal.ts';
import { files } from '../../../src/store/run-dir.ts';
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
    const h = (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir }));
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
    const r = await (await startRun({ runbook: rb, runbookText: 'x', inventory, params: { go: false }, registry: registry(effects), stateDir: dir })).done;
    expect(r.status).toBe('succeeded');
    expect(effects).toEqual({ b: 1 });
    expect(r.records.find((x) => x.type === 'step.skipped')).toMatchObject({ stepId: 'a' });
  });

  it('retries with backoff and stops at maximumAttempts', async () => {
    const effects: Record<string, number> = {};
    const retry = { ...DEFAULT_RETRY, maximumAttempts: 3, initialIntervalMs: 10 };
    const ok = await (await startRun({ runbook: runbook([step('a', 'effect', { retry })]), runbookText: 'x', inventory, params: {}, registry: registry(effects, { effect: { failTimes: 2 } }), stateDir: dir })).done;
    expect(ok.status).toBe('succeeded');
    expect(ok.records.filter((x) => x.type === 'step.failed')).toHaveLength(2);
    const bad = await (await startRun({ runbook: runbook([step('a', 'effect', { retry })]), runbookText: 'x', inventory: { ...inventory, name: 'other' }, params: {}, registry: registry({}, { effect: { failTimes: 5 } }), stateDir: dir })).done;
    expect(bad.status).toBe('failed');
    expect(bad.exitCode).toBe(1);
    expect(bad.records.filter((x) => x.type === 'step.started')).toHaveLength(3);
  });

  it('never retries a precondition failure', async () => {
    const retry = { ...DEFAULT_RETRY, maximumAttempts: 5, initialIntervalMs: 10 };
    const r = await (await startRun({ runbook: runbook([step('a', 'effect', { retry })]), runbookText: 'x', inventory, params: {}, registry: registry({}, { effect: { failTimes: 5, kind: 'precondition' } }), stateDir: dir })).done;
    expect(r.status).toBe('failed');
    expect(r.records.filter((x) => x.type === 'step.started')).toHaveLength(1);
  });

  it('a timeout stops the attempt (its signal aborts) and fails the step with kind timeout', async () => {
    const r = await (await startRun({ runbook: runbook([step('a', 'slow', { timeoutMs: 100 })]), runbookText: 'x', inventory, params: {}, registry: registry({}), stateDir: dir })).done;
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ kind: 'timeout', stepId: 'a' });
  });

  it('a failed step says where and when: step, member item, attempt, duration, a one-line message, the original as cause', async () => {
    const original = Object.assign(new Error('14 UNAVAILABLE: No connection established\nlast error: connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const reg = registry({});
    reg.impl('effect')!.run = async () => {
      throw new StepError('transient', 'm2: status: the member does not answer\nsecond line with detail', { cause: original });
    };
    const retry = { ...DEFAULT_RETRY, maximumAttempts: 2, initialIntervalMs: 10 };
    const rb = runbook([step('probe-all', 'effect', { retry, forEach: { kind: 'members', members: 'all', order: 'as-listed', moveLeaderFirst: false } })]);
    const h = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: reg, stateDir: dir });
    const r = await h.done;
    expect(r.status).toBe('failed');
    const failed = r.records.filter((x) => x.type === 'step.failed');
    expect(failed.map((f) => f.error.attempt)).toEqual([1, 2]);
    expect(failed[1]!.error).toMatchObject({
      kind: 'transient', stepId: 'probe-all', item: 'm1', member: 'm1', attempt: 2,
      short: 'probe-all[m1]: m2: status: the member does not answer',
      cause: { name: 'Error', code: 'ECONNREFUSED', message: '14 UNAVAILABLE: No connection established last error: connect ECONNREFUSED' },
    });
    expect(typeof failed[1]!.error.durationMs).toBe('number');
    // Through the journal on disk, and into the run's result.
    const onDisk = readJournal(files.journal(h.dir!)).records.filter((x) => x.type === 'step.failed');
    expect(onDisk.at(-1)).toMatchObject({ error: { cause: { code: 'ECONNREFUSED' }, attempt: 2, stepId: 'probe-all' } });
    expect(r.error).toMatchObject({ stepId: 'probe-all', item: 'm1', attempt: 2, cause: { code: 'ECONNREFUSED' } });
  });

  it('resume after a failure does not repeat steps that succeeded', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect'), step('b', 'effect', { forEach: { kind: 'members', members: 'all', order: 'as-listed', moveLeaderFirst: false } }), step('c', 'effect-once')]);
    const first = await (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects, { 'effect-once': { failTimes: 1, kind: 'failed' } }), stateDir: dir })).done;
    expect(first.status).toBe('failed');
    const reg = registry(effects);
    const second = await (await resumeRun({ stateDir: dir, runId: first.runId, registry: reg, runbook: rb, runbookText: 'x' })).done;
    expect(second.status).toBe('succeeded');
    expect(effects).toEqual({ a: 1, 'b:m1': 1, 'b:m2': 1, 'b:m3': 1, c: 1 });
  });

  it('a parallel forEach runs its items at once; a failed item lets the others finish, and the resume redoes only it', async () => {
    const effects: Record<string, number> = {};
    let inFlight = 0;
    let most = 0;
    let failM2 = true;
    const reg = registry(effects);
    reg.impl('effect')!.run = async (ctx) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        await new Promise((r) => setTimeout(r, ctx.item!.key === 'm2' ? 10 : 60));
        if (ctx.item!.key === 'm2' && failM2) throw new StepError('failed', 'm2 failed on purpose');
        effects[`${ctx.stepId}:${ctx.item!.key}`] = (effects[`${ctx.stepId}:${ctx.item!.key}`] ?? 0) + 1;
        return { key: ctx.item!.key };
      } finally {
        inFlight--;
      }
    };
    const rb = runbook([step('b', 'effect', { forEach: { kind: 'members', members: 'all', order: 'as-listed', moveLeaderFirst: false, parallel: true } }), step('c', 'read')]);
    const first = await (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: reg, stateDir: dir })).done;
    expect(first.status).toBe('failed');
    expect(most).toBe(3);
    expect(first.error).toMatchObject({ stepId: 'b', item: 'm2' });
    // m2 failed first; m1 and m3 were not cut off, they finished and are journaled as done.
    expect(effects).toEqual({ 'b:m1': 1, 'b:m3': 1 });
    expect(first.records.filter((x) => x.type === 'step.succeeded' && x.stepId === 'b').map((x) => 'item' in x && x.item).sort()).toEqual(['m1', 'm3']);
    expect(first.records.find((x) => x.type === 'step.items')).toMatchObject({ items: ['m1', 'm2', 'm3'], parallel: true });

    failM2 = false;
    const second = await (await resumeRun({ stateDir: dir, runId: first.runId, registry: reg, runbook: rb, runbookText: 'x' })).done;
    expect(second.status).toBe('succeeded');
    expect(effects).toEqual({ 'b:m1': 1, 'b:m2': 1, 'b:m3': 1, c: 1 });
    // Every item's output reaches the step's output, by member, in order.
    const finished = second.records.find((x) => x.type === 'step.finished' && x.stepId === 'b' && x.status === 'succeeded');
    expect(finished).toMatchObject({ output: { m1: { key: 'm1' }, m2: { key: 'm2' }, m3: { key: 'm3' } } });
  });

  it('a step left in doubt by a crash (started, never finished) is probed on resume: done there, it is not run again', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect-once'), step('b', 'effect')]);
    const first = await (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir })).done;
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
    const second = await (await resumeRun({ stateDir: dir, runId: first.runId, registry: reg, runbook: rb, runbookText: 'x' })).done;
    expect(second.status).toBe('succeeded');
    expect(probes).toBe(1);
    expect(effects).toEqual({ a: 1, b: 2 }); // a (not idempotent) was not run again; b (idempotent, never started) ran
    const recs = readJournal(journalFile).records;
    expect(recs.find((x) => x.type === 'step.probe' && x.stepId === 'a')).toMatchObject({ done: true, inDoubt: true });
    expect(recs.findLast((x) => x.type === 'step.succeeded' && x.stepId === 'a')).toMatchObject({ via: 'probe' });
  });

  it('resume refuses when the runbook changed', async () => {
    const rb = runbook([step('a', 'effect', { retry: DEFAULT_RETRY })]);
    const first = await (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry({}, { effect: { failTimes: 1, kind: 'failed' } }), stateDir: dir })).done;
    await expect(resumeRun({ stateDir: dir, runId: first.runId, registry: registry({}), runbook: runbook(rb.steps, 'h2'), runbookText: 'y' })).rejects.toThrow(/changed since run/);
  });

  it('approval: waits, a deny ends the run with status denied; an approve lets it go on', async () => {
    const effects: Record<string, number> = {};
    const rb = runbook([step('a', 'effect', { approval: 'required' }), step('b', 'effect')]);
    const h = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir });
    await waitFor(() => h.pendingApprovals().length > 0);
    expect(h.pendingApprovals()).toEqual(['a']);
    expect(effects).toEqual({});
    expect(await h.deny('a', 'bob', 'test', 'not now')).toBe(true);
    const r = await h.done;
    expect(r.status).toBe('denied');
    expect(effects).toEqual({});

    const h2 = await startRun({ runbook: rb, runbookText: 'x', inventory: { ...inventory, name: 'two' }, params: {}, registry: registry(effects), stateDir: dir });
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
    const r = await (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry(effects), stateDir: dir, dryRun: true })).done;
    expect(r.status).toBe('succeeded');
    expect(effects).toEqual({ b: 1 });
    expect(r.records.filter((x) => x.type === 'step.plan').map((x) => (x as { stepId: string }).stepId)).toEqual(['a', 'c']);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a second run on the same cluster is refused while the first holds the lock', async () => {
    const rb = runbook([step('a', 'slow')]);
    const h = (await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry({}), stateDir: dir }));
    await expect(startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: registry({}), stateDir: dir })).rejects.toThrow(new RegExp(`locked by run ${h.runId}`));
    await h.done;
  }, 20_000);
});

describe('the cluster identity a run is pinned to', () => {
  const peers = inventory.members.map((m) => m.peerURL).sort();
  const idOf = (clusterId: string | null, peerURLs = peers) => ({ clusterId, members: [], peerURLs });

  /** The counting registry, plus a restore action and a live identity the test changes between steps. */
  function pinnedRegistry(effects: Record<string, number>, live: { now: ReturnType<typeof idOf> }, onStep: Record<string, () => void> = {}): ActionRegistry {
    const base = registry(effects);
    const restore: ActionImpl = {
      async run(ctx) {
        effects[`${ctx.stepId}`] = (effects[`${ctx.stepId}`] ?? 0) + 1;
        onStep[ctx.stepId]?.();
        return {};
      },
    };
    return {
      ...base,
      meta: (n) => (n === 'restore' ? { name: n, summary: n, input: z.object({}), mutates: true, idempotent: true, resetsIdentity: true } : base.meta(n)),
      impl: (n) => (n === 'restore' ? restore : base.impl(n)),
      clusterIdentity: async () => live.now,
    };
  }

  it('a mutating step on a cluster that is not the pinned one is refused before its effect, naming both ids', async () => {
    const effects: Record<string, number> = {};
    const live = { now: idOf('aaaa1111') };
    const reg = registry(effects, {});
    const impl = reg.impl('read')!;
    const swapping: ActionRegistry = { ...pinnedRegistry(effects, live), impl: (n) => (n === 'read' ? { run: async (ctx, i) => { live.now = idOf('bbbb2222'); return impl.run(ctx, i); } } : reg.impl(n)) };
    const r = await (await startRun({ runbook: runbook([step('a', 'effect'), step('look', 'read'), step('b', 'effect')]), runbookText: 'x', inventory, params: {}, registry: swapping, stateDir: dir })).done;
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ stepId: 'b', kind: 'precondition' });
    expect(r.error!.message).toMatch(/aaaa1111.*bbbb2222/);
    expect(effects).toEqual({ a: 1, look: 1 });
    expect(r.records.find((x) => x.type === 'cluster.identity')).toMatchObject({ reason: 'start', identity: { clusterId: 'aaaa1111' } });
  });

  it('a restore journals the identity it replaces, then pins the new cluster id once the restored members answer', async () => {
    const effects: Record<string, number> = {};
    const live = { now: idOf('aaaa1111') };
    // the restored members answer with a new id once the restore is done; the approval then stops the run
    const reg = pinnedRegistry(effects, live, { restore: () => { live.now = idOf('cccc3333'); } });
    const rb = runbook([step('restore', 'restore'), step('after', 'effect'), step('gate', 'effect', { approval: 'required' })]);
    const h = await startRun({ runbook: rb, runbookText: 'x', inventory, params: {}, registry: reg, stateDir: dir });
    for (const until = Date.now() + 5000; h.pendingApprovals().length === 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
    await h.deny('gate', 'test', 'test');
    const r = await h.done;
    const pins = r.records.filter((x) => x.type === 'cluster.identity').map((x) => [(x as { reason: string }).reason, (x as { identity: { clusterId: string | null } }).identity.clusterId, (x as { previousClusterId?: string | null }).previousClusterId]);
    expect(pins).toEqual([['start', 'aaaa1111', undefined], ['restore', null, 'aaaa1111'], ['after-restore', 'cccc3333', 'aaaa1111']]);
    expect(effects).toMatchObject({ restore: 1, after: 1 });
  });

  it('a resume whose inventory reaches another cluster is refused before the lock and any step', async () => {
    const effects: Record<string, number> = {};
    const live = { now: idOf('aaaa1111') };
    // a run pinned to aaaa1111 that failed at its second step (resumable)
    const reg = pinnedRegistry(effects, live);
    const failing: ActionRegistry = { ...reg, impl: (n) => (n === 'effect-once' ? { run: async () => { throw new StepError('failed', 'on purpose'); } } : reg.impl(n)) };
    const run = await (await startRun({ runbook: runbook([step('a', 'effect'), step('b', 'effect-once')]), runbookText: 'x', inventory, params: {}, registry: failing, stateDir: dir })).done;
    expect(run.status).toBe('failed');
    live.now = idOf('bbbb2222', ['http://127.0.0.1:33800']);
    const other = { ...inventory, name: 'other', members: [{ ...inventory.members[0]!, peerURL: 'http://127.0.0.1:33800' }] };
    await expect(resumeRun({ stateDir: dir, runId: run.runId, registry: reg, runbook: runbook([step('a', 'effect'), step('b', 'effect-once')]), runbookText: 'x', inventory: other })).rejects.toThrow(/pinned to cluster id aaaa1111.*bbbb2222/);
    expect(effects).toEqual({ a: 1 });
    // with an inventory that reaches the run's own cluster it goes on
    live.now = idOf('aaaa1111');
    const resumed = await (await resumeRun({ stateDir: dir, runId: run.runId, registry: reg, runbook: runbook([step('a', 'effect'), step('b', 'effect-once')]), runbookText: 'x' })).done;
    expect(resumed.status).toBe('succeeded');
    expect(effects).toEqual({ a: 1, b: 1 });
  });
});
