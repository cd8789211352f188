/** Snapshots: save (streamed, verified, with a manifest), retention, selection on copies, restore of a member. */
export { checkSnapshotFile, TrailerHasher, TRAILER_BYTES, type SnapshotFileCheck } from './file-check.ts';
export { readManifest, writeManifest, manifestPath, isManifest, type SnapshotManifest } from './manifest.ts';
export { listSnapshots, belongsTo, EXPIRED_DIR, type SnapshotEntry } from './list.ts';
export { planRetention, applyRetention, type RetentionPolicy, type RetentionPlan, type RetentionResult } from './retention.ts';
export { saveSnapshot, snapshotFileName, type SaveOptions, type SaveResult } from './save.ts';
export { selectSnapshot, checkCandidate, candidates, type SelectOptions, type SelectedSnapshot, type Rejected } from './select.ts';
export {
  restoreMember,
  restoredAlready,
  readMarker,
  tokenFromRunId,
  initialClusterOf,
  RESTORE_MARKER,
  type RestoreMemberOptions,
  type RestoreMemberResult,
  type RestoreMarker,
} from './restore.ts';
export { chooseSnapshotTool, restoreArgv, snapshotStatus, trialRestore, parseVersion, BUMP_REVISION, type RestoreTool, type ToolChoice } from './etcd-tools.ts';
export { planRestore, type RestorePlan } from './restore-plan.ts';
