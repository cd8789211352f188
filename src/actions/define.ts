/**
 * How an action file declares its implementation: `implement('etcd.compact', { probe, plan, run, verify })`, with
 * `input` typed from the action's zod schema in the catalog (z.output: defaults applied, durations in ms). The
 * catalog entry names the file to import on first use (`load`), so an action is its catalog entry plus one file.
 *
 * Only types come from the catalog here: the catalog imports this module's users lazily, never the reverse.
 */
import type { z } from 'zod';
import type { catalog } from './catalog.ts';
import type { ActionContext, ActionImpl, ProbeResult } from './types.ts';

export type ActionName = keyof typeof catalog;

/** What `run`, `probe`, `plan` and `verify` of an action receive: its schema's output. */
export type ActionInput<N extends ActionName> = z.output<(typeof catalog)[N]['input']>;

/** An implementation stamped with the action it implements: the registry checks the stamp against the catalog. */
export interface ImplementedAction<O = any> extends ActionImpl<any, O> {
  readonly action: string;
}

/** ActionImpl with the output type taken from `run` alone (probe and verify must agree with it). */
interface ImplOf<I, O> {
  probe?(ctx: ActionContext, input: I): Promise<ProbeResult<NoInfer<O>>>;
  plan?(ctx: ActionContext, input: I): Promise<string>;
  run(ctx: ActionContext, input: I): Promise<O>;
  verify?(ctx: ActionContext, input: I, output: NoInfer<O>): Promise<void>;
}

/**
 * The export of an action file. Annotate the exported const with `ImplementedAction`
 * (`export const compactAction: ImplementedAction = implement(…)`): TypeScript cannot infer a type that goes
 * catalog → load() → this file → the catalog's schema.
 */
export function implement<N extends ActionName, O>(action: N, impl: ImplOf<ActionInput<N>, O>): ImplementedAction<O> {
  return Object.assign(impl as ActionImpl, { action });
}
