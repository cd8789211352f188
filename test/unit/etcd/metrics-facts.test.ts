import { describe, expect, it } from 'vitest';
import { metricsFacts } from '../../../src/etcd/metrics.ts';

// Lines as etcd 3.4.23 and 3.5.30 print them on /metrics (copied from real members, other lines left out).
const v34 = `# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.
# TYPE etcd_server_quota_backend_bytes gauge
etcd_server_quota_backend_bytes 2.5165824e+07
etcd_debugging_mvcc_db_total_size_in_bytes 2.5190400e+07
etcd_mvcc_db_total_size_in_use_in_bytes 2.4113152e+07
etcd_server_has_leader 1
etcd_server_version{server_version="3.4.23"} 1
`;
const v35 = `etcd_server_quota_backend_bytes 2.147483648e+09
etcd_mvcc_db_total_size_in_bytes 1.6777216e+07
etcd_mvcc_db_total_size_in_use_in_bytes 204800
etcd_server_has_leader 0
etcd_server_version{server_version="3.5.30"} 1
`;

describe('metricsFacts', () => {
  it('reads the quota, db sizes, leader and version a member reports (3.4 naming)', () => {
    expect(metricsFacts(v34)).toEqual({ quotaBytes: 24 * 1024 * 1024, dbTotalBytes: 25190400, dbInUseBytes: 24113152, hasLeader: true, serverVersion: '3.4.23' });
  });
  it('reads the 3.5 names, and a member without a leader', () => {
    expect(metricsFacts(v35)).toEqual({ quotaBytes: 2 ** 31, dbTotalBytes: 16 * 1024 * 1024, dbInUseBytes: 204800, hasLeader: false, serverVersion: '3.5.30' });
  });
  it('reads the revisions (current, last compaction) and whether the member is a learner, as 3.4 and 3.5 print them', () => {
    const page = 'etcd_debugging_mvcc_compact_revision 3\netcd_debugging_mvcc_current_revision 6\netcd_server_is_learner 0\n';
    expect(metricsFacts(page)).toEqual({ compactRevision: 3, currentRevision: 6, isLearner: false });
    expect(metricsFacts('etcd_server_is_learner 1\n')).toEqual({ isLearner: true });
  });
  it('leaves out what the page does not say', () => {
    expect(metricsFacts('# nothing here\n')).toEqual({});
  });
});
