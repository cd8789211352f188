/** Pure parts of the etcd layer and actions: status parsing, member matching, successor choice, quota, timeouts. */
import { quotaDisagreement } from '../../../src/etcd/quota.ts';
import { describe, expect, it } from 'vitest';
import type { IStatusResponse } from 'etcd3';
import type { Inventory, MemberSpec } from '../../../src/inventory/types.ts';
import { alarmNameFromWire, alarmsFromStatusErrors } from '../../../src/etcd/maintenance.ts';
import { statusFromWire, reclaimable } from '../../../src/etcd/status.ts';
import { findMember, matchMember, type ClusterView, type MemberProbe } from '../../../src/etcd/view.ts';
import type { EtcdMember } from '../../../src/etcd/membership.ts';
import { atQuota, effectiveQuota, quotaFromCommand, resolveQuota } from '../../../src/actions/etcd-common.ts';
import { defragTimeoutMs } from '../../../src/actions/etcd-defrag.ts';
import { pickSuccessor } from '../../../src/actions/etcd-leader.ts';
import { requestTarget } from '../../../src/actions/etcd-compact.ts';
import { makeActionContext } from '../../support/action-context.ts';

const MiB = 1024 * 1024;

// A StatusResponse as etcd 3.4 sent it through etcd3 (64-bit values as decimal strings).
const wire = {
  errors: ['memberID:17161531507652365892 alarm:NOSPACE ', 'memberID:14937332902295204503 alarm:NOSPACE '],
  header: { cluster_id: '8627668175975431253', member_id: '14937332902295204503', revision: '119', raft_term: '2' },
  version: '3.4.23',
  dbSize: '17260544',
  leader: '17161531507652365892',
  raftIndex: '133',
  raftTerm: '2',
  raftAppliedIndex: '133',
  dbSizeInUse: '8531968',
  isLearner: false,
} as unknown as IStatusResponse;

function spec(name: string, port: number, command: string[] = ['etcd']): MemberSpec {
  return { name, clientURL: `http://127.0.0.1:${port}`, peerURL: `http://127.0.0.1:${port + 1}`, driver: { type: 'process', command, pidFile: `/tmp/${name}.pid` } };
}

function inventory(members: MemberSpec[], more: Partial<Inventory> = {}): Inventory {
  return { name: 'unit', source: 'test', members, ...more };
}

describe('status from the wire', () => {
  it('gives hex ids, numbers, and who leads', () => {
    const s = statusFromWire('http://127.0.0.1:2379', 'm1', wire);
    expect(s).toMatchObject({
      memberId: 'cf4c11221d0f7297',
      leaderId: 'ee2a01fb034b0e44',
      clusterId: toHex('8627668175975431253'),
      dbSize: 17260544,
      dbSizeInUse: 8531968,
      revision: 119,
      raftAppliedIndex: 133,
      isLeader: false,
      isLearner: false,
    });
    expect(reclaimable(s)).toBe(17260544 - 8531968);
    expect(statusFromWire('x', 'm3', { ...wire, header: { ...wire.header, member_id: '17161531507652365892' } } as IStatusResponse).isLeader).toBe(true);
    expect(statusFromWire('x', 'm1', { ...wire, leader: '0' } as IStatusResponse).leaderId).toBe('0');
  });

  it('reads alarms out of status errors, and alarm names off the wire', () => {
    expect(alarmsFromStatusErrors(wire.errors as unknown as string[])).toEqual([
      { memberId: 'ee2a01fb034b0e44', alarm: 'NOSPACE' },
      { memberId: 'cf4c11221d0f7297', alarm: 'NOSPACE' },
    ]);
    expect(alarmsFromStatusErrors(['etcdserver: no leader'])).toEqual([]);
    expect(alarmNameFromWire('Nospace')).toBe('NOSPACE');
    expect(alarmNameFromWire('Corrupt')).toBe('CORRUPT');
    expect(alarmNameFromWire(1)).toBe('NOSPACE');
  });
});

function toHex(d: string): string {
  return BigInt(d).toString(16);
}

describe('matching inventory members to etcd members', () => {
  const list: EtcdMember[] = [
    { id: 'a1', name: 'etcd-a', peerURLs: ['http://127.0.0.1:2381/'], clientURLs: ['http://127.0.0.1:2380'], isLearner: false },
    { id: 'b2', name: '', peerURLs: ['http://127.0.0.1:3001'], clientURLs: [], isLearner: true },
  ];
  it('goes by status id first, then peer URL, client URL, name', () => {
    expect(matchMember(spec('x', 9000), list, 'b2')?.id).toBe('b2');
    expect(matchMember(spec('m1', 2380), list)?.id).toBe('a1'); // peer URL 2381 (trailing slash ignored)
    expect(matchMember({ ...spec('m2', 3000), peerURL: 'http://10.0.0.9:1' }, list)).toBeUndefined();
    expect(matchMember({ ...spec('etcd-a', 7000) }, list)?.id).toBe('a1');
  });

  it('finds members by name, hex id, peer URL or client URL', () => {
    const probes: MemberProbe[] = [
      { name: 'm1', endpoint: 'http://127.0.0.1:2380', spec: spec('m1', 2380), member: list[0]!, ok: false, error: 'down', errorKind: 'transient', errorClass: 'unreachable' },
      { name: 'm2', endpoint: 'http://127.0.0.1:3000', spec: spec('m2', 3000), member: list[1]!, ok: false, error: 'down', errorKind: 'transient', errorClass: 'unreachable' },
    ];
    const view = { members: probes } as ClusterView;
    expect(findMember(view, 'm2')?.name).toBe('m2');
    expect(findMember(view, 'a1')?.name).toBe('m1');
    expect(findMember(view, 'http://127.0.0.1:3001')?.name).toBe('m2');
    expect(findMember(view, 'http://127.0.0.1:3000')?.name).toBe('m2');
    expect(findMember(view, 'etcd-a')?.name).toBe('m1');
    expect(findMember(view, 'nope')).toBeUndefined();
  });
});

function answering(name: string, id: string, o: { leader?: string; learner?: boolean; applied?: number } = {}): MemberProbe & { ok: true } {
  const s = statusFromWire(`http://${name}`, name, wire);
  return {
    name, endpoint: `http://${name}`, spec: spec(name, 1000),
    ok: true,
    status: { ...s, memberId: id, leaderId: o.leader ?? 'l', isLeader: id === (o.leader ?? 'l'), isLearner: o.learner ?? false, raftAppliedIndex: o.applied ?? 100 },
  };
}

describe('choosing who leads next', () => {
  const view = (members: MemberProbe[]): ClusterView => ({ members } as ClusterView);
  it('prefers members already done, then the most caught up; never the leader, a learner or an excluded one', () => {
    const members = [answering('lead', 'l'), answering('a', 'a1', { applied: 90 }), answering('b', 'b1', { applied: 120 }), answering('c', 'c1', { learner: true, applied: 500 })];
    expect(pickSuccessor(view(members))?.name).toBe('b');
    expect(pickSuccessor(view(members), { prefer: ['a'] })?.name).toBe('a');
    expect(pickSuccessor(view(members), { exclude: ['b'] })?.name).toBe('a');
    expect(pickSuccessor(view([answering('lead', 'l'), answering('c', 'c1', { learner: true })]))).toBeUndefined();
    // A member that knows no leader is not healthy enough to take over.
    expect(pickSuccessor(view([answering('lead', 'l'), answering('x', 'x1', { leader: '0' })]))).toBeUndefined();
  });

  it('sends cluster-wide requests to the leader, else a voter, else fails with every reason', () => {
    const lead = answering('lead', 'l');
    expect(requestTarget({ members: [answering('a', 'a1'), lead], leader: lead } as ClusterView).name).toBe('lead');
    expect(requestTarget({ members: [answering('a', 'a1')] } as ClusterView).name).toBe('a');
    const down: MemberProbe = { name: 'm1', endpoint: 'e', spec: spec('m1', 1), ok: false, error: 'bad certificate', errorKind: 'invalid', errorClass: 'tls', hint: 'check the TLS files' };
    expect(() => requestTarget({ members: [down] } as ClusterView)).toThrow(expect.objectContaining({ kind: 'invalid', message: 'no voter answers: m1: bad certificate', hint: 'check the TLS files' }));
  });
});

describe('quota', () => {
  it('reads --quota-backend-bytes from an argv in either form', () => {
    expect(quotaFromCommand(['etcd', '--quota-backend-bytes', '16777216'])).toBe(16 * MiB);
    expect(quotaFromCommand(['etcd', '--quota-backend-bytes=8GiB'])).toBe(8 * 1024 ** 3);
    expect(quotaFromCommand(['etcd', '-quota-backend-bytes=1024'])).toBe(1024);
    expect(quotaFromCommand(['etcd', '--name', 'x'])).toBeUndefined();
    expect(quotaFromCommand(['etcd', '--quota-backend-bytes'])).toBeUndefined();
  });

  it('takes the input, the inventory, the smallest member flag, else 2 GiB', () => {
    const members = [spec('m1', 1, ['etcd', '--quota-backend-bytes', String(32 * MiB)]), spec('m2', 3, ['etcd', '--quota-backend-bytes=16MiB'])];
    expect(resolveQuota(inventory(members), 8 * MiB)).toEqual({ bytes: 8 * MiB, source: 'input' });
    expect(resolveQuota(inventory(members, { quotaBytes: 64 * MiB }))).toEqual({ bytes: 64 * MiB, source: 'inventory' });
    expect(resolveQuota(inventory(members))).toEqual({ bytes: 16 * MiB, source: 'member flags' });
    expect(resolveQuota(inventory([spec('m1', 1)]))).toEqual({ bytes: 2 * 1024 ** 3, source: 'etcd default' });
    // What the members report on /metrics beats every guess; the input (a raise) still comes first.
    expect(resolveQuota(inventory(members, { quotaBytes: 64 * MiB }), undefined, [24 * MiB, 32 * MiB])).toEqual({ bytes: 24 * MiB, source: 'member /metrics' });
    expect(resolveQuota(inventory(members), 8 * MiB, [24 * MiB])).toEqual({ bytes: 8 * MiB, source: 'input' });
  });

  it('names both values when the inventory or the members disagree on the quota', () => {
    expect(quotaDisagreement({ quotaBytes: 64 * MiB }, [{ name: 'm1', bytes: 24 * MiB }, { name: 'm2', bytes: 24 * MiB }])).toBe(
      "the inventory says quotaBytes 64.0 MiB but the members run with 24.0 MiB (member /metrics): using the members' value; update the inventory",
    );
    expect(quotaDisagreement({}, [{ name: 'm1', bytes: 24 * MiB }, { name: 'm2', bytes: 32 * MiB }])).toMatch(/different quotas \(member \/metrics: m1 24.0 MiB, m2 32.0 MiB\)/);
    expect(quotaDisagreement({ quotaBytes: 24 * MiB }, [{ name: 'm1', bytes: 24 * MiB }])).toBeUndefined();
  });

  it('prefers a raised quota from the run params, then what preflight found (members that do not answer /metrics)', async () => {
    const inv = inventory([spec('m1', 1)]);
    const t = makeActionContext(inv, {
      steps: { pre: { status: 'succeeded', output: { quotaBytes: 16 * MiB, quotaSource: 'member flags', unreachable: [], members: [] } } },
    });
    try {
      expect(await effectiveQuota(t.ctx)).toEqual({ bytes: 16 * MiB, source: 'member flags' });
      expect(await effectiveQuota(t.step('x', { params: { quotaBytes: '1GiB' } }))).toEqual({ bytes: 1024 ** 3, source: 'input' });
      expect(await effectiveQuota(t.ctx, 5)).toEqual({ bytes: 5, source: 'input' });
    } finally {
      await t.dispose();
    }
  });

  it('counts a db within 5% of the quota as full (etcd raises NOSPACE before size passes the quota)', () => {
    expect(atQuota(16 * MiB, 16 * MiB)).toBe(true);
    expect(atQuota(15.5 * MiB, 16 * MiB)).toBe(true);
    expect(atQuota(15 * MiB, 16 * MiB)).toBe(false);
  });
});

describe('defrag deadline', () => {
  it('scales with the db size, at least 30 s', () => {
    expect(defragTimeoutMs(64 * MiB, 120_000)).toBe(30_000);
    expect(defragTimeoutMs(8 * 1024 ** 3, 120_000)).toBe(16 * 60_000);
    expect(defragTimeoutMs(1024 ** 3, 45_000)).toBe(45_000);
  });
});
