import { describe, expect, it } from 'vitest';
import { buildFacts, type MemberSample } from '../../../src/guard/facts.ts';
import { assessFindings, FINDING_DEFAULTS, newFindingMemory } from '../../../src/guard/findings.ts';
import type { CertInfo } from '../../../src/diagnose/certs.ts';
import type { Inventory } from '../../../src/inventory/types.ts';
import type { MemberStatus } from '../../../src/etcd/status.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const inventory = { name: 'c', source: 'test', members: [] } as unknown as Inventory;

function sample(name: string, dbSize: number, opts: { quota?: number; learner?: boolean; alarm?: string } = {}): MemberSample {
  const status = { endpoint: name, name, memberId: name, leaderId: 'm1', clusterId: 'c', version: '3.5.30', dbSize, dbSizeInUse: dbSize, revision: 10, raftIndex: 1, raftTerm: 2, isLearner: opts.learner ?? false, isLeader: name === 'm1', errors: opts.alarm ? [`memberID:1 alarm:${opts.alarm} `] : [] } as MemberStatus;
  return { name, endpoint: name, status, metrics: { quotaBytes: opts.quota ?? 8 * GiB } };
}

const codes = (fs: { code: string; member: string }[]) => fs.map((f) => `${f.code}${f.member ? `@${f.member}` : ''}`).sort();

function run(samples: MemberSample[], at: number, mem = newFindingMemory(), extra: { autoCompaction?: boolean | null; certificates?: CertInfo[]; runActive?: boolean } = {}) {
  const facts = buildFacts(samples, inventory, extra.autoCompaction ?? true, at);
  return assessFindings({ facts, certificates: extra.certificates ?? [], runActive: extra.runActive ?? false, ineffective: [] }, mem, FINDING_DEFAULTS);
}

describe('guard findings (reported, never fixed)', () => {
  it('auto-compaction off; a NOSPACE alarm', () => {
    expect(codes(run([sample('m1', MiB, { alarm: 'NOSPACE' })], 0, undefined, { autoCompaction: false }))).toEqual(['auto-compaction-off', 'nospace-alarm']);
    expect(codes(run([sample('m1', MiB)], 0, undefined, { autoCompaction: null }))).toEqual([]);
  });
  it('the default 2 GiB quota: reported once the db is past half of it, or growing toward it within a week', () => {
    expect(codes(run([sample('m1', 1.2 * GiB, { quota: 2 * GiB })], 0))).toEqual(['default-quota@m1']);
    expect(codes(run([sample('m1', 1.2 * GiB, { quota: 4 * GiB })], 0))).toEqual([]);
    const mem = newFindingMemory();
    expect(codes(run([sample('m1', 100 * MiB, { quota: 2 * GiB })], 0, mem))).toEqual([]);
    // +100 MiB in an hour: the quota is ~18 hours away
    expect(codes(run([sample('m1', 200 * MiB, { quota: 2 * GiB })], 3600_000, mem))).toEqual(['default-quota@m1']);
  });
  it('a learner for longer than the limit', () => {
    const mem = newFindingMemory();
    const s = [sample('m1', MiB), sample('m4', MiB, { learner: true })];
    expect(codes(run(s, 0, mem))).toEqual([]);
    expect(codes(run(s, FINDING_DEFAULTS.learnerMaxMs + 1, mem))).toEqual(['learner-stuck@m4']);
    expect(codes(run([sample('m1', MiB), sample('m4', MiB)], FINDING_DEFAULTS.learnerMaxMs + 2, mem))).toEqual([]);
  });
  it('uneven db sizes across voters, in several polls in a row and not while a run is in progress', () => {
    const mem = newFindingMemory();
    const s = [sample('m1', 400 * MiB), sample('m2', 100 * MiB), sample('m3', 390 * MiB)];
    expect(codes(run(s, 0, mem))).toEqual([]);
    expect(codes(run(s, 1, mem))).toEqual([]);
    expect(codes(run(s, 2, mem))).toEqual(['uneven-db@m1']);
    expect(codes(run(s, 3, mem, { runActive: true }))).toEqual([]);
    expect(codes(run([sample('m1', 40 * MiB), sample('m2', 10 * MiB)], 4, newFindingMemory()))).toEqual([]); // below 64 MiB apart
  });
  it('certificates expiring within 30 days or expired', () => {
    const certs: CertInfo[] = [
      { role: 'client cert', path: '/a.pem', status: 'expiring', notAfter: '2027-01-01T00:00:00.000Z', daysLeft: 12 },
      { role: 'CA', path: '/ca.pem', status: 'ok', notAfter: '2030-01-01T00:00:00.000Z', daysLeft: 1000 },
      { role: 'm1 server cert', path: '/s.pem', status: 'expired', notAfter: '2026-01-01T00:00:00.000Z', daysLeft: -3 },
    ];
    const found = run([sample('m1', MiB)], 0, undefined, { certificates: certs });
    expect(codes(found)).toEqual(['cert-expired', 'cert-expiring']);
    expect(found.find((f) => f.code === 'cert-expiring')!.message).toMatch(/\/a\.pem.*12 days/);
  });
  it('a member that does not answer two polls in a row', () => {
    const mem = newFindingMemory();
    const down: MemberSample = { name: 'm2', endpoint: 'm2', error: 'connection refused' };
    expect(codes(run([sample('m1', MiB), down], 0, mem))).toEqual([]);
    const found = run([sample('m1', MiB), down], 1, mem);
    expect(codes(found)).toEqual(['member-unreachable@m2']);
    expect(found[0]!.message).toMatch(/connection refused/);
    expect(codes(run([sample('m1', MiB), sample('m2', MiB)], 2, mem))).toEqual([]);
  });
});
