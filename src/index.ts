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
// The public API comes in entries a program (or the CLI and chat-ops, for their cold start) may load on their own:
// common (light: errors, units, record formatting), authoring (runbooks, inventories and config as documents),
// run-records (stores and journals), engine (running runs), operations (diagnose, rehearse, guard, backup).
export * from './common.ts';
export * from './authoring.ts';
export * from './run-records.ts';
export * from './engine.ts';
export * from './operations.ts';
export type { ActionContext, ActionImpl, ActionMeta, ActionRegistry, ProbeResult } from './actions/types.ts';
export type { ClusterIdentity } from './events/cluster-identity.ts';
export { acquireClusterLock, clusterLockHolder } from './etcd/cluster-lock.ts';
export type { RehearseOptions } from './rehearse/rehearse.ts';
export { startLocalCluster } from './rehearse/local-cluster.ts';
