/**
 * The CLI's bundle (bin/bundle.js) is a cache of src/: it must never run code older than the sources. Checked in a
 * scratch copy of the checkout (src/, bin/, runbooks/ copied; node_modules linked), so the real dist/ that other
 * tests use is not touched.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle, freshBundle } from '../../bin/bundle.js';

const ROOT = resolve(import.meta.dirname, '../..');
let root: string;

const cli = (args: string[], env: Record<string, string> = {}) =>
  execFileSync(process.execPath, [join(root, 'bin/runbook.js'), ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8' });

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'runbook-bundle-'));
  for (const d of ['src', 'bin', 'runbooks', 'schema']) cpSync(join(ROOT, d), join(root, d), { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(root, f));
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The version the scratch copy's sources say (whatever an earlier test of this file did to them). */
function sourceVersion(): string {
  return /export const VERSION = '([^']+)';/.exec(readFileSync(join(root, 'src/cli/version.ts'), 'utf8'))![1]!;
}

describe('CLI bundle', () => {
  it('is built on first use, then used while the sources are unchanged', async () => {
    // From no bundle at all, whatever ran before in this file: an earlier test's builds move aside.
    if (existsSync(join(root, 'dist'))) renameSync(join(root, 'dist'), join(root, `dist.before-${Date.now()}`));
    expect(freshBundle(root)).toBeUndefined();
    expect(cli(['--version']).trim()).toBe(sourceVersion());
    const entry = freshBundle(root);
    expect(entry).toBeDefined();
    expect(entry!.startsWith(join(root, 'dist'))).toBe(true);
    // The bundle finds the built-in runbooks (they live beside it, not inside it).
    expect(cli(['list'])).toMatch(/nospace-recovery/);
    expect(freshBundle(root)).toBe(entry);
  });

  it('an edited source file makes it stale: the next run rebuilds and runs the new code', () => {
    const before = freshBundle(root);
    const file = join(root, 'src/cli/version.ts');
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/export const VERSION = '[^']+';/);
    writeFileSync(file, text.replace(/export const VERSION = '[^']+';/, "export const VERSION = '9.9.9-edited';"));
    expect(freshBundle(root)).toBeUndefined();
    expect(cli(['--version']).trim()).toBe('9.9.9-edited');
    const after = freshBundle(root);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });

  it('a touched file (same content, new mtime) is stale too; RUNBOOK_FROM_SOURCE=1 never uses the bundle', () => {
    const f = join(root, 'src/util/units.ts');
    const later = new Date(Date.now() + 5000);
    utimesSync(f, later, later);
    expect(freshBundle(root)).toBeUndefined();
    expect(cli(['--version'], { RUNBOOK_FROM_SOURCE: '1' }).trim()).toBe(sourceVersion());
    expect(freshBundle(root)).toBeUndefined(); // running from source did not build
  });

  it('runs from src/ when it cannot build (another build holds the lock), and says why under RUNBOOK_DEBUG', async () => {
    mkdirSync(join(root, 'dist'), { recursive: true }); // this test may be the file's first
    // Whatever ran before: no fresh bundle (a touched source makes any bundle stale), so the CLI must try to build.
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'src/util/units.ts'), later, later);
    expect(freshBundle(root)).toBeUndefined();
    writeFileSync(join(root, 'dist', '.building'), '');
    try {
      let why = '';
      expect(await buildBundle(root, (w: string) => (why = w))).toBeUndefined();
      expect(why).toMatch(/another process is building/);
      const r = spawnSync(process.execPath, [join(root, 'bin/runbook.js'), '--version'], { cwd: root, env: { ...process.env, RUNBOOK_DEBUG: '1' }, encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(sourceVersion());
      expect(r.stderr).toMatch(/running from src\/: another process is building the bundle/);
    } finally {
      rmSync(join(root, 'dist', '.building'), { force: true });
    }
  });

  it('keeps at most five builds', async () => {
    for (let i = 0; i < 6; i++) expect(await buildBundle(root)).toBeDefined();
    const builds = readdirSync(join(root, 'dist')).filter((d) => d.startsWith('b-'));
    expect(builds.length).toBe(5);
    expect(existsSync(freshBundle(root)!)).toBe(true);
    expect(readdirSync(join(root, 'dist')).filter((d) => d.startsWith('.tmp-'))).toEqual([]);
  });
});
