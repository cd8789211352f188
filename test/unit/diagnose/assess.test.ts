/**
 * `runbook diagnose`'s judgement, from facts to findings and the runbook to run (pure: the facts are made here; the
 * integration tests collect them from real clusters).
 */
import { describe, expect, it } from 'vitest';
import { assess, type AssessContext } from '../../../src/diagnose/assess.ts';
import type { Facts } from '../../../src/diagnose/collect.ts';
import type { MemberFacts } from '../../../src/diagnose/types.ts';

const MiB = 1024 * 1024;
const QUOTA = 64 * MiB;

function member(name: string, over: Partial<MemberFacts> = {}): MemberFacts {
  return {
    name,
    endpoint: `http://127.0.0.1:${2379 + Number(name.slice(1))}`,
    reachable: true,
    memberId: `${name}id`,
    isLeader: name === 'm1',
    isLearner: false,
    version: '3.5.30',
    dbSize: 8 * MiB,
    dbSizeInUse: 6 * MiB,
    fragmentation: 0.25,
    quotaBytes: QUOTA,
    quotaSource: 'member /metrics',
    usage: (8 * MiB) / QUOTA,
    autoCompactionDisabled: false,
    ...over,
  };
}

function facts(over: Partial<Facts> = {}): Facts {
  return {
    cluster: 'prod',
    source: 'cluster.yaml',
    checkedAt: '2026-01-01T00:00:00Z',
    leader: { name: 'm1', memberId: 'm1id' },
    raftTerm: 2,
    clusterId: 'c1',
    clusterIds: ['c1'],
    revision: 1000,
    compactRevision: 900,
    compactionGap: 100,
    members: [member('m1'), member('m2'), member('m3')],
    learners: [],
    alarms: [],
    unknownMembers: [],
    certificates: [],
    cannotRead: [],
    quotaWarning: null,
    notes: [],
    ...over,
  };
}

const ctx: AssessContext = { target: ['-i', 'cluster.yaml'], hasDrivers: true, kubernetes: false };
const codes = (d: ReturnType<typeof assess>) => d.findings.map((f) => f.code);

describe('assess', () => {
  it('a healthy cluster: status healthy, nothing to run', () => {
    const d = assess(facts(), ctx);
    expect(d).toEqual({ status: 'healthy', findings: [], recommendations: [] });
  });

  it('a NOSPACE alarm is critical and recommends nospace-recovery with the exact command and its dry run', () => {
    const d = assess(facts({ alarms: [{ member: 'm2', memberId: 'm2id', alarm: 'NOSPACE' }] }), ctx);
    expect(d.status).toBe('critical');
    expect(d.findings[0]).toMatchObject({ severity: 'critical', code: 'nospace-alarm', member: 'm2' });
    expect(d.recommendations).toEqual([
      expect.objectContaining({ runbook: 'nospace-recovery', command: 'runbook run nospace-recovery -i cluster.yaml', plan: 'runbook plan nospace-recovery -i cluster.yaml' }),
    ]);
  });

  it('a db past 90% of its quota is critical, past 80% a warning, and both point at nospace-recovery', () => {
    const crit = assess(facts({ members: [member('m1', { usage: 0.95, dbSize: 0.95 * QUOTA }), member('m2'), member('m3')] }), ctx);
    expect(crit.status).toBe('critical');
    expect(crit.findings).toContainEqual(expect.objectContaining({ code: 'quota-usage', severity: 'critical', member: 'm1' }));
    const warn = assess(facts({ members: [member('m1', { usage: 0.85, dbSize: 0.85 * QUOTA }), member('m2'), member('m3')] }), ctx);
    expect(warn.status).toBe('warning');
    expect(warn.recommendations.map((r) => r.runbook)).toEqual(['nospace-recovery']);
  });

  it('one member down with quorum kept: replace that member (named in the command), findings sorted critical first', () => {
    const d = assess(facts({ members: [member('m1'), member('m2', { reachable: false, error: 'connection refused', errorClass: 'unreachable' }), member('m3', { version: '3.5.16' })] }), ctx);
    expect(d.findings[0]).toMatchObject({ severity: 'critical', code: 'member-down', member: 'm2' });
    expect(codes(d)).toContain('mixed-versions');
    expect(codes(d)).not.toContain('no-quorum');
    expect(d.recommendations).toEqual([expect.objectContaining({ runbook: 'member-replacement', command: 'runbook run member-replacement -i cluster.yaml -p member=m2' })]);
  });

  it('a majority down: no quorum, and the way back is power-loss-restore, not a member replacement', () => {
    const down = { reachable: false, error: 'connection refused', errorClass: 'unreachable' as const };
    const d = assess(facts({ leader: null, members: [member('m1'), member('m2', down), member('m3', down)] }), ctx);
    expect(codes(d)).toContain('no-quorum');
    expect(d.recommendations.map((r) => r.runbook)).toEqual(['power-loss-restore']);
  });

  it('a member that refuses our credentials is not "down", and no runbook is recommended on a cluster we cannot read', () => {
    const d = assess(
      facts({
        members: [member('m1'), member('m2', { reachable: false, errorClass: 'auth', error: 'user name is empty' }), member('m3')],
        cannotRead: [{ member: 'm2', what: 'status', errorClass: 'auth', reason: 'user name is empty', fix: 'set auth in the inventory' }],
      }),
      ctx,
    );
    expect(codes(d)).toContain('credentials-required');
    expect(codes(d)).not.toContain('member-down');
    expect(d.recommendations.every((r) => r.runbook === undefined)).toBe(true);
    expect(d.recommendations[0]!.reason).toMatch(/set auth in the inventory/);
  });

  it('says when a recommended runbook needs member drivers that --endpoints does not give', () => {
    const d = assess(facts({ members: [member('m1'), member('m2', { reachable: false, errorClass: 'unreachable' }), member('m3')] }), { target: ['--endpoints', 'http://a:2379'], hasDrivers: false, kubernetes: false });
    expect(d.recommendations[0]!.reason).toMatch(/needs an inventory/);
    expect(d.recommendations[0]!.command).toBe('runbook run member-replacement --endpoints http://a:2379 -p member=m2');
  });

  it('auto-compaction off is a warning, but only information under Kubernetes (kube-apiserver compacts)', () => {
    const off = facts({ members: [member('m1', { autoCompactionDisabled: true }), member('m2'), member('m3')] });
    expect(assess(off, ctx).findings).toContainEqual(expect.objectContaining({ code: 'auto-compaction-off', severity: 'warning' }));
    expect(assess(off, { ...ctx, kubernetes: true }).findings).toContainEqual(expect.objectContaining({ code: 'auto-compaction-off', severity: 'info' }));
    expect(assess(off, { ...ctx, kubernetes: true }).status).toBe('healthy');
  });

  it('an expired client certificate with members unreadable: renew it first, no runbook', () => {
    const d = assess(
      facts({
        members: [member('m1', { reachable: false, errorClass: 'unreachable' }), member('m2'), member('m3')],
        certificates: [{ role: 'client cert', path: '/etc/etcd/client.crt', status: 'expired', notAfter: '2025-12-29T00:00:00.000Z', daysLeft: -3 }],
      }),
      ctx,
    );
    expect(d.findings).toContainEqual(expect.objectContaining({ code: 'cert-expired', severity: 'critical' }));
    expect(d.recommendations).toHaveLength(1);
    expect(d.recommendations[0]).not.toHaveProperty('runbook');
    expect(d.recommendations[0]!.reason).toMatch(/renew/);
  });
});
