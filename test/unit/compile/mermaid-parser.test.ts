// @vitest-environment happy-dom
/**
 * `runbook show --mermaid` read by Mermaid's own parser (the `mermaid` package, the one GitHub, GitLab and the
 * Mermaid live editor render with), not by a regular expression of ours: every built-in and example runbook's
 * diagram parses, and Mermaid reads from it one state per step and the "done" edge from each step to the next.
 * Mermaid sanitizes labels with DOMPurify, which needs a DOM: happy-dom provides it (this file's environment);
 * nothing is rendered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { toMermaid } from '../../../src/compile/machine.ts';
import { loadRunbook } from '../../../src/runbook/load.ts';
import type { Runbook } from '../../../src/runbook/model.ts';

type Mermaid = (typeof import('mermaid'))['default'];
let mermaid: Mermaid;

beforeAll(async () => {
  mermaid = (await import('mermaid')).default;
  mermaid.initialize({ startOnLoad: false });
});

const root = path.join(import.meta.dirname, '../../..');
const files = [
  ...fs.readdirSync(path.join(root, 'runbooks')).filter((f) => f.endsWith('.yaml')).map((f) => path.join(root, 'runbooks', f)),
  ...fs.readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => path.join(root, 'examples', f))
    .filter((f) => /^apiVersion: runbook\/v1$/m.test(fs.readFileSync(f, 'utf8')) && /^steps:/m.test(fs.readFileSync(f, 'utf8'))),
];

/** What Mermaid itself reads from a diagram: its states and its labelled edges. */
async function read(text: string): Promise<{ states: string[]; edges: string[] }> {
  await mermaid.parse(text); // throws on a syntax error, with Mermaid's own message
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const db = diagram.db as unknown as { getStates(): Map<string, unknown>; getRelations(): { id1: string; id2: string; relationTitle: string }[] };
  return { states: [...db.getStates().keys()], edges: db.getRelations().map((r) => `${r.id1} --> ${r.id2} : ${r.relationTitle}`) };
}

const stateName = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');

describe('show --mermaid, read by Mermaid', () => {
  it('finds the built-in runbooks and the example runbooks', () => {
    expect(files.map((f) => path.basename(f))).toEqual(expect.arrayContaining(['nospace-recovery.yaml', 'power-loss-restore.yaml', 'member-replacement.yaml', 'custom-runbook.yaml']));
  });

  it.each(files.map((f) => [path.relative(root, f), f]))('%s: parses; one state per step; each step "done" goes to the next', async (_rel, file) => {
    const rb: Runbook = loadRunbook(file);
    const { states, edges } = await read(toMermaid(rb));
    for (const [i, s] of rb.steps.entries()) {
      expect(states).toContain(stateName(s.id));
      const next = rb.steps[i + 1] ? stateName(rb.steps[i + 1]!.id) : '__succeeded';
      expect(edges).toContain(`${stateName(s.id)} --> ${next} : done`);
    }
  });

  it('the parser is the real one: a broken diagram is refused', async () => {
    await expect(mermaid.parse('stateDiagram-v2\n  a --> \n  --> b : x\n')).rejects.toThrow(/Parse error/);
  });
});
