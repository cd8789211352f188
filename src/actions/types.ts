/**
 * The contract between the engine and the outside world. The engine (src/execute) only sees these types;
 * implementations live in src/actions/ (one file per action, named by its catalog entry) and are the only code
 * that touches etcd, processes or kubectl.
 */
import type { z } from 'zod';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';

/** One item of a forEach loop. For member loops `member` is set. */
export interface StepItem {
  key: string;
  index: number;
  total: number;
  member?: MemberSpec;
  value: unknown;
  /** Keys of items of this step already finished (for "move leadership to an already-defragmented member"). */
  done: string[];
  moveLeaderFirst?: boolean;
}

/** What earlier steps produced, as journaled (reused on resume, never recomputed). */
export interface StepRecord {
  status: 'succeeded' | 'skipped' | 'failed';
  output?: unknown;
  items?: Record<string, unknown>;
}

/** Lazily created resources shared by the steps of one run (e.g. etcd clients); disposed when the run ends. */
export interface ResourceScope {
  get<T>(key: string, create: () => T, dispose?: (value: T) => void | Promise<void>): T;
}

export interface ActionContext {
  runId: string;
  stepId: string;
  attempt: number;
  /** When this step (item) first started, across resumes: lets a `wait` count time already waited. */
  firstStartedAt: number;
  item?: StepItem;
  inventory: Inventory;
  params: Record<string, unknown>;
  steps: Record<string, StepRecord>;
  /** Aborted on timeout or cancellation: pass it to every call and child process. */
  signal: AbortSignal;
  /** Absolute deadline (epoch ms) of this attempt, when the step has a timeout. */
  deadline?: number;
  dryRun: boolean;
  stateDir: string;
  resources: ResourceScope;
  /** Progress for humans; goes to the event stream and the journal. Never pass secrets. */
  log(message: string, data?: Record<string, unknown>): void;
}

export type ProbeResult<O> = { done: true; output: O; detail?: string } | { done: false; detail?: string };

export interface ActionImpl<I = any, O = any> {
  /** Read-only: is the effect already there? Used before running, and to settle a step that is in doubt. */
  probe?(ctx: ActionContext, input: I): Promise<ProbeResult<O>>;
  /** Read-only: what `run` would do, with concrete values. Used by plan / --dry-run. */
  plan?(ctx: ActionContext, input: I): Promise<string>;
  run(ctx: ActionContext, input: I): Promise<O>;
  /** Read-only check after run; throws when the effect is not there. */
  verify?(ctx: ActionContext, input: I, output: O): Promise<void>;
}

export interface ActionMeta<S extends z.ZodType = z.ZodType> {
  name: string;
  summary: string;
  input: S;
  /** Changes the cluster or the machine. Dry-run never calls run() of a mutating action. */
  mutates: boolean;
  /** Safe to run again when a previous attempt's outcome is unknown. */
  idempotent: boolean;
  /** Expects a forEach over members (ctx.item.member). */
  perMember?: 'required' | 'optional';
  /** Refuses to run without an inventory that has drivers / data dirs. */
  needsInventory?: boolean;
  /** Gives the cluster a new identity (a restore: new cluster and member ids); the run re-pins to it after. */
  resetsIdentity?: boolean;
  /**
   * Its forEach items may run at once (`parallel: true`): each item changes only its own stopped member and cannot
   * cost the others their quorum (a restore into a member's own dir). Read-only actions may always run in parallel.
   */
  parallelItems?: boolean;
}

/** A catalog entry: the metadata, and the implementation imported on first use (a dynamic import of its file). */
export interface CatalogEntry<S extends z.ZodType = z.ZodType> extends ActionMeta<S> {
  /** Resolves to the action file's `implement(...)` export, stamped with the action's name. */
  load(): Promise<ActionImpl & { readonly action: string }>;
}

/** Registry the engine uses: metadata for validation, implementations for running, member ordering for forEach. */
export interface ActionRegistry {
  meta(name: string): ActionMeta | undefined;
  names(): string[];
  impl(name: string): ActionImpl | undefined;
  /** Make `impl()` answer for these actions (imports their modules on first use). Registries that hold every
   * implementation already need not have it. */
  load?(names: readonly string[]): Promise<void>;
  /** Resolve a members forEach to concrete, ordered members (reads the cluster for the leader). */
  resolveMembers?(ctx: ActionContext, selector: 'all' | 'voters' | 'learners', order: 'as-listed' | 'followers-then-leader'): Promise<MemberSpec[]>;
  /**
   * Read who the cluster the inventory reaches is (cluster id, members, peer URLs). Never throws for unreachable
   * members. Without it (test registries), a run's identity is the inventory's addresses only.
   */
  clusterIdentity?(inventory: Inventory, signal?: AbortSignal): Promise<ClusterIdentity>;
}
