import { describe, expect, it } from 'vitest';
import type { MemberSpec } from '../../../src/inventory/types.ts';
import { findInRoster, type Roster } from '../../../src/actions/membership-roster.ts';

const spec = (name: string, n: number): MemberSpec => ({ name, clientURL: `http://127.0.0.1:${2379 + 10 * n}`, peerURL: `http://127.0.0.1:${2380 + 10 * n}`, driver: { type: 'none' } });
const m1 = spec('m1', 1);
const m2 = spec('m2', 2);
const m3 = spec('m3', 3);

const roster: Roster = {
  entries: [
    { member: { id: '8e9e05c52164694d', name: 'm1', peerURLs: [m1.peerURL], clientURLs: [m1.clientURL], isLearner: false }, spec: m1 },
    { member: { id: 'a1b2', name: 'etcd-b', peerURLs: [m2.peerURL], clientURLs: [m2.clientURL], isLearner: false }, spec: m2 },
    { member: { id: 'fffffffffffffff0', name: 'stranger', peerURLs: ['http://10.9.9.9:2380'], clientURLs: [], isLearner: false } },
  ],
  missing: [m3],
  linearizable: true,
  leaderId: null,
  errors: [],
};

const id = (ref: string) => {
  const f = findInRoster(roster, ref);
  return f?.kind === 'member' ? f.entry.member.id : f?.kind === 'missing' ? `missing:${f.spec.name}` : undefined;
};

describe('findInRoster: a member by what a person would type', () => {
  it('inventory name, etcd name, peer and client URL', () => {
    expect(id('m2')).toBe('a1b2');
    expect(id('etcd-b')).toBe('a1b2');
    expect(id('stranger')).toBe('fffffffffffffff0');
    expect(id(m2.peerURL)).toBe('a1b2');
    expect(id(`${m2.clientURL}/`)).toBe('a1b2');
  });

  it('member ids in etcdctl\'s three spellings (padded hex, unpadded hex, decimal) and 0x', () => {
    expect(id('8e9e05c52164694d')).toBe('8e9e05c52164694d');
    expect(id(' 8e9e05c52164694d')).toBe('8e9e05c52164694d');
    expect(id('0x8E9E05C52164694D')).toBe('8e9e05c52164694d');
    expect(id(BigInt('0x8e9e05c52164694d').toString(10))).toBe('8e9e05c52164694d');
    expect(id('0000a1b2')).toBe('a1b2');
  });

  it('an inventory member etcd does not list is "missing" (already removed); unknown refs are undefined', () => {
    expect(id('m3')).toBe('missing:m3');
    expect(id(m3.peerURL)).toBe('missing:m3');
    expect(id('m9')).toBeUndefined();
    expect(id('deadbeef')).toBeUndefined();
  });
});
