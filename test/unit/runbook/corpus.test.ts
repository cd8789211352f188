/**
 * The invalid-runbook corpus: every file under test/fixtures/invalid/ states what it must produce in leading
 * comments (`# expect: LINE:COL substring-of-message`), and loading it must fail with a UserError carrying that
 * diagnostic — never another exception, never a pass. Valid fixtures must load cleanly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRunbook, validateFiles } from '../../../src/runbook/load.ts';
import { loadInventory } from '../../../src/inventory/load.ts';
import { formatDiagnostic, UserError } from '../../../src/util/errors.ts';
import type { Diagnostic } from '../../../src/util/errors.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const invalidDir = path.join(fixtures, 'invalid');
const validDir = path.join(fixtures, 'valid');
const list = (dir: string) => readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();

interface Expectation {
  line: number;
  col: number;
  text: string;
}

function expectationsOf(file: string): Expectation[] {
  const out: Expectation[] = [];
  // Read as latin1 so binary fixtures still yield their (ASCII) header lines.
  for (const line of readFileSync(file, 'latin1').replace(/^\uFEFF|^\xEF\xBB\xBF/, '').split('\n')) {
    const m = /^# expect: (\d+):(\d+) (.+)$/.exec(line);
    if (!m) break;
    out.push({ line: Number(m[1]), col: Number(m[2]), text: m[3]! });
  }
  return out;
}

function diagnosticsOf(file: string): Diagnostic[] {
  try {
    // The corpus holds a few invalid inventories too (inventory-*.yaml): the same file:line:col promise.
    if (path.basename(file).startsWith('inventory-')) loadInventory(file);
    else loadRunbook(file);
  } catch (err) {
    if (err instanceof UserError) return err.diagnostics;
    throw new Error(`${path.basename(file)}: threw ${(err as Error)?.constructor?.name} instead of a UserError: ${String(err)}`);
  }
  throw new Error(`${path.basename(file)}: loaded without any diagnostic`);
}

describe('invalid runbook corpus', () => {
  const files = list(invalidDir);

  it('has at least 45 fixtures, each stating its expectation', () => {
    expect(files.length).toBeGreaterThanOrEqual(45);
    for (const f of files) expect(expectationsOf(path.join(invalidDir, f)), f).not.toEqual([]);
  });

  it.each(files)('%s', (f) => {
    const file = path.join(invalidDir, f);
    const diags = diagnosticsOf(file);
    expect(diags.length).toBeGreaterThan(0);
    for (const d of diags) {
      expect(d.file).toBe(file);
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.col).toBeGreaterThanOrEqual(1);
      // Crisp, single-line messages without stack traces.
      expect(d.message).not.toMatch(/\n|\bat .+\.(ts|js):\d+/);
    }
    const shown = diags.map(formatDiagnostic).join('\n');
    for (const e of expectationsOf(file)) {
      const hit = diags.some((d) => d.line === e.line && d.col === e.col && d.message.includes(e.text));
      expect(hit, `expected ${e.line}:${e.col} "${e.text}" among:\n${shown}`).toBe(true);
    }
  });

  it('validateFiles reports every file without throwing', () => {
    const results = validateFiles(files.map((f) => path.join(invalidDir, f)));
    expect(results).toHaveLength(files.length);
    for (const r of results) expect(r.diagnostics.length, r.file).toBeGreaterThan(0);
  });
});

describe('valid fixtures', () => {
  it.each(list(validDir))('%s loads', (f) => {
    const rb = loadRunbook(path.join(validDir, f));
    expect(rb.steps.length).toBeGreaterThan(0);
  });
});
