import { describe, expect, it } from 'vitest';
import { atLeast, compareVersions, flagName, minorOf, oldestOf, parseEtcdVersion, toolFitsCluster, traitsOf } from '../../../src/etcd/versions.ts';

describe('etcd versions: one table of what differs', () => {
  it('parses what etcd, its tools, Status and /metrics print', () => {
    expect(parseEtcdVersion('etcd Version: 3.4.23\nGit SHA: x\nGo Version: go1.19.8')?.text).toBe('3.4.23');
    expect(parseEtcdVersion('etcdctl version: 3.5.9\nAPI version: 3.5')?.text).toBe('3.5.9');
    expect(parseEtcdVersion('etcdutl version: 3.6.1')).toEqual({ major: 3, minor: 6, patch: 1, text: '3.6.1' });
    expect(parseEtcdVersion('v3.6.0-rc.1')?.text).toBe('3.6.0');
    expect(parseEtcdVersion('etcd_server_version{server_version="3.5.30"} 1')?.text).toBe('3.5.30');
    expect(parseEtcdVersion('3.5.0')?.patch).toBe(0);
    expect(parseEtcdVersion('API version: 3.5')).toBeUndefined();
    expect(parseEtcdVersion('')).toBeUndefined();
    expect(parseEtcdVersion(null)).toBeUndefined();
  });

  it('orders versions numerically, not as text', () => {
    expect(compareVersions('3.5.9', '3.5.30')).toBeLessThan(0);
    expect(compareVersions('3.5.30', '3.6.0')).toBeLessThan(0);
    expect(compareVersions('3.4.23', '3.4.23')).toBe(0);
    expect(atLeast('3.5.0', '3.5')).toBe(true);
    expect(atLeast('3.4.23', '3.5')).toBe(false);
    expect(atLeast('3.5.9', '3.5.10')).toBe(false);
    expect(minorOf('3.5.30')).toBe('3.5');
    // a cluster mid-upgrade runs at its oldest member's version
    expect(oldestOf(['3.5.30', '3.4.23', null, '3.5.16'])?.text).toBe('3.4.23');
    expect(oldestOf([null, undefined])).toBeUndefined();
  });

  it('3.4.x: etcdctl restores, text logs, the debugging db-size metric too', () => {
    const t = traitsOf('3.4.23');
    expect(t.snapshotTools).toEqual(['etcdctl']);
    expect(t.defaultLogFormat).toBe('text');
    expect(t.dbSizeMetrics).toContain('etcd_debugging_mvcc_db_total_size_in_bytes');
    expect(flagName('experimental-compaction-batch-limit', '3.4.23')).toBe('experimental-compaction-batch-limit');
  });

  it('3.5.0, 3.5.9 and 3.5.30: etcdutl first, etcdctl deprecated but working, JSON logs', () => {
    for (const v of ['3.5.0', '3.5.9', '3.5.30']) {
      const t = traitsOf(v);
      expect(t.snapshotTools, v).toEqual(['etcdutl', 'etcdctl']);
      expect(t.deprecatedSnapshotTools, v).toEqual(['etcdctl']);
      expect(t.defaultLogFormat, v).toBe('json');
      expect(t.dbSizeMetrics, v).toEqual(['etcd_mvcc_db_total_size_in_bytes']);
      expect(t.hasV2Flag, v).toBe(true);
      // a graduated 3.6 name is written the old way on 3.5
      expect(flagName('--compaction-batch-limit', v)).toBe('experimental-compaction-batch-limit');
    }
  });

  it('3.6.x: only etcdutl opens snapshots, graduated flags lose --experimental-, no --enable-v2', () => {
    const t = traitsOf('3.6.4');
    expect(t.snapshotTools).toEqual(['etcdutl']);
    expect(t.hasV2Flag).toBe(false);
    expect(flagName('--experimental-compaction-batch-limit', '3.6.0')).toBe('compaction-batch-limit');
    expect(flagName('experimental-watch-progress-notify-interval', '3.6.4')).toBe('watch-progress-notify-interval');
    expect(flagName('quota-backend-bytes', '3.6.0')).toBe('quota-backend-bytes');
    expect(toolFitsCluster('etcdctl', '3.6.0', '3.6.0')).toMatchObject({ ok: false, why: expect.stringMatching(/removed in 3\.6/) });
    expect(toolFitsCluster('etcdctl', '3.5.30', '3.6.0').ok).toBe(false);
    expect(toolFitsCluster('etcdutl', '3.6.1', '3.6.0').ok).toBe(true);
  });

  it('never opens a snapshot with a tool older than the cluster (a 3.5 snapshot with a 3.4 tool)', () => {
    expect(toolFitsCluster('etcdctl', '3.4.23', '3.5.30')).toMatchObject({ ok: false, why: expect.stringMatching(/older than the cluster.*3\.5 snapshot is never opened with a 3\.4 tool/) });
    expect(toolFitsCluster('etcdctl', '3.4.23', '3.4.23').ok).toBe(true);
    expect(toolFitsCluster('etcdutl', '3.5.0', '3.5.30').ok).toBe(true); // same minor: data compatible
    expect(toolFitsCluster('etcdutl', '3.5.30', '3.4.23')).toMatchObject({ ok: false, why: expect.stringMatching(/does not restore etcd 3\.4/) });
    expect(toolFitsCluster('etcdctl', '3.5.30', undefined).ok).toBe(true);
  });
});
