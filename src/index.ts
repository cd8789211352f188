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
export type { Runbook, Step, ParamSpec, RetryPolicy, ForEachSpec } from './runbook/model.ts';
export { loadRunbook, loadRunbookText, validateFiles } from './runbook/load.ts';
export { findRunbook, listRunbooks } from './runbook/find.ts';
export { resolveParams, parseParamFlags } from './runbook/params.ts';
export { runbookJsonSchema } from './runbook/schema.ts';
export { compileRunbook, toMermaid } from './compile/machine.ts';
export type { Inventory, MemberSpec, DriverSpec, TlsSpec } from './inventory/types.ts';
export { loadInventory } from './inventory/load.ts';
export { inventoryFromEndpoints } from './inventory/endpoints.ts';
export { catalog } from './actions/catalog.ts';
export type { ActionContext, ActionImpl, ActionMeta, ActionRegistry, ProbeResult } from './actions/types.ts';
export { createRegistry } from './actions/registry.ts';
export type { ClusterIdentity } from './events/cluster-identity.ts';
export { acquireClusterLock, clusterLockHolder } from './etcd/cluster-lock.ts';
export { startRun, resumeRun, recordDecision } from './execute/executor.ts';
export type { RunHandle, RunOptions, ResumeOptions, RunResult } from './execute/run-types.ts';
export { defaultStateDir, listRunIds, readRunMeta } from './store/run-dir.ts';
export { readJournal } from './store/journal.ts';
export { foldJournal } from './execute/state.ts';
export type { RunEvent, JournalRecord, RunStatus } from './events/types.ts';
export { formatRecord, formatReport } from './events/terminal.ts';
export { UserError, StepError, ExitCode, formatDiagnostic } from './util/errors.ts';
export { rehearse, type RehearseOptions } from './rehearse/rehearse.ts';
export { startLocalCluster } from './rehearse/local-cluster.ts';
export { diagnose } from './diagnose/diagnose.ts';
export { formatDiagnosis } from './diagnose/format.ts';
