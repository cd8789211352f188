/**
 * runbook's public API: what the CLI and the chat-ops server use, and what a program embedding runbook uses.
 *
 * @example
 * import { loadRunbook, findRunbook, loadInventory, createRegistry, startRun } from 'runbook';
 * const runbook = loadRunbook(findRunbook('nospace-recovery'));
 * const run = await startRun({ // reads the cluster's identity and takes its lock first
 *   runbook, runbookText: fs.readFileSync(runbook.source.file, 'utf8'),
 *   inventory: loadInventory('cluster.yaml'), params: {}, registry: createRegistry(),
 *   stateDir: defaultStateDir(), onEvent: (e) => console.log(e.type),
 * });
 * const result = await run.done; // result.status, result.report
 */
// The public API comes in three entries a program (or the CLI, for its cold start) may load on their own:
export {
  findRunbook, listRunbooks, loadRunbook, loadRunbookText, validateFiles, resolveParams, parseParamFlags, runbookJsonSchema,
  compileRunbook, toMermaid, catalog,
  type Runbook, type Step, type ParamSpec, type RetryPolicy, type ForEachSpec,
} from './authoring.ts';
export {
  openStore, FileStore, defaultStateDir, listRunIds, readRunMeta, newRunId, readJournal, applyRecord, foldJournal, newRunState, pinnedIdentity,
  type StoreFlags, type StateStore, type StoreLock, type RunLock, type LockHolderInfo, type RunMeta, type ApprovalDecision, type RunState, type RunReport,
} from './run-records.ts';
export {
  startRun, resumeRun, recordDecision, createRegistry,
  type RunHandle, type RunOptions, type ResumeOptions, type RunResult,
} from './engine.ts';
export type { Inventory, MemberSpec, DriverSpec, TlsSpec } from './inventory/types.ts';
export { loadInventory } from './inventory/load.ts';
export { inventoryFromEndpoints } from './inventory/endpoints.ts';
export type { ActionContext, ActionImpl, ActionMeta, ActionRegistry, ProbeResult } from './actions/types.ts';
export type { ClusterIdentity } from './events/cluster-identity.ts';
export { acquireClusterLock, clusterLockHolder } from './etcd/cluster-lock.ts';
export type { RunEvent, JournalRecord, RunStatus } from './events/types.ts';
export { formatRecord, formatReport } from './events/terminal.ts';
export { UserError, StepError, ExitCode, formatDiagnostic } from './util/errors.ts';
export { rehearse, type RehearseOptions } from './rehearse/rehearse.ts';
export { startLocalCluster } from './rehearse/local-cluster.ts';
export { diagnose } from './diagnose/diagnose.ts';
export { formatDiagnosis } from './diagnose/format.ts';
