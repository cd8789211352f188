/**
 * Runbooks as documents: a lazy entry of the public API (src/index.ts exports all of it). Find, load and validate
 * runbooks, their JSON Schema and parameters, the action catalog, the compiled machine and its diagram. No engine, no
 * store, no etcd client: this is all that `runbook validate`, `show`, `actions` and `schema` load.
 */
export type { Runbook, Step, ParamSpec, RetryPolicy, ForEachSpec } from './runbook/model.ts';
export { loadRunbook, loadRunbookText, validateFiles } from './runbook/load.ts';
export { findRunbook, listRunbooks } from './runbook/find.ts';
export { resolveParams, parseParamFlags } from './runbook/params.ts';
export { runbookJsonSchema } from './runbook/schema.ts';
export { compileRunbook, toMermaid } from './compile/machine.ts';
export { catalog } from './actions/catalog.ts';
export { loadInventory, validateInventoryFile, looksLikeInventory } from './inventory/load.ts';
export { inventoryFromEndpoints, authFrom } from './inventory/endpoints.ts';
export { readYamlFile, type YamlSource } from './util/yaml-source.ts';
export { describeIssues, type SchemaIssue } from './util/schema-issues.ts';
export { guardConfig, zGuardSpec, type GuardConfig } from './guard/config.ts';
export { backupStreamConfig, zBackupSpec, type BackupStreamConfig } from './backup/serve-config.ts';
