/** The etcd layer: per-endpoint clients and typed calls. Only src/actions uses it (the engine never imports etcd3). */
export { EtcdPool, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdPoolOptions } from './pool.ts';
export { EtcdClient, createEtcdClient, type EtcdClientOptions, type EtcdClientTls } from './client.ts';
export { callMember, type CallOpts } from './call.ts';
export { toHexId, hexIdToDecimal, looksLikeHexId, isZeroId, normalizeURL, sameURL } from './ids.ts';
export {
  classify,
  toStepError,
  shortGrpcMessage,
  isNoSpace,
  isAlreadyCompacted,
  isFutureRevision,
  isDeadlineExceeded,
  isUnavailable,
  isNotLeader,
  isOutcomeUnknown,
} from './errors.ts';
export { memberStatus, statusFromWire, reclaimable, type MemberStatus } from './status.ts';
export { listAlarms, alarmsFromStatusErrors, disarmAlarm, defragment, moveLeader, hashKV, alarmNameFromWire, type Alarm, type AlarmName, type KVHash } from './maintenance.ts';
export { currentRevision, compact, compactedAtLeast, putDeleteCanary, type CanaryResult } from './kv.ts';
export { memberList, memberAdd, memberRemove, memberPromote, type EtcdMember, type MemberListResult } from './membership.ts';
export { clusterView, matchMember, findMember, isLearner, idOf, type ClusterView, type MemberProbe } from './view.ts';
