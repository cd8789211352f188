/**
 * The action registry: catalog metadata bound to implementations. Loading this module loads the etcd client and
 * friends; commands that only read runbooks (list, show, validate) use the catalog alone.
 */
import { catalog } from './catalog.ts';
import { approve, exec, wait } from './generic.ts';
import { etcdActions, resolveMembers } from './etcd.ts';
import { memberActions } from './members.ts';
import { membershipActions } from './membership.ts';
import { kubeActions } from './kubernetes.ts';
import { snapshotActions } from './snapshot.ts';
import type { ActionImpl, ActionMeta, ActionRegistry } from './types.ts';

const impls: Record<string, ActionImpl> = {
  ...etcdActions,
  ...memberActions,
  ...membershipActions,
  ...kubeActions,
  ...snapshotActions,
  exec,
  wait,
  approve,
};

export function createRegistry(extra: Record<string, { meta: ActionMeta; impl: ActionImpl }> = {}): ActionRegistry {
  const metas: Record<string, ActionMeta> = { ...(catalog as Record<string, ActionMeta>) };
  const all: Record<string, ActionImpl> = { ...impls };
  for (const [name, a] of Object.entries(extra)) {
    metas[name] = a.meta;
    all[name] = a.impl;
  }
  return {
    meta: (name) => (Object.hasOwn(metas, name) ? metas[name] : undefined),
    names: () => Object.keys(metas),
    impl: (name) => (Object.hasOwn(all, name) ? all[name] : undefined),
    resolveMembers,
  };
}

/** Names of catalog actions that have no implementation yet (they fail loudly if a runbook reaches them). */
export function unimplementedActions(): string[] {
  return Object.keys(catalog).filter((n) => !Object.hasOwn(impls, n));
}
