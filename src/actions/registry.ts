/**
 * The action registry: catalog metadata bound to implementations. Implementations are grouped in families (etcd,
 * snapshot, members, membership, kubernetes, generic) and a family's modules are imported the first time one of
 * its actions is about to run: a NOSPACE recovery never loads execa, kubectl or the snapshot code, which is a
 * third of the CLI's cold start (BENCHMARKS.md). Commands that only read runbooks (list, show, validate) use the
 * catalog alone.
 *
 * `impl(name)` is synchronous and answers only for loaded families: call `load(names)` first (the executor does
 * before every step and gate), or use `loadRegistry()` to get a registry with everything loaded.
 */
import type { MemberSpec } from '../inventory/types.ts';
import { catalog } from './catalog.ts';
import type { ActionContext, ActionImpl, ActionMeta, ActionRegistry } from './types.ts';

type Family = 'etcd' | 'snapshot' | 'backup' | 'members' | 'membership' | 'kubernetes' | 'generic';

/** Which family implements each catalog action. A catalog action missing here has no implementation. */
const FAMILY_OF: Record<string, Family> = {
  'etcd.preflight': 'etcd',
  'etcd.compact': 'etcd',
  'etcd.defrag': 'etcd',
  'etcd.alarm-disarm': 'etcd',
  'etcd.write-probe': 'etcd',
  'etcd.member-healthy': 'etcd',
  'etcd.move-leader': 'etcd',
  'etcd.cluster-healthy': 'etcd',
  'etcd.snapshot-save': 'snapshot',
  'etcd.snapshot-begin': 'snapshot',
  'etcd.snapshot-wait': 'snapshot',
  'etcd.snapshot-select': 'snapshot',
  'etcd.restore-member': 'snapshot',
  'backup.build-target': 'backup',
  'members.set-flag': 'members',
  'members.stop': 'members',
  'members.start': 'members',
  'members.start-all': 'members',
  'members.try-restart': 'members',
  'members.move-data-aside': 'members',
  'etcd.replacement-preflight': 'membership',
  'etcd.member-remove': 'membership',
  'etcd.member-add': 'membership',
  'etcd.member-promote': 'membership',
  'members.start-replacement': 'membership',
  'kubectl.verify': 'kubernetes',
  'kubernetes.stop-apiservers': 'kubernetes',
  'kubernetes.start-apiservers': 'kubernetes',
  exec: 'generic',
  script: 'generic',
  wait: 'generic',
  approve: 'generic',
};

const FAMILIES: Record<Family, () => Promise<Record<string, ActionImpl>>> = {
  etcd: async () => (await import('./etcd.ts')).etcdActions,
  snapshot: async () => (await import('./snapshot.ts')).snapshotActions,
  backup: async () => ({ 'backup.build-target': (await import('./backup-build-target.ts')).buildTargetAction }),
  members: async () => (await import('./members.ts')).memberActions,
  membership: async () => (await import('./membership.ts')).membershipActions,
  kubernetes: async () => (await import('./kubernetes.ts')).kubeActions,
  generic: async () => {
    const [{ approve, exec, wait }, { script }] = await Promise.all([import('./generic.ts'), import('./script.ts')]);
    return { exec, script, wait, approve };
  },
};

/** Loaded families, shared by every registry of the process (a module is imported once anyway). */
const loaded = new Map<Family, Promise<Record<string, ActionImpl>>>();
const impls: Record<string, ActionImpl> = {};

function loadFamily(family: Family): Promise<Record<string, ActionImpl>> {
  let p = loaded.get(family);
  if (!p) {
    p = FAMILIES[family]().then((actions) => {
      for (const [name, impl] of Object.entries(actions)) if (FAMILY_OF[name] === family) impls[name] = impl;
      return actions;
    });
    // A failed import (a broken install) is retried on the next call rather than cached.
    p.catch(() => loaded.delete(family));
    loaded.set(family, p);
  }
  return p;
}

export function createRegistry(extra: Record<string, { meta: ActionMeta; impl: ActionImpl }> = {}): ActionRegistry {
  const metas: Record<string, ActionMeta> = { ...(catalog as Record<string, ActionMeta>) };
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
      const families = new Set<Family>();
      for (const n of names) if (!Object.hasOwn(own, n) && Object.hasOwn(FAMILY_OF, n)) families.add(FAMILY_OF[n]!);
      await Promise.all([...families].map(loadFamily));
    },
    async resolveMembers(ctx: ActionContext, selector: 'all' | 'voters' | 'learners', order: 'as-listed' | 'followers-then-leader'): Promise<MemberSpec[]> {
      const { resolveMembers } = await import('./etcd.ts');
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

/** Names of catalog actions that have no implementation (they fail loudly if a runbook reaches them). */
export function unimplementedActions(): string[] {
  return Object.keys(catalog).filter((n) => !Object.hasOwn(FAMILY_OF, n));
}

/** Which family module implements an action (for tests that check the table against the modules). */
export function familyOf(name: string): Family | undefined {
  return Object.hasOwn(FAMILY_OF, name) ? FAMILY_OF[name] : undefined;
}
