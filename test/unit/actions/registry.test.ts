import { describe, expect, it } from 'vitest';
import { catalog } from '../../../src/actions/catalog.ts';
import { createRegistry, loadRegistry } from '../../../src/actions/registry.ts';

describe('action registry (each action file loaded on first use)', () => {
  it('implements every catalog action, each entry loading the implementation of its own name', async () => {
    const registry = await loadRegistry();
    for (const name of Object.keys(catalog)) {
      expect(registry.impl(name), name).toBeDefined();
      expect(typeof registry.impl(name)!.run, name).toBe('function');
    }
    // A catalog entry whose `load` picks another action's export would run the wrong code under this name: each
    // implementation is stamped by implement() with the action it was written for.
    for (const [name, entry] of Object.entries(catalog)) expect((await entry.load()).action, name).toBe(name);
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
