import { describe, expect, it } from 'vitest';
import { buildFacts, type MemberSample } from '../../../src/guard/facts.ts';
import { buildRules, DEFAULT_RULES, evaluateRules } from '../../../src/guard/rules.ts';
import { decide, newTriggerState, runEnded } from '../../../src/guard/trigger.ts';
import type { Inventory } from '../../../src/inventory/types.ts';
import type { MemberStatus } from '../../../src/etcd/status.ts';

const MiB = 1024 * 1024;
const inventory = { name: 'c', source: 'test', members: ['m1', 'm2', 'm3'].map((name) => ({ name, clientURL: `http://${name}:2379`, peerURL: `http://${name}:2380`, driver: { type: 'none' } })) } as unknown as Inventory;

function sample(name: string, dbSize: number, inUse: number, opts: { quota?: number; revision?: number; compact?: number; leader?: boolean } = {}): MemberSample {
  const status = { endpoint: name, name, memberId: name, leaderId: 'm1', clusterId: 'c', version: '3.5.30', dbSize, dbSizeInUse: inUse, revision: opts.revision ?? 100, raftIndex: 1, raftTerm: 2, isLearner: false, isLeader: opts.leader ?? false, errors: [] } as MemberStatus;
  return { name, endpoint: name, status, metrics: { quotaBytes: opts.quota ?? 16 * MiB, compactRevision: opts.compact ?? 0 } };
}

const facts = (samples: MemberSample[], autoCompaction: boolean | null = false) => buildFacts(samples, inventory, autoCompaction, 1000);
const holding = (f: ReturnType<typeof facts>) => evaluateRules(DEFAULT_RULES, f).filter((r) => r.holds).map((r) => r.rule);

describe('guard rules (CEL over cluster and members)', () => {
  it('quota-use holds above 80% of the quota the member itself reports', () => {
    expect(holding(facts([sample('m1', 12 * MiB, 12 * MiB), sample('m2', 1 * MiB, 1 * MiB), sample('m3', 0, 0)]))).toEqual([]);
    expect(holding(facts([sample('m1', 13 * MiB, 13 * MiB), sample('m2', 1 * MiB, 1 * MiB), sample('m3', 0, 0)]))).toEqual(['quota-use']);
    // the same db under a 2 GiB quota is nowhere near
    expect(holding(facts([sample('m1', 13 * MiB, 13 * MiB, { quota: 2 * 1024 * MiB })]))).toEqual([]);
  });
  it('fragmentation needs both more than half free and at least 100 MiB to gain', () => {
    const big = 8 * 1024 * MiB;
    expect(holding(facts([sample('m1', 300 * MiB, 100 * MiB, { quota: big })]))).toEqual(['fragmentation']);
    expect(holding(facts([sample('m1', 150 * MiB, 60 * MiB, { quota: big })]))).toEqual([]); // 90 MiB to gain
    expect(holding(facts([sample('m1', 300 * MiB, 200 * MiB, { quota: big })]))).toEqual([]); // a third free
  });
  it('history holds past the threshold unless auto-compaction is known to be on', () => {
    const s = [sample('m1', 1 * MiB, 1 * MiB, { revision: 1_500_001, compact: 500_000 })];
    expect(holding(facts(s, false))).toEqual(['history']);
    expect(holding(facts(s, null))).toEqual(['history']);
    expect(holding(facts(s, true))).toEqual([]);
    expect(holding(facts([sample('m1', 1 * MiB, 1 * MiB, { revision: 1_400_000, compact: 500_000 })], false))).toEqual([]);
  });
  it('an unreachable member counts as nothing, not as an error', () => {
    const f = facts([sample('m1', 1 * MiB, 1 * MiB), { name: 'm2', endpoint: 'm2', error: 'connection refused' }]);
    const r = evaluateRules(DEFAULT_RULES, f);
    expect(r.every((x) => !x.error && !x.holds)).toBe(true);
    expect(f.cluster.reachable).toBe(1);
  });
  it('overrides replace, add and drop rules; a bad expression is refused naming where it came from', () => {
    const rules = buildRules({ 'quota-use': 'members.exists(m, m.usage > 0.5)', history: false, mine: 'cluster.reachable < cluster.members' }, (n) => `--rule ${n}`);
    expect(rules.map((r) => r.name)).toEqual(['quota-use', 'fragmentation', 'mine']);
    expect(() => buildRules({ bad: 'members.exists(m, ' }, (n) => `--rule ${n}`)).toThrow(/--rule bad/);
    expect(() => buildRules({ Bad_Name: 'true' }, (n) => `--rule ${n}`)).toThrow(/not a rule name/);
    expect(() => buildRules({ x: 'steps.a.status == "x"' }, (n) => `--rule ${n}`)).toThrow(/--rule x/);
  });
  it('a rule that does not yield a boolean does not hold and says why', () => {
    const [r] = evaluateRules([{ name: 'n', expr: 'cluster.revision' }], facts([sample('m1', 0, 0)]));
    expect(r).toMatchObject({ holds: false, error: expect.stringMatching(/true or false/) });
  });
});

describe('guard trigger: hysteresis and cooldown', () => {
  const r = (rule: string, holds: boolean) => ({ rule, holds });
  it('starts on a holding rule, then waits out the cooldown', () => {
    const st = newTriggerState();
    expect(decide([r('quota-use', true)], st, 0, 10_000)).toEqual({ action: 'start', rules: ['quota-use'] });
    runEnded(st, ['quota-use'], false, 1000); // failed: not disarmed, but cooling down
    expect(decide([r('quota-use', true)], st, 5000, 10_000)).toMatchObject({ action: 'cooldown', untilMs: 11_000 });
    expect(decide([r('quota-use', true)], st, 11_000, 10_000)).toEqual({ action: 'start', rules: ['quota-use'] });
  });
  it('after a successful run a rule must clear once before it starts another (hysteresis)', () => {
    const st = newTriggerState();
    runEnded(st, ['quota-use'], true, 0);
    expect(decide([r('quota-use', true)], st, 60_000, 1000)).toEqual({ action: 'hysteresis', rules: ['quota-use'] });
    expect(decide([r('quota-use', false)], st, 61_000, 1000)).toEqual({ action: 'none' });
    expect(decide([r('quota-use', true)], st, 62_000, 1000)).toEqual({ action: 'start', rules: ['quota-use'] });
  });
  it('another armed rule may start a run while a disarmed one still holds', () => {
    const st = newTriggerState();
    runEnded(st, ['quota-use'], true, 0);
    expect(decide([r('quota-use', true), r('history', true)], st, 60_000, 1000)).toEqual({ action: 'start', rules: ['history'] });
  });
});
