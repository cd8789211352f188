// The examples in examples/ are documentation users copy: they must keep loading as the formats evolve.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.ts';
import { loadRunbook } from '../../src/runbook/load.ts';

const dir = path.resolve(import.meta.dirname, '../../examples');

describe('examples', () => {
  it.each(['local-cluster.yaml', 'kubeadm-cluster.yaml', 'kubespray-cluster.yaml'])('inventory %s loads', (f) => {
    const inv = loadInventory(path.join(dir, f));
    expect(inv.members.length).toBe(3);
  });
  it.each(['local-cluster.yaml', 'kubeadm-cluster.yaml', 'kubespray-cluster.yaml', 'custom-runbook.yaml', 'cluster-check.yaml'])('%s points editors at its schema', (f) => {
    const first = fs.readFileSync(path.join(dir, f), 'utf8').split('\n')[0];
    const schema = /runbook/.test(f) || f === 'cluster-check.yaml' ? 'runbook' : 'inventory';
    expect(first).toBe(`# yaml-language-server: $schema=../schema/${schema}.schema.json`);
    expect(fs.existsSync(path.join(dir, '..', 'schema', `${schema}.schema.json`))).toBe(true);
  });
  it('custom-runbook.yaml validates', () => {
    expect(loadRunbook(path.join(dir, 'custom-runbook.yaml')).steps.length).toBeGreaterThan(3);
  });
  it('cluster-check.yaml validates, its zx script resolved next to it', () => {
    const rb = loadRunbook(path.join(dir, 'cluster-check.yaml'));
    expect(rb.steps[0]!.with.file).toBe(path.join(dir, 'checks', 'etcd-members-agree.mjs'));
  });
  it('programmatic.ts only uses the public API', () => {
    const text = fs.readFileSync(path.join(dir, 'programmatic.ts'), 'utf8');
    expect(text).toMatch(/from '\.\.\/src\/index\.ts'/);
    expect(text).not.toMatch(/from '\.\.\/src\/(?!index\.ts)/);
  });
});
