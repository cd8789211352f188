/**
 * The shape of src/ that issue 17 set and that is easy to lose one import at a time:
 * - no import circle among the modules (imports that load code: static and dynamic `import`, `export … from`;
 *   `import type` is erased before Node runs the file, so it forms no circle);
 * - the two faces (src/cli, src/chatops) import only the public API's entries (src/index.ts re-exports each),
 *   never a module behind them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '../../src');
const ENTRIES = new Set(['index.ts', 'common.ts', 'authoring.ts', 'run-records.ts', 'engine.ts', 'operations.ts'].map((f) => path.join(SRC, f)));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The relative modules a file loads when it runs (type-only imports left out). */
export function valueImports(file: string, text: string): string[] {
  const out: string[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const stmt = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)'/gm;
  for (const m of code.matchAll(stmt)) {
    if (m[2]) continue; // import type { … } / export type { … }
    const braces = /^\{([\s\S]*)\}$/.exec(m[3]!.trim());
    if (braces && braces[1]!.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '))) continue;
    out.push(m[4]!);
  }
  for (const m of code.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push(m[1]!);
  for (const m of code.matchAll(/(?<!typeof )\bimport\(\s*'([^']+)'\s*\)/g)) out.push(m[1]!);
  return out.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s));
}

/** Every relative module a file names, type-only imports included. */
function allImports(file: string, text: string): string[] {
  return [...text.matchAll(/(?:from\s+|import\(\s*|^\s*import\s+)'(\.[^']+)'/gm)].map((m) => path.resolve(path.dirname(file), m[1]!));
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, valueImports(f, fs.readFileSync(f, 'utf8')).filter((t) => fs.existsSync(t))]));

describe('src/ structure', () => {
  it('the import reader sees static, re-exported and dynamic imports, and not type-only ones', () => {
    const f = path.join(SRC, 'x/y.ts');
    expect(valueImports(f, "import { a } from './a.ts';\nimport type { B } from './b.ts';\nimport { type C } from './c.ts';\nexport { d } from '../d.ts';\nconst e = await import('./e.ts');\ntype F = typeof import('./f.ts');\n").map((p) => path.relative(SRC, p))).toEqual(['x/a.ts', 'd.ts', 'x/e.ts']);
  });

  it('has no import circle', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const t of graph.get(f) ?? []) {
        if (state.get(t) === 'open') circles.push([...stack.slice(stack.indexOf(t)), t].map((p) => path.relative(SRC, p)).join(' > '));
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(circles).toEqual([]);
  });

  it('the CLI and chat-ops import only the public API entries (and each other), types included', () => {
    const faces = files.filter((f) => /\/src\/(cli|chatops)\//.test(f));
    expect(faces.length).toBeGreaterThan(20);
    const behind = faces.flatMap((f) =>
      allImports(f, fs.readFileSync(f, 'utf8'))
        .filter((t) => !ENTRIES.has(t) && !/\/src\/(cli|chatops)\//.test(t))
        .map((t) => `${path.relative(SRC, f)} → ${path.relative(SRC, t)}`),
    );
    expect(behind).toEqual([]);
  });
});
