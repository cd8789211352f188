import { describe, expect, it } from 'vitest';
import type { EtcdMember } from '../../../src/etcd/membership.ts';
import { initialCluster, replacementFlags, rewriteListen } from '../../../src/actions/membership-flags.ts';
import { StepError } from '../../../src/util/errors.ts';

const member = (id: string, name: string, peer: string, isLearner = false): EtcdMember => ({ id, name, peerURLs: [peer], clientURLs: name ? [peer.replace('2380', '2379')] : [], isLearner });

describe('initialCluster', () => {
  it('lists every member etcd lists, the new (unstarted) learner under the replacement name', () => {
    const list = [member('a1', 'm1', 'http://10.0.0.1:2380'), member('b2', '', 'http://10.0.0.9:2380', true), member('c3', 'm3', 'http://10.0.0.3:2380')];
    expect(initialCluster(list, 'b2', 'm2')).toBe('m1=http://10.0.0.1:2380,m2=http://10.0.0.9:2380,m3=http://10.0.0.3:2380');
  });

  it('refuses when another member was added but never started (its name is unknown)', () => {
    const list = [member('a1', 'm1', 'http://10.0.0.1:2380'), member('b2', '', 'http://10.0.0.9:2380', true), member('d4', '', 'http://10.0.0.4:2380', true)];
    expect(() => initialCluster(list, 'b2', 'm2')).toThrow(StepError);
  });
});

describe('rewriteListen', () => {
  it('replaces the old URL, moves a wildcard on the old port, keeps the rest', () => {
    expect(rewriteListen('http://127.0.0.1:2379,http://10.0.0.2:2379', 'http://10.0.0.2:2379', 'http://10.0.0.9:2479')).toBe('http://127.0.0.1:2379,http://10.0.0.9:2479');
    expect(rewriteListen('http://0.0.0.0:2380', 'http://10.0.0.2:2380', 'http://10.0.0.9:2480')).toBe('http://0.0.0.0:2480');
    expect(rewriteListen('http://0.0.0.0:2380', 'http://10.0.0.2:2380', 'http://10.0.0.9:2380')).toBe('http://0.0.0.0:2380');
  });

  it('adds the new URL when nothing covered it; leaves an absent flag alone when the address is the same', () => {
    expect(rewriteListen('http://127.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.9:2379')).toBe('http://127.0.0.1:2379,http://10.0.0.9:2379');
    expect(rewriteListen(undefined, 'http://10.0.0.2:2379', 'http://10.0.0.9:2379')).toBe('http://10.0.0.9:2379');
    expect(rewriteListen(undefined, 'http://10.0.0.2:2379', 'http://10.0.0.2:2379')).toBeUndefined();
  });
});

describe('replacementFlags', () => {
  const addr = { name: 'm2', oldPeerURL: 'http://10.0.0.2:2380', oldClientURL: 'http://10.0.0.2:2379', peerURL: 'http://10.0.0.9:2380', clientURL: 'http://10.0.0.9:2379' };

  it('joins an existing cluster at the new address; the data dir only when it changes', () => {
    const flags = new Map(replacementFlags(addr, { listenPeer: 'http://10.0.0.2:2380', listenClient: 'http://10.0.0.2:2379', dataDir: '/var/lib/etcd' }, 'm1=http://10.0.0.1:2380,m2=http://10.0.0.9:2380', '/var/lib/etcd/'));
    expect(Object.fromEntries(flags)).toEqual({
      name: 'm2',
      'initial-cluster': 'm1=http://10.0.0.1:2380,m2=http://10.0.0.9:2380',
      'initial-cluster-state': 'existing',
      'initial-advertise-peer-urls': 'http://10.0.0.9:2380',
      'advertise-client-urls': 'http://10.0.0.9:2379',
      'listen-peer-urls': 'http://10.0.0.9:2380',
      'listen-client-urls': 'http://10.0.0.9:2379',
    });
    const moved = new Map(replacementFlags(addr, { dataDir: '/var/lib/etcd' }, 'x', '/var/lib/etcd.replacement-b2'));
    expect(moved.get('data-dir')).toBe('/var/lib/etcd.replacement-b2');
  });
});
