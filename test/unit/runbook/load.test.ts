import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { listRunbooks } from '../../../src/runbook/find.ts';
import { loadRunbook, loadRunbookText, validateFiles } from '../../../src/runbook/load.ts';
import { DEFAULT_RETRY } from '../../../src/runbook/model.ts';
import { UserError } from '../../../src/util/errors.ts';

const valid = fileURLToPath(new URL('../../fixtures/valid/', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'runbook-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function problems(text: string): string[] {
  try {
    loadRunbookText(text, 'x.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);
  }
  return [];
}

describe('loadRunbook', () => {
  it('normalizes a custom runbook: durations in ms, bytes in bytes, retry defaults, positions, hash', () => {
    const file = path.join(valid, 'custom-maintenance.yaml');
    const rb = loadRunbook(file);
    expect(rb.name).toBe('custom-maintenance');
    expect(rb.autoApprove).toBe(true);
    expect(rb.destructive).toBe(false);
    expect(rb.source).toEqual({ file, hash: createHash('sha256').update(readFileSync(file)).digest('hex') });

    const p = Object.fromEntries(rb.params.map((x) => [x.name, x]));
    expect(p.pause!.default).toBe(2000);
    expect(p.minReclaim!.default).toBe(64 * 1024 * 1024);
    expect(p.extraHosts!.default).toEqual([]);
    expect(p.mode).toMatchObject({ type: 'string', default: 'gentle', enum: ['gentle', 'brisk'] });
    expect(p.quotaBytes).toMatchObject({ optional: true });
    expect(p.quotaBytes!.default).toBeUndefined();
    expect(p.reason).toMatchObject({ optional: false, pos: { file, line: 12, col: 3 } });

    const s = Object.fromEntries(rb.steps.map((x) => [x.id, x]));
    expect(rb.steps.map((x) => x.id)).toEqual(['preflight', 'snapshot', 'confirm', 'rotate-logs', 'settle', 'defrag-some', 'health']);
    expect(s.snapshot!.timeoutMs).toBe(600_000);
    expect(s.snapshot!.retry).toEqual({ maximumAttempts: 3, initialIntervalMs: 500, backoffCoefficient: 1.5, maximumIntervalMs: 5000, nonRetryable: ['precondition', 'invalid'] });
    expect(s['defrag-some']!.retry).toEqual({ ...DEFAULT_RETRY, maximumAttempts: 2 });
    expect(s.health!.retry).toEqual(DEFAULT_RETRY);
    expect(s.confirm!.approval).toBe('required');
    expect(s.health!.approval).toBe('none');
    expect(s['rotate-logs']).toMatchObject({
      optional: true,
      gate: 'etcd.member-healthy',
      timeoutMs: 120_000,
      forEach: { kind: 'members', members: 'all', order: 'followers-then-leader', moveLeaderFirst: false },
      pos: { file, line: 43, col: 5 },
    });
    expect(s['defrag-some']!.forEach).toEqual({ kind: 'items', items: 'inventory.members.filter(m, !(m.name in params.extraHosts)).map(m, m.name)' });
    // `with` stays raw: templates are rendered when the step starts.
    expect(s.settle!.with).toEqual({ duration: '${{ params.pause }}' });
    expect(s['defrag-some']!.with).toEqual({ minReclaimBytes: '${{ params.minReclaim }}', timeoutPerGiB: '90s' });
    expect(s.preflight!.when).toBeUndefined();
    expect(s.snapshot!.when).toBe('inventory.snapshots != null');
  });

  it('loads every valid fixture and every built-in runbook', () => {
    const files = ['minimal.yaml', 'custom-maintenance.yaml', 'design-example.yaml'].map((f) => path.join(valid, f));
    const builtIns = listRunbooks().filter((r) => r.builtIn).map((r) => r.file);
    expect(builtIns.length).toBeGreaterThanOrEqual(3);
    for (const r of validateFiles([...files, ...builtIns])) expect(r.diagnostics, r.file).toEqual([]);
  });

  it('reports every problem at once, in file order', () => {
    const got = problems(
      [
        'apiVersion: runbook/v1',
        'name: x',
        'summary: s',
        'steps:',
        '  - { id: a, action: etcd.compactt }',
        '  - { id: b, action: etcd.compact, with: { keep: -1 } }',
        '  - { id: c, action: wait, with: { duration: forever } }',
      ].join('\n'),
    );
    expect(got).toEqual([
      '5:22 step "a": unknown action "etcd.compactt" (did you mean "etcd.compact"?)',
      '6:50 step "b": with.keep: must be >= 0 (got the integer -1)',
      '7:46 step "c": with.duration: not a duration: "forever" (use e.g. 500ms, 30s, 5m, 1h30m)',
    ]);
  });

  it('parallel forEach: loaded for a restore, refused with a gate, with an order, and for an action that changes members one at a time', () => {
    const head = 'apiVersion: runbook/v1\nname: x\nsummary: s\nsteps:\n';
    const rb = loadRunbookText(`${head}  - { id: r, action: etcd.restore-member, with: { snapshot: /s.db }, forEach: { members: all, parallel: true } }\n`, 'x.yaml');
    expect(rb.steps[0]!.forEach).toEqual({ kind: 'members', members: 'all', order: 'as-listed', moveLeaderFirst: false, parallel: true });
    expect(problems(`${head}  - { id: h, action: etcd.member-healthy, forEach: { members: all, parallel: true }, gate: etcd.member-healthy }\n`)).toEqual([
      '5:92 step "h": gate: a gate is checked between items, and parallel items have no "between": drop the gate or parallel',
    ]);
    expect(problems(`${head}  - { id: h, action: etcd.member-healthy, forEach: { members: all, order: followers-then-leader, parallel: true } }\n`)).toEqual([
      '5:108 step "h": forEach.parallel: parallel runs every member at once: order and moveLeaderFirst have no meaning with it (drop one or the other)',
    ]);
    const refused = problems(`${head}  - { id: q, action: members.set-flag, with: { flag: quota-backend-bytes, value: "1" }, forEach: { members: all, parallel: true } }\n`);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^5:\d+ step "q": forEach.parallel: "members.set-flag" changes members one at a time \(at once it could cost the cluster its quorum\); parallel is for read-only actions and etcd.restore-member, members.move-data-aside$/);
  });

  it('hashes the exact bytes, so any edit changes the hash', () => {
    const text = 'apiVersion: runbook/v1\nname: x\nsummary: s\nsteps:\n  - { id: a, action: etcd.write-probe }\n';
    const a = loadRunbookText(text, 'x.yaml').source.hash;
    const b = loadRunbookText(`${text}# a comment\n`, 'x.yaml').source.hash;
    expect(a).toBe(createHash('sha256').update(text).digest('hex'));
    expect(b).not.toBe(a);
  });

  it('skips the static check of templated values but still checks the others and unknown keys', () => {
    const head = 'apiVersion: runbook/v1\nname: x\nsummary: s\nparams: { n: { type: integer, default: 1 } }\nsteps:\n';
    expect(problems(`${head}  - { id: a, action: etcd.compact, with: { keep: "\${{ params.n }}" } }\n`)).toEqual([]);
    expect(problems(`${head}  - { id: a, action: etcd.compact, with: { keep: "\${{ params.n }}", physical: 3, kep: 1 } }\n`)).toEqual([
      '6:79 step "a": with.physical: expected a boolean (true or false), got the integer 3',
      '6:82 step "a": with: unknown key "kep" (did you mean "keep"?)',
    ]);
  });

  it('refuses a missing file, a directory and an oversized file with a UserError', () => {
    expect(() => loadRunbook(path.join(tmp, 'nope.yaml'))).toThrow(/no such file/);
    expect(() => loadRunbook(tmp)).toThrow(UserError);
    const big = path.join(tmp, 'big.yaml');
    writeFileSync(big, `description: "${'x'.repeat(1024 * 1024)}"\n`);
    expect(() => loadRunbook(big)).toThrow(/too large/);
  });
});
