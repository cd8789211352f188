/**
 * Runs as records: a light entry of the public API (src/index.ts exports all of it), safe to import at CLI start.
 * Where runs are kept (the state dir, or a management etcd opened on demand), their journals and the state folded
 * from them, the identity a run is pinned to. Loads no engine and no etcd client.
 */
export { openStore, type StoreFlags } from './store/open.ts';
export { FileStore } from './store/file.ts';
export type { StateStore, StoreLock, RunLock, LockHolderInfo } from './store/types.ts';
export { defaultStateDir, listRunIds, readRunMeta, type RunMeta, type ApprovalDecision } from './store/run-dir.ts';
export { newRunId } from './store/run-id.ts';
export { readJournal } from './store/journal.ts';
export { applyRecord, foldJournal, newRunState, type RunState } from './execute/state.ts';
export { pinnedIdentity } from './execute/identity.ts';
export type { RunReport } from './execute/report.ts';
export { openChatopsState, memoryChatopsState, type ChatopsState, type FollowedRun } from './store/chatops-state.ts';
