/**
 * Running runbooks: a lazy entry of the public API (src/index.ts exports all of it). Start and resume runs, record
 * decisions, the action registry. Loaded when a command first runs something (plan, run, resume, serve, guard), not
 * at CLI start; the etcd client loads later still, with the first action that needs it.
 */
export { startRun, resumeRun, recordDecision } from './execute/executor.ts';
export type { RunHandle, RunOptions, ResumeOptions, RunResult } from './execute/run-types.ts';
export { createRegistry } from './actions/registry.ts';
