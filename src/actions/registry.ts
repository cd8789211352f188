/**
 * The action registry: catalog metadata bound to implementations. An action's file is imported the first time
 * the action is about to run (its catalog entry's `load`): a NOSPACE recovery never loads execa, kubectl or the
 * snapshot code, which is a third of the CLI's cold start (BENCHMARKS.md). Commands that only read runbooks
 * (list, show, validate) use the catalog alone.
 *
 * `impl(name)` is synchronous and answers only for loaded actions: call `load(names)` first (the executor does
 * before every step and gate), or use `loadRegistry()` to get a registry with everything loaded.
 */
import type { MemberSpec } from '../inventory/types.ts';
import { catalog } from './catalog.ts';
import type { ActionContext, ActionImpl, ActionMeta, ActionRegistry, CatalogEntry } from './types.ts';

/** Implementations imported so far, shared by every registry of the process (a module is imported once anyway). */
const loading = new Map<string, Promise<void>>();
const impls: Record<string, ActionImpl> = {};

function loadAction(name: string, entry: CatalogEntry): Promise<void> {
  let p = loading.get(name);
  if (!p) {
    p = entry.load().then((impl) => {
      // The catalog line names the wrong export: a programming error, caught by test/unit/actions/registry.test.ts.
      if (impl.action !== name) throw new Error(`catalog entry ${name} loads the implementation of ${impl.action}`);
      impls[name] = impl;
    });
    // A failed import (a broken install) is retried on the next call rather than cached.
    p.catch(() => loading.delete(name));
    loading.set(name, p);
  }
  return p;
}

const entries = catalog as Record<string, CatalogEntry>;

export function createRegistry(extra: Record<string, { meta: ActionMeta; impl: ActionImpl }> = {}): ActionRegistry {
  const metas: Record<string, ActionMeta> = { ...entries };
  const own: Record<string, ActionImpl> = {};
  for (const [name, a] of Object.entries(extra)) {
    metas[name] = a.meta;
    own[name] = a.impl;
  }
  return {
    meta: (name) => (Object.hasOwn(metas, name) ? metas[name] : undefined),
    names: () => Object.keys(metas),
    impl: (name) => (Object.hasOwn(own, name) ? own[name] : Object.hasOwn(impls, name) ? impls[name] : undefined),
    async load(names) {
      await Promise.all([...new Set(names)].filter((n) => !Object.hasOwn(own, n) && Object.hasOwn(entries, n)).map((n) => loadAction(n, entries[n]!)));
    },
    async resolveMembers(ctx: ActionContext, selector: 'all' | 'voters' | 'learners', order: 'as-listed' | 'followers-then-leader'): Promise<MemberSpec[]> {
      const { resolveMembers } = await import('./resolve-members.ts');
      return resolveMembers(ctx, selector, order);
    },
    async clusterIdentity(inventory, signal) {
      const { readClusterIdentity } = await import('../etcd/identity.ts');
      return readClusterIdentity(inventory, signal ? { signal } : {});
    },
  };
}

/** A registry with every family loaded, for callers that look implementations up synchronously. */
export async function loadRegistry(extra: Record<string, { meta: ActionMeta; impl: ActionImpl }> = {}): Promise<ActionRegistry> {
  const registry = createRegistry(extra);
  await registry.load!(registry.names());
  return registry;
}
