/**
 * The compiled machine is what a run persists and resumes: it must be plain data (a persisted snapshot names its
 * states), the same for the same runbook, and its states must be the runbook's steps in order. The graph
 * (`runbook graph`) must show where an error, a skip and a denial go.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FINAL, bindFunctions, compileRunbook, toMermaid } from '../../../src/compile/machine.ts';
import { loadRunbookText } from '../../../src/runbook/load.ts';

const designExample = readFileSync(new URL('../../fixtures/valid/design-example.yaml', import.meta.url), 'utf8');

describe('compileRunbook', () => {
  it('names the machine after the runbook and its states after the steps, in order, then the finals', () => {
    const rb = loadRunbookText(designExample, 'design-example.yaml');
    const c = compileRunbook(rb);
    expect(c.id).toBe('design-example');
    expect(c.stepIds).toEqual(['preflight', 'raise-quota', 'compact', 'defrag', 'disarm', 'verify', 'verify-kubernetes']);
    expect(c.config.initial).toBe('preflight');
    expect(Object.keys(c.config.states)).toEqual([...c.stepIds, FINAL.succeeded, FINAL.failed, FINAL.denied]);
    expect(c.hash).toBe(rb.source.hash);
  });

  it('is plain, deterministic data: the same runbook gives the same config, and it survives JSON', () => {
    const a = compileRunbook(loadRunbookText(designExample, 'a.yaml'));
    const b = compileRunbook(loadRunbookText(designExample, 'b.yaml'));
    expect(b.config).toEqual(a.config);
    expect(JSON.parse(JSON.stringify(a.config))).toEqual(a.config);
  });

  it('a changed runbook gets another hash (a run is never resumed on a different runbook)', () => {
    const a = compileRunbook(loadRunbookText(designExample, 'a.yaml'));
    const b = compileRunbook(loadRunbookText(designExample.replace('timeout: 30m', 'timeout: 20m'), 'a.yaml'));
    expect(b.hash).not.toBe(a.hash);
  });
});

describe('bindFunctions', () => {
  it('replaces every $fn marker, passing its arguments, and leaves the rest as it was', () => {
    const bound = bindFunctions({ a: [{ $fn: 'f', stepId: 's1' }], b: 1 }, { f: (args) => `bound:${String(args.stepId)}` });
    expect(bound).toEqual({ a: ['bound:s1'], b: 1 });
  });

  it('refuses a marker with no binding, naming it', () => {
    expect(() => bindFunctions({ x: { $fn: 'nope' } }, {})).toThrow(/no binding for nope/);
  });
});

describe('toMermaid', () => {
  const graph = toMermaid(loadRunbookText(designExample, 'design-example.yaml'));

  it('shows each step with its action and where it goes next', () => {
    expect(graph.startsWith('stateDiagram-v2\n  [*] --> preflight\n')).toBe(true);
    expect(graph).toContain('  preflight --> raise_quota : done');
    expect(graph).toContain('  verify_kubernetes --> __succeeded : done');
    expect(graph).toContain('  defrag : defrag<br/>etcd.defrag · forEach voters (followers-then-leader) · gate etcd.member-healthy');
  });

  it('shows the skip, loop, approval and failure edges', () => {
    expect(graph).toMatch(/ {2}raise_quota --> compact : skip unless params\.quotaBytes != null/);
    expect(graph).toContain('  defrag --> defrag : next item');
    expect(graph).toContain('  raise_quota --> __denied : denied');
    expect(graph).toContain('  compact --> __failed : error');
  });

  it('an optional step errs on to the next step instead of failing the run', () => {
    const text = designExample.replace('  - id: verify\n    action: etcd.write-probe\n', '  - id: verify\n    action: etcd.write-probe\n    optional: true\n');
    expect(text).not.toBe(designExample);
    expect(toMermaid(loadRunbookText(text, 'x.yaml'))).toContain('  verify --> verify_kubernetes : error (optional)');
  });
});
