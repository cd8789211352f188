import { describe, expect, it } from 'vitest';
import { catalog } from '../../../src/actions/catalog.ts';
import { createRegistry, familyOf, loadRegistry, unimplementedActions } from '../../../src/actions/registry.ts';

describe('action registry (families loaded on first use)', () => {
  it('implements every catalog action, each in the family the table names', async () => {
    expect(unimplementedActions()).toEqual([]);
    const registry = await loadRegistry();
    for (const name of Object.keys(catalog)) {
      expect(registry.impl(name), name).toBeDefined();
      expect(typeof registry.impl(name)!.run, name).toBe('function');
    }
    // The family modules export nothing the table does not know about (an action added to a module but not to
    // the table would never load).
    const modules = {
      etcd: (await import('../../../src/actions/etcd.ts')).etcdActions,
      snapshot: (await import('../../../src/actions/snapshot.ts')).snapshotActions,
      members: (await import('../../../src/actions/members.ts')).memberActions,
      membership: (await import('../../../src/actions/membership.ts')).membershipActions,
      kubernetes: (await import('../../../src/actions/kubernetes.ts')).kubeActions,
    };
    for (const [family, actions] of Object.entries(modules)) for (const name of Object.keys(actions)) expect(familyOf(name), name).toBe(family);
  });

  it('a runbook-defined action wins over the catalog, and needs no load', async () => {
    const impl = { run: async () => ({ mine: true }) };
    const registry = createRegistry({ wait: { meta: catalog.wait as never, impl } });
    await registry.load!(['wait']);
    expect(registry.impl('wait')).toBe(impl);
    expect(registry.impl('no.such-action')).toBeUndefined();
    await registry.load!(['no.such-action']); // unknown names are the validator's business, not a crash here
  });
});
