/**
 * One run per cluster through the real CLI, on a real etcd cluster: 8 `runbook run` processes started at once
 * through 8 inventories with different names and URL spellings (localhost, 127.0.0.1), each with its own state
 * dir or $HOME: never two inside the runbook's mutating step at the same time; the refused ones exit 4 naming the
 * holder's run, host and pid. And a runner SIGKILLed right after journaling `run.finished` does not block the next
 * run. (The lock primitive itself is hammered for 50 rounds in test/unit/store/machine-lock.test.ts.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');

/** A runbook whose only step mutates: it enters a critical section marked by an O_EXCL file (sh's noclobber). */
const RUNBOOK = `apiVersion: runbook/v1
name: exclusive
summary: a mutating step that must never run twice at once on one cluster
params:
  dir: { type: string, description: where the marker lives }
steps:
  - id: mutate
    action: exec
    with:
      argv: [sh, -c, 'set -C; if ! : > "$0/inside"; then echo "$$" >> "$0/violations"; fi; sleep 2; rm -f "$0/inside"; echo "$$" >> "$0/entered"', '\${{ params.dir }}']
      idempotent: true
`;

describe('one run per cluster, whatever inventory, URL spelling, state dir or $HOME (real CLI)', () => {
  let cluster: TestCluster;
  let dir = '';
  let rb = '';

  beforeAll(async () => {
    cluster = await startCluster({ members: 1, name: 'lock-cli' });
    dir = path.join(cluster.dir, 'lock-test');
    fs.mkdirSync(dir);
    rb = path.join(dir, 'exclusive.yaml');
    fs.writeFileSync(rb, RUNBOOK);
  }, 60_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  /** Inventory i: its own name, and every URL spelled with localhost for odd i. */
  function inventory(i: number): string {
    const spell = (u: string) => (i % 2 ? u.replace('127.0.0.1', 'localhost') : u);
    return cluster.writeInventory(path.join(dir, `inv-${i}.yaml`), {
      name: `copy-${i}-of-prod`,
      members: cluster.inventory().members.map((m) => ({ ...m, clientURL: spell(m.clientURL), peerURL: spell(m.peerURL) })),
    });
  }

  /** Run i: a state dir for even i; for odd i only its own $HOME (the default state dir is under it). */
  function run(i: number, extra: string[] = [], env: Record<string, string> = {}) {
    const home = path.join(dir, `home-${i}`);
    fs.mkdirSync(home, { recursive: true });
    const state = i % 2 ? [] : ['--state-dir', path.join(dir, `state-${i}`)];
    return runCli(['run', rb, '-i', inventory(i), ...state, '-p', `dir=${dir}`, '--yes', ...extra], {
      timeout: 120_000, env: { HOME: home, XDG_STATE_HOME: path.join(home, '.local/state'), RUNBOOK_STATE_DIR: '', ...env },
    });
  }

  it('8 runs started at once: never two in the mutating step; the refused exit 4 naming the holder', async () => {
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').filter(Boolean) : []);
    // The marker files are the file's: count only what these 8 runs add (another test may have run first).
    const enteredBefore = read('entered').length;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => run(i)));
    expect(read('violations')).toEqual([]);
    const ok = results.filter((r) => r.exitCode === 0);
    const refused = results.filter((r) => r.exitCode === 4);
    expect(ok.length + refused.length, results.map((r) => `${r.exitCode}: ${r.stderr}`).join('\n')).toBe(8);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(read('entered')).toHaveLength(enteredBefore + ok.length);
    for (const r of refused) expect(r.stderr).toMatch(/cluster "copy-\d-of-prod" is locked by run \d{8}-\d{6}-exclusive-[0-9a-f]{6} \(pid \d+ on [^,]+, user [^,]+, since /);
  }, 180_000);

  it('a runner SIGKILLed right after journaling run.finished does not block the next run', async () => {
    const killed = await run(0, [], { RUNBOOK_FAILPOINT: 'journal-after:run.finished' });
    expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
    const next = await run(3);
    expect(next.exitCode, next.stdout + next.stderr).toBe(0);
  }, 120_000);
});
