/**
 * The CLI driven in-process through `main(argv, io)` with captured output: exit codes, diagnostics with positions,
 * no stack traces for user errors, `show --mermaid` against the compiled machine.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.ts';
import type { Io } from '../../../src/cli/output.ts';
import { compileRunbook } from '../../../src/compile/machine.ts';
import { loadRunbook } from '../../../src/runbook/load.ts';
import { findRunbook } from '../../../src/runbook/find.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const invalidDir = path.join(root, 'test/fixtures/invalid');

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => { out += t.endsWith('\n') ? t : `${t}\n`; }, err: (t) => { err += t.endsWith('\n') ? t : `${t}\n`; }, isTTY: false, color: false, env: {}, cwd: root };
  const code = await main(argv, io);
  return { code, out, err };
}

function expectation(file: string): { line: number; col: number; text: string } {
  const m = /^# expect: (\d+):(\d+) (.+)$/m.exec(readFileSync(file, 'latin1').replace(/^\xEF\xBB\xBF/, ''));
  if (!m) throw new Error(`${file} has no # expect: line`);
  return { line: Number(m[1]), col: Number(m[2]), text: m[3]! };
}

const STACK = /^\s+at .+\(.*:\d+:\d+\)$|^\s+at .+:\d+:\d+$/m;

describe('runbook validate on the invalid corpus', () => {
  const files = readdirSync(invalidDir).filter((f) => /\.ya?ml$/.test(f)).sort();
  it('has at least 40 fixtures', () => expect(files.length).toBeGreaterThanOrEqual(40));
  it.each(files)('%s: exit 2, file:line:col, no stack trace', async (f) => {
    const file = path.join(invalidDir, f);
    const want = expectation(file);
    const r = await run(['validate', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:${want.line}:${want.col}: `);
    expect(r.err).toContain(want.text);
    expect(r.err).not.toMatch(STACK);
    expect(r.err).not.toMatch(/internal error/);
  });
});

describe('an inventory with a bad data dir is refused by every command that loads it', () => {
  const bad = readdirSync(invalidDir).filter((f) => /^inventory-.*data-dir\.yaml$/.test(f)).sort();
  it('has the shared, root and relative data dir fixtures', () => expect(bad).toHaveLength(3));
  it.each(bad)('%s: plan and diagnose exit 2 with file:line:col before touching a cluster', async (f) => {
    const file = path.join(invalidDir, f);
    const want = expectation(file);
    for (const args of [['plan', 'nospace-recovery', '-i', file], ['diagnose', '-i', file]]) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`${file}:${want.line}:${want.col}: `);
      expect(r.err).toContain(want.text);
    }
  });
});

describe('environment errors: what to do and a documented exit code, never "internal error"', () => {
  it('a state dir under a file: exit 7, names the path and the fix', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'runbook-env-'));
    try {
      writeFileSync(path.join(dir, 'a-file'), '');
      const r = await run(['run', path.join(root, 'test/fixtures/valid/slow-steps.yaml'), '--endpoints', 'http://127.0.0.1:9', '--state-dir', path.join(dir, 'a-file', 'state'), '-p', `dir=${dir}`, '--yes']);
      expect(r.code).toBe(7);
      expect(r.err).toMatch(/cannot mkdir .*a-file\/state.* \(ENOTDIR\): a part of this path is a file, not a directory: fix the path \(--state-dir or RUNBOOK_STATE_DIR/);
      expect(r.err).not.toMatch(/internal error/);
      expect(r.err).not.toMatch(STACK);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serve --check refuses a TLS key that does not belong to the certificate (serve would fail at listen)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'runbook-tls-'));
    try {
      for (const n of ['a', 'b']) {
        await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.crt`, '-days', '2', '-subj', `/CN=${n}`], { cwd: dir, stdin: 'ignore' });
      }
      const cfg = (key: string) => {
        const file = path.join(dir, `chat-${key}.yaml`);
        writeFileSync(file, `listen: 127.0.0.1:18080\nstateDir: ${dir}/state\ntls: { cert: a.crt, key: ${key} }\nclusters: {}\nrunbooks: {}\n`);
        return file;
      };
      const bad = await run(['serve', '-c', cfg('b.key'), '--check']);
      expect(bad.code).toBe(2);
      expect(bad.err).toContain(`tls: the key ${dir}/b.key does not belong to the certificate ${dir}/a.crt`);
      expect(bad.err).not.toMatch(/internal error|BEGIN/);
      const good = await run(['serve', '-c', cfg('a.key'), '--check']);
      expect(good.code, good.err).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CLI basics', () => {
  it('validate of the built-ins: exit 0', async () => {
    const r = await run(['validate', ...readdirSync(path.join(root, 'runbooks')).map((f) => path.join(root, 'runbooks', f))]);
    expect(r.code, r.err).toBe(0);
  });

  it('a bad flag names the flag and exits 2', async () => {
    const r = await run(['run', 'nospace-recovery', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown option '--no-such-flag'/);
  });

  it('a bad --param names the param and exits 2 without a stack trace', async () => {
    const r = await run(['plan', 'nospace-recovery', '--endpoints', 'http://127.0.0.1:9', '-p', 'keepRevisions=lots']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/keepRevisions/);
    expect(r.err).not.toMatch(STACK);
    const unknown = await run(['plan', 'nospace-recovery', '--endpoints', 'http://127.0.0.1:9', '-p', 'nope=1']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/nope/);
  });

  it('an unknown runbook lists the ones that exist; an unknown run id says how to find runs', async () => {
    const r = await run(['show', 'nospace']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/nospace-recovery/);
    const s = await run(['status', 'not-a-run']);
    expect(s.code).toBe(2);
    expect(s.err).toMatch(/history/);
  });

  it('every command has --help', async () => {
    for (const cmd of ['list', 'show', 'validate', 'plan', 'run', 'resume', 'approve', 'deny', 'status', 'history', 'schema', 'actions']) {
      const r = await run([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.out, cmd).toMatch(/Usage: runbook/);
    }
  });
});

const rb0 = (name: string) => loadRunbook(findRunbook(name));

describe('show --mermaid', () => {
  it.each(['nospace-recovery', 'power-loss-restore', 'member-replacement'])('%s: one diagram state per compiled step state, in order', async (name) => {
    const r = await run(['show', name, '--mermaid']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('stateDiagram-v2');
    const rb = loadRunbook(findRunbook(name));
    const compiled = compileRunbook(rb);
    const declared = [...r.out.matchAll(/^ {2}(\w+) : /gm)].map((m) => m[1]);
    // Labels break lines the way Mermaid does (<br/>), never with a literal backslash-n it would print as text.
    expect(r.out).not.toContain('\\n');
    for (const s of rb0(name).steps) expect(r.out).toContain(`  ${s.id.replace(/-/g, '_')} : ${s.id}<br/>${s.action}`);
    const machineStates = Object.keys(compiled.config.states).filter((s) => !s.startsWith('__')).map((s) => s.replace(/[^A-Za-z0-9_]/g, '_'));
    expect(declared).toEqual(machineStates);
    expect(machineStates).toEqual(rb.steps.map((s) => s.id.replace(/-/g, '_')));
    // every step has an edge to its successor
    rb.steps.forEach((s, i) => {
      const next = rb.steps[i + 1]?.id ?? '__succeeded';
      expect(r.out).toContain(`  ${s.id.replace(/-/g, '_')} --> ${next.replace(/-/g, '_')} : done`);
    });
  });

  it('compilation is deterministic: same runbook, same machine config, same hash', () => {
    const a = compileRunbook(loadRunbook(findRunbook('nospace-recovery')));
    const b = compileRunbook(loadRunbook(findRunbook('nospace-recovery')));
    expect(JSON.stringify(a.config)).toBe(JSON.stringify(b.config));
    expect(a.hash).toBe(b.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
