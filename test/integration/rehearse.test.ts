/**
 * `runbook rehearse` as a user runs it: child processes of `node bin/runbook.js rehearse …` against real etcd,
 * each with its own TMPDIR (so "no temp dir left behind" is a look at an empty directory) and state dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEED_KEYS } from '../../src/rehearse/faults.ts';
import { listRunbooks } from '../../src/runbook/find.ts';
import { createHash } from 'node:crypto';
import { livePids, startCluster } from '../support/etcd-cluster.ts';
import { killIfStill } from '../support/child-processes.ts';

const BIN = fileURLToPath(new URL('../../bin/runbook.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'runbook-rehearse-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Cli {
  child: ChildProcess;
  out(): string;
  err(): string;
  exited: Promise<number | null>;
}

/** A fresh TMPDIR and state dir for one child. */
function sandbox(name: string): { tmp: string; state: string } {
  const tmp = join(work, name, 'tmp');
  const state = join(work, name, 'state');
  mkdirSync(tmp, { recursive: true });
  mkdirSync(state, { recursive: true });
  return { tmp, state };
}

function cli(args: string[], box: { tmp: string; state: string }): Cli {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ETCDCTL_') && !k.startsWith('RUNBOOK_')) env[k] = v;
  Object.assign(env, { TMPDIR: box.tmp, RUNBOOK_STATE_DIR: box.state, NO_COLOR: '1' });
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b));
  child.stderr!.on('data', (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, out: () => out, err: () => err, exited };
}

/** Live etcd processes whose command line mentions dir (a sandbox's TMPDIR). */
function etcdUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (/(^|\/)etcd$/.test(argv[0] ?? '') && argv.some((a) => a.includes(dir))) pids.push(Number(e));
    } catch {
      // gone
    }
  }
  return livePids(pids);
}

async function until(what: string, pred: () => boolean, ms: number, cli?: Cli): Promise<void> {
  for (const end = Date.now() + ms; !pred(); await sleep(50)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nstdout:\n${cli?.out().slice(-3000)}\nstderr:\n${cli?.err().slice(-2000)}`);
  }
}

function expectNothingLeft(box: { tmp: string }): void {
  expect(etcdUnder(box.tmp)).toEqual([]);
  expect(readdirSync(box.tmp)).toEqual([]);
}

interface Report {
  runbook: string;
  fault: string;
  passed: boolean;
  interrupted?: string;
  error?: string;
  faultSummary?: string;
  run?: { runId: string; dir: string; status: string; durationMs: number; error?: { message: string } };
  steps: { id: string; status: string; durationMs?: number }[];
  checks: { name: string; ok: boolean; detail: string }[];
  timeToWritableMs?: number;
  reclaimedBytes?: number;
  cluster: { dir: string; kept?: { inventory: string; pids: number[] } };
}

/** Why a report did not pass, readable in a test failure. */
function why(r: Report): string {
  return JSON.stringify({ runbook: r.runbook, error: r.error, run: r.run?.error, failedChecks: r.checks.filter((c) => !c.ok), steps: r.steps.map((s) => `${s.id}:${s.status}`) });
}

// point-in-time-restore needs a backup stream's deltas: `--all` leaves it out and says why (its own test runs it).
const BUILT_INS = listRunbooks({}).filter((r) => r.builtIn && r.name !== 'point-in-time-restore').map((r) => r.name);
const CUSTOM = join(work, 'wait-a-while.yaml');
writeFileSync(
  CUSTOM,
  `apiVersion: runbook/v1
name: wait-a-while
summary: a health check, then a long wait (something to interrupt)
steps:
  - id: check
    action: etcd.cluster-healthy
  - id: pause
    action: wait
    with: { duration: 60s }
`,
);

describe('runbook rehearse', () => {
  it('nospace-recovery: a passing report with step times, time to writable and bytes reclaimed; nothing left behind', async () => {
    const box = sandbox('nospace');
    const c = cli(['rehearse', 'nospace-recovery'], box);
    const code = await c.exited;
    const out = c.out();
    expect(code, `${out}\n${c.err()}`).toBe(0);
    expect(out).toMatch(/fault injected in .*NOSPACE alarm raised after \d+ puts/);
    expect(out).toMatch(/✓ defrag \[m\d\]/);
    expect(out).toMatch(/rehearsal of nospace-recovery \(fault: nospace, etcd \d+\.\d+\.\d+\): PASSED/);
    for (const step of ['preflight', 'compact', 'defrag', 'disarm', 'verify-writes']) expect(out).toMatch(new RegExp(`\\n  ${step} +succeeded +\\d+(ms|\\.\\d+s)`));
    expect(out).toMatch(/✓ NOSPACE alarm gone/);
    expect(out).toMatch(/✓ every db below half the quota \(8\.0 MiB\)/);
    expect(out).toMatch(/writable again after \d+(ms|\.\d+s) · \d+\.\d MiB reclaimed/);
    expect(out).not.toMatch(/resume with/);
    // The run is journaled like any other.
    const journalDir = /journal: (\S+)/.exec(out)![1]!;
    const journal = readFileSync(join(journalDir, 'journal.jsonl'), 'utf8');
    expect(journal).toContain('"type":"run.finished","status":"succeeded"');
    expectNothingLeft(box);
  }, 120_000);

  it('--all --json: every built-in runbook passes against its fault; approvals are recorded as "rehearsal"', async () => {
    expect(BUILT_INS).toEqual(expect.arrayContaining(['nospace-recovery', 'power-loss-restore', 'member-replacement']));
    const box = sandbox('all');
    const c = cli(['rehearse', '--all', '--json'], box);
    const code = await c.exited;
    let result: { passed: boolean; rehearsals: Report[] };
    try {
      result = JSON.parse(c.out());
    } catch {
      throw new Error(`not JSON (exit ${code}):\n${c.out().slice(-3000)}\n${c.err().slice(-2000)}`);
    }
    expect(result.rehearsals.map((r) => r.runbook)).toEqual(BUILT_INS);
    for (const r of result.rehearsals) {
      expect(r.passed, why(r)).toBe(true);
      expect(r.run?.status, why(r)).toBe('succeeded');
      expect(r.checks.length).toBeGreaterThanOrEqual(4);
      expect(r.checks.every((ch) => ch.ok), why(r)).toBe(true);
      if (r.fault !== 'none') expect(r.timeToWritableMs, why(r)).toBeGreaterThan(0);
      // Steps that ran report a measured duration (a step found already done by its probe has none).
      const timed = r.steps.filter((x) => x.status === 'succeeded' && x.durationMs !== undefined);
      expect(timed.length, `${r.runbook}: steps with a duration`).toBeGreaterThan(0);
      for (const s of timed) expect(s.durationMs, `${r.runbook} ${s.id}`).toBeGreaterThanOrEqual(0);
    }
    const byName = Object.fromEntries(result.rehearsals.map((r) => [r.runbook, r]));
    expect(byName['nospace-recovery']!.fault).toBe('nospace');
    expect(byName['nospace-recovery']!.reclaimedBytes).toBeGreaterThan(1024 * 1024);
    expect(byName['power-loss-restore']!.fault).toBe('power-loss');
    expect(byName['power-loss-restore']!.faultSummary).toMatch(/snapshot .* every member SIGKILLed/);
    // The plain restart cannot work on damaged data: the run restored from the snapshot, and the verdict saw it from
    // the cluster itself (a restore makes a new cluster id).
    expect(byName['power-loss-restore']!.steps.find((s) => s.id === 'try-restart')?.status).toBe('succeeded');
    expect(byName['power-loss-restore']!.steps.find((s) => s.id === 'restore')).toMatchObject({ status: 'succeeded', durationMs: expect.any(Number) });
    expect(byName['power-loss-restore']!.checks.find((ch) => ch.name === 'restored from the snapshot')).toMatchObject({ ok: true, detail: expect.stringMatching(/^cluster id \w+ → \w+$/) });
    expect(byName['member-replacement']!.fault).toBe('member-loss');
    expect(byName['member-replacement']!.checks.map((ch) => ch.name)).toContain('3 healthy voters');
    expect(byName['snapshot-backup']!.checks.find((ch) => ch.name === 'a new snapshot was written')?.ok).toBe(true);
    expect(code).toBe(0);
    expect(result.passed).toBe(true);

    // Approval steps were granted up front and journaled as given by the rehearsal.
    const journal = readFileSync(join(byName['member-replacement']!.run!.dir, 'journal.jsonl'), 'utf8');
    const granted = journal.split('\n').filter((l) => l.includes('"type":"approval.granted"')).map((l) => JSON.parse(l));
    expect(granted.length).toBeGreaterThan(0);
    for (const g of granted) expect(g).toMatchObject({ by: 'rehearsal', via: 'rehearsal' });
    expectNothingLeft(box);
  }, 300_000);

  it('a runbook of your own needs --fault, and nothing starts without it', async () => {
    const box = sandbox('no-fault');
    const c = cli(['rehearse', CUSTOM], box);
    expect(await c.exited).toBe(2);
    expect(c.err()).toMatch(/not a built-in.*--fault nospace\|power-loss\|member-loss\|none/);
    expectNothingLeft(box);
  }, 60_000);

  it('Ctrl-C during the run: exit 130, no etcd process and no temp dir left', async () => {
    const box = sandbox('int-run');
    const c = cli(['rehearse', CUSTOM, '--fault', 'none'], box);
    await until('the wait step to start', () => /… pause/.test(c.out()), 60_000, c);
    expect(etcdUnder(box.tmp).length).toBe(3);
    c.child.kill('SIGINT');
    const code = await c.exited;
    expect(code, c.err()).toBe(130);
    expect(c.out()).toMatch(/INTERRUPTED \(SIGINT\)/);
    expect(c.err()).toMatch(/interrupted; the throwaway cluster and its temp dir were removed/);
    expectNothingLeft(box);
  }, 90_000);

  it('Ctrl-C while the fault is injected: exit 130, nothing left', async () => {
    const box = sandbox('int-fault');
    // A big quota: filling it takes seconds, time enough to interrupt the fill.
    const c = cli(['rehearse', 'nospace-recovery', '--quota', '512MiB'], box);
    await until('the cluster to be up', () => /cluster up in/.test(c.out()), 60_000, c);
    // Interrupt once the fill has begun (m1 counts more puts than the seed keys), not after a guessed pause.
    const m1 = /cluster up in .*?: m1 (http:\/\/127\.0\.0\.1:\d+)/.exec(c.out())?.[1];
    expect(m1, c.out()).toBeDefined();
    let puts = 0;
    for (const end = Date.now() + 60_000; puts <= SEED_KEYS; await sleep(20)) {
      if (Date.now() > end) throw new Error(`the fill did not begin (m1: ${puts} puts)\nstdout:\n${c.out().slice(-3000)}`);
      const metrics = await fetch(`${m1}/metrics`).then((r) => r.text(), () => '');
      puts = Number(/^etcd_mvcc_put_total (\S+)$/m.exec(metrics)?.[1] ?? 0);
    }
    c.child.kill('SIGINT');
    const code = await c.exited;
    expect(code, `${c.out()}\n${c.err()}`).toBe(130);
    expect(c.out()).not.toMatch(/fault injected/);
    expectNothingLeft(box);
  }, 90_000);

  it('--from-snapshot: a staging snapshot restored into the sandbox; its keys all there after the recovery; the file untouched', async () => {
    const staging = await startCluster({ members: 1 });
    const file = join(work, 'staging.db');
    try {
      const client = staging.client();
      for (let i = 0; i < 50; i++) await client.put(`/registry/configmaps/default/cm-${i}`).value('v'.repeat(10_000)).exec();
      await staging.snapshot(file);
    } finally {
      await staging.teardown();
    }
    const sha = () => createHash('sha256').update(readFileSync(file)).digest('hex');
    const before = sha();
    const box = sandbox('from-snapshot');
    const c = cli(['rehearse', 'nospace-recovery', '--from-snapshot', file, '--json'], box);
    expect(await c.exited, c.err()).toBe(0);
    const r = JSON.parse(c.out()) as Report & { cluster: { fromSnapshot?: string } };
    expect(r.passed, why(r)).toBe(true);
    expect(r.cluster.fromSnapshot).toBe(file);
    expect(r.checks.find((ch) => ch.name === 'restored data intact')).toMatchObject({ ok: true, detail: expect.stringMatching(/^50 keys from the snapshot/) });
    expect(sha()).toBe(before);
    expectNothingLeft(box);
  }, 120_000);

  it('--keep leaves the cluster running with an inventory diagnose can read', async () => {
    const box = sandbox('keep');
    const c = cli(['rehearse', CUSTOM, '--fault', 'none', '--members', '1', '-p', 'x=1', '--json'], box);
    expect(await c.exited).toBe(2); // -p names a param the runbook does not have: refused before anything starts
    expect(c.err()).toMatch(/x/);
    expectNothingLeft(box);

    const short = join(work, 'short.yaml');
    writeFileSync(short, readFileSync(CUSTOM, 'utf8').replace('duration: 60s', 'duration: 10ms'));
    const k = cli(['rehearse', short, '--fault', 'none', '--members', '1', '--keep', '--json'], box);
    expect(await k.exited, k.err()).toBe(0);
    const r = JSON.parse(k.out()) as Report;
    try {
      expect(r.passed, why(r)).toBe(true);
      expect(r.cluster.kept!.pids.length).toBe(1);
      expect(livePids(r.cluster.kept!.pids)).toEqual(r.cluster.kept!.pids);
      const inv = parse(readFileSync(r.cluster.kept!.inventory, 'utf8'));
      expect(inv.members).toHaveLength(1);
      const d = cli(['diagnose', '-i', r.cluster.kept!.inventory, '--json'], box);
      expect(await d.exited, d.err()).toBe(0);
      expect(JSON.parse(d.out())).toMatchObject({ status: expect.stringMatching(/healthy|warning/), alarms: [], members: [{ reachable: true, isLeader: true }] });
    } finally {
      for (const pid of r.cluster.kept?.pids ?? []) killIfStill(pid, r.cluster.dir);
      await until('the kept member to exit', () => livePids(r.cluster.kept?.pids ?? []).length === 0, 10_000);
      if (r.cluster.dir && existsSync(r.cluster.dir)) rmSync(r.cluster.dir, { recursive: true, force: true });
    }
  }, 90_000);
});
