/**
 * diagnose's judgement on facts that are hard to produce on a live test cluster (CORRUPT alarm, a learner, heavy
 * fragmentation, a long history, a server certificate that expired): severities, exit-relevant status and the
 * recommended commands. Pure: no etcd.
 */
import { describe, expect, it } from 'vitest';
import { assess, shellQuote, type AssessContext } from '../../src/diagnose/assess.ts';
import type { Facts } from '../../src/diagnose/collect.ts';
import type { MemberFacts } from '../../src/diagnose/types.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function member(name: string, over: Partial<MemberFacts> = {}): MemberFacts {
  return {
    name, endpoint: `https://10.0.0.${name.slice(-1)}:2379`, reachable: true, isLeader: name === 'etcd-1', isLearner: false,
    version: '3.5.12', raftTerm: 4, revision: 1000, dbSize: 100 * MiB, dbSizeInUse: 90 * MiB, fragmentation: 0.1,
    quotaBytes: 2 * GiB, quotaSource: 'etcd default (2 GiB)', usage: (100 * MiB) / (2 * GiB), autoCompactionDisabled: false, ...over,
  };
}

function facts(over: Partial<Facts> = {}): Facts {
  return {
    cluster: 'prod', source: '/etc/runbook/prod.yaml', checkedAt: '2026-01-01T00:00:00.000Z',
    leader: { name: 'etcd-1', memberId: 'a1' }, raftTerm: 4, clusterId: 'c1', clusterIds: ['c1'], revision: 1000, compactRevision: 900, compactionGap: 100,
    members: [member('etcd-1'), member('etcd-2'), member('etcd-3')], learners: [], alarms: [], unknownMembers: [], certificates: [], notes: [], cannotRead: [], quotaWarning: null,
    ...over,
  };
}

const inv: AssessContext = { target: ['-i', '/etc/runbook/prod.yaml'], hasDrivers: true, kubernetes: false };

describe('diagnose assessment', () => {
  it('a healthy cluster: no findings, no recommendation', () => {
    expect(assess(facts(), inv)).toEqual({ findings: [], recommendations: [], status: 'healthy' });
  });

  it('usage above 80%: a warning and nospace-recovery; above 90%: critical', () => {
    const warn = assess(facts({ members: [member('etcd-1', { usage: 0.85, dbSize: 1.7 * GiB }), member('etcd-2'), member('etcd-3')] }), inv);
    expect(warn.status).toBe('warning');
    expect(warn.findings).toEqual([expect.objectContaining({ severity: 'warning', code: 'quota-usage', member: 'etcd-1' })]);
    expect(warn.recommendations).toEqual([expect.objectContaining({ runbook: 'nospace-recovery', command: 'runbook run nospace-recovery -i /etc/runbook/prod.yaml' })]);
    const crit = assess(facts({ members: [member('etcd-1', { usage: 0.95, dbSize: 1.9 * GiB }), member('etcd-2'), member('etcd-3')] }), inv);
    expect(crit.status).toBe('critical');
  });

  it('a CORRUPT alarm: critical, and the corrupt member is the one to replace', () => {
    const r = assess(facts({ alarms: [{ member: 'etcd-2', memberId: 'b2', alarm: 'CORRUPT' }] }), inv);
    expect(r.status).toBe('critical');
    expect(r.findings[0]).toMatchObject({ code: 'corrupt-alarm', member: 'etcd-2' });
    expect(r.recommendations).toEqual([expect.objectContaining({ runbook: 'member-replacement', command: 'runbook run member-replacement -i /etc/runbook/prod.yaml -p member=etcd-2' })]);
  });

  it('with --endpoints the commands repeat the endpoints and TLS flags, and runbooks that need drivers say so', () => {
    const ctx: AssessContext = { target: ['--endpoints', 'https://10.0.0.1:2379,https://10.0.0.2:2379', '--cacert', '/etc/my pki/ca.crt'], hasDrivers: false, kubernetes: true };
    const r = assess(facts({ members: [member('etcd-1'), member('etcd-2', { reachable: false, error: 'connection refused' }), member('etcd-3')] }), ctx);
    const rep = r.recommendations.find((x) => x.runbook === 'member-replacement')!;
    expect(rep.command).toBe(`runbook run member-replacement --endpoints https://10.0.0.1:2379,https://10.0.0.2:2379 --cacert '/etc/my pki/ca.crt' -p member=etcd-2`);
    expect(rep.reason).toMatch(/needs an inventory/);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('heavy fragmentation, a long history, auto-compaction off, a learner, mixed versions: warnings and notes, exit 0', () => {
    const r = assess(
      facts({
        members: [
          member('etcd-1', { dbSize: 1 * GiB, dbSizeInUse: 300 * MiB, fragmentation: 0.7, usage: 0.5, autoCompactionDisabled: true }),
          member('etcd-2', { version: '3.5.9' }),
          member('etcd-3', { isLearner: true }),
        ],
        learners: ['etcd-3'],
        compactRevision: 0,
        compactionGap: 5_000_000,
      }),
      { ...inv, kubernetes: true },
    );
    expect(r.status).toBe('warning');
    const byCode = Object.fromEntries(r.findings.map((f) => [f.code, f.severity]));
    // etcd-1 is also half of the default quota and ten times the size of etcd-2 (what runbook guard reports too)
    expect(byCode).toEqual({ fragmentation: 'warning', 'compaction-gap': 'warning', 'auto-compaction-off': 'info', learner: 'info', 'mixed-versions': 'warning', 'default-quota': 'warning', 'uneven-db': 'warning' });
    expect(r.recommendations).toEqual([]);
  });

  it('an expired server certificate: critical, renew the member certificates (no runbook)', () => {
    const r = assess(
      facts({ certificates: [{ role: 'etcd-1 server cert (--cert-file)', path: '/etc/kubernetes/pki/etcd/server.crt', status: 'expired', notAfter: '2025-01-01T00:00:00.000Z', daysLeft: -400 }] }),
      inv,
    );
    expect(r.status).toBe('critical');
    expect(r.findings[0]).toMatchObject({ code: 'cert-expired' });
    expect(r.recommendations).toEqual([{ reason: expect.stringMatching(/renew the member certificates \(\/etc\/kubernetes\/pki\/etcd\/server\.crt/) }]);
  });

  it('no quorum: power-loss-restore only (replacing members needs a quorum)', () => {
    const down = { reachable: false, error: 'connection refused' };
    const r = assess(facts({ leader: null, members: [member('etcd-1', down), member('etcd-2', down), member('etcd-3')] }), inv);
    expect(r.findings.map((f) => f.code)).toEqual(['member-down', 'member-down', 'no-quorum']);
    expect(r.recommendations.map((x) => x.runbook)).toEqual(['power-loss-restore']);
  });

  it('the default 2 GiB quota past half full, and voters of very different db sizes: warnings (what runbook guard reports too)', () => {
    const r = assess(facts({ members: [member('etcd-1', { usage: 0.6, dbSize: 1.2 * GiB }), member('etcd-2', { usage: 0.6, dbSize: 1.2 * GiB }), member('etcd-3', { usage: 0.1, dbSize: 200 * MiB })] }), inv);
    expect(r.findings.map((f) => `${f.code}@${f.member}`).sort()).toEqual(['default-quota@etcd-1', 'default-quota@etcd-2', 'uneven-db@etcd-1']);
    expect(r.status).toBe('warning');
    const set = assess(facts({ members: [member('etcd-1', { usage: 0.3, dbSize: 1.2 * GiB, quotaBytes: 4 * GiB, quotaSource: 'member flag --quota-backend-bytes' }), member('etcd-2', { dbSize: 1.1 * GiB }), member('etcd-3', { dbSize: 1.15 * GiB })] }), inv);
    expect(set.findings).toEqual([]);
  });
});
