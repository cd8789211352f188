/**
 * `runbook guard` (the real CLI, a child process) against real 3-member clusters without auto-compaction and with a
 * 16 MiB quota: what an operator cares about. NOSPACE never comes while it watches, though the same writer brings an
 * unguarded twin cluster to NOSPACE in the same time; every run it starts is journaled; reads never fail during its
 * defrags; a guard stopped mid-run and started again resumes that run and repeats nothing; a run holding the
 * cluster's lock makes it wait and say so.
 *
 * The issue asks for five minutes of writing; the suite keeps the pressure (a writer that fills the quota in about a
 * minute) and writes for 80 s (longer if the twin has not reached NOSPACE yet: a loaded machine slows both writers),
 * long enough for the guard to act more than once. GUARD_SOAK_MS=300000 runs the five minutes (a soak, run
 * by hand: its result is recorded in BENCHMARKS.md).
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/events/types.ts';
import { readJournal } from '../../src/store/journal.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { bin, startGuard, startReaders, startWriter, type GuardProcess } from '../support/guard-process.ts';
import { cli as runCli } from '../support/cli.ts';

const MiB = 1024 * 1024;
/** How long the writers write (the issue: five minutes; here the same pressure for 80 s, see the file comment). */
const WINDOW_MS = Number(process.env.GUARD_SOAK_MS) || 80_000;
const MAX_WINDOW_MS = WINDOW_MS + 70_000;
const clusters: TestCluster[] = [];
const guards: GuardProcess[] = [];
let stateDir = '';

afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.stop()));
  await Promise.all(clusters.splice(0).map((c) => c.teardown()));
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  stateDir = '';
});

async function cluster(name: string): Promise<TestCluster> {
  const c = await startCluster({ members: 3, quotaBytes: 16 * MiB, name });
  clusters.push(c);
  return c;
}

function guard(args: string[]): GuardProcess {
  const g = startGuard(['--state-dir', stateDir, ...args]);
  guards.push(g);
  return g;
}

function cli(args: string[]) {
  return runCli(args);
}

function journalOf(runId: string): JournalRecord[] {
  return readJournal(path.join(stateDir, 'runs', runId, 'journal.jsonl')).records;
}

function runIds(): string[] {
  try {
    return fs.readdirSync(path.join(stateDir, 'runs')).sort();
  } catch {
    return [];
  }
}

async function poll<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Overwrite a few keys: history without live data. */
async function writeHistory(c: TestCluster, puts: number) {
  const client = c.client();
  for (let i = 0; i < puts; i++) await client.put(`/hist/${i % 4}`).value(`v${i}`);
}

describe('runbook guard (real clusters, real CLI)', () => {
  it('keeps a cluster under a filling writer out of NOSPACE (its unguarded twin reaches it); every run journaled; no read fails during its defrags', { timeout: WINDOW_MS + 160_000 }, async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-'));
    const [guarded, twin] = await Promise.all([cluster('guarded'), cluster('twin')]);
    await guarded.client().put('/read-me').value('x');
    const g = guard(['-i', guarded.writeInventory(), '--interval', '1s', '--cooldown', '5s', '-p', 'keepRevisions=20']);
    await g.waitFor((e) => e.type === 'guard.poll', 'a first poll');

    // The same writer on both: 32 KiB every 130 ms over 8 keys (~250 KiB/s of history). Measured on 3.5.30, 413 such
    // puts bring an unguarded 16 MiB cluster to NOSPACE: ~54 s at this pace.
    const load = { valueBytes: 32 * 1024, everyMs: 130, keys: 8, prefix: '/load/' };
    const readers = startReaders(guarded.endpoints, '/read-me');
    const w1 = startWriter(guarded.endpoints[0]!, load);
    const w2 = startWriter(twin.endpoints[0]!, load);
    const alarmsSeen: string[] = [];
    // Write for WINDOW_MS, and on until the twin has reached NOSPACE (a loaded machine slows both writers alike).
    const t0 = Date.now();
    while (Date.now() - t0 < WINDOW_MS || (w2.result.nospaceAfterMs === undefined && Date.now() - t0 < MAX_WINDOW_MS)) {
      for (const a of await guarded.alarms()) alarmsSeen.push(a.alarm);
      await new Promise((r) => setTimeout(r, 500));
    }
    const [r1, r2] = await Promise.all([w1.stop(), w2.stop()]);
    const reads = await readers.stop();

    // without the guard the writer reached NOSPACE within the window: the guard had something to prevent
    expect(r2.nospaceAfterMs, 'the unguarded twin reaches NOSPACE').toBeDefined();
    // with it, no put was refused and no alarm was ever raised
    expect(r1.nospaceAfterMs, `guarded writer refused with NOSPACE; guard said: ${g.events.filter((e) => e.type === 'guard.decision' || e.type === 'guard.run-ended').map((e) => e.message).join(' | ')}`).toBeUndefined();
    expect(r1.errors).toEqual([]);
    expect(r1.puts).toBeGreaterThan(r2.puts);
    expect(alarmsSeen).toEqual([]);
    expect(await guarded.alarms()).toEqual([]);
    // every read through every member succeeded, defrags included
    expect(reads.failures).toEqual([]);
    expect(reads.reads).toBeGreaterThan(100);

    // every run the guard started is in the journal, started by the guard, and succeeded
    const started = g.events.filter((e) => e.type === 'guard.decision' && e.decision === 'started');
    expect(started.length).toBeGreaterThanOrEqual(1);
    await g.waitFor((e) => e.type === 'guard.run-ended' && e.runId === started.at(-1)!.runId, 'the last run to end');
    expect(runIds()).toEqual(started.map((e) => e.runId).sort());
    for (const e of started) {
      const recs = journalOf(e.runId!);
      const first = recs[0] as Extract<JournalRecord, { type: 'run.started' }>;
      expect(first.type).toBe('run.started');
      expect(first.runbook).toBe('nospace-prevention');
      expect(first.requestedBy).toMatch(/^guard/);
      expect(recs.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    }
    // the decision is audited
    const audit = fs.readFileSync(path.join(stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.filter((a) => a.event === 'guard.decision' && a.outcome === 'started').map((a) => a.runId).sort()).toEqual(started.map((e) => e.runId).sort());
    expect(audit.some((a) => a.event === 'guard.rule' && a.rule === 'quota-use' && a.outcome === 'holds')).toBe(true);
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)('stopped (%s) while its run waits half-way and started again: resumes that run and repeats nothing', { timeout: 120_000 }, async (signal) => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-'));
    const c = await cluster('restart');
    await writeHistory(c, 120);
    const inv = c.writeInventory();
    // history rule only (auto-compaction is off on these members: the guard reads it from their command lines)
    const args = ['-i', inv, '--interval', '500ms', '--approval', 'required', '-p', 'keepRevisions=10',
      '--rule', 'quota-use=off', '--rule', 'fragmentation=off', '--rule', 'history=cluster.autoCompaction == false && cluster.history > 50'];
    const g1 = guard(args);
    const startedEv = await g1.waitFor((e) => e.type === 'guard.decision' && e.decision === 'started', 'a run to start');
    const runId = startedEv.runId!;
    await g1.waitFor((e) => e.type === 'guard.run' && e.record?.type === 'approval.requested' && e.record.stepId === 'compact', 'the compact approval request');
    expect((await cli(['approve', runId, 'compact', '--state-dir', stateDir])).exitCode).toBe(0);
    await g1.waitFor((e) => e.type === 'guard.run' && e.record?.type === 'approval.requested' && e.record.stepId === 'defrag', 'the defrag approval request');
    const before = journalOf(runId);
    expect(before.filter((r) => r.type === 'step.succeeded' && r.stepId === 'compact')).toHaveLength(1);
    await g1.stop(signal);
    // SIGTERM: interrupted, journaled as such; SIGKILL: the journal just stops (and the lock names a dead process)
    if (signal === 'SIGTERM') expect(journalOf(runId).at(-1)).toMatchObject({ type: 'run.finished', status: 'cancelled' });
    else expect(journalOf(runId).some((r) => r.type === 'run.finished')).toBe(false);

    const g2 = guard(args);
    const resumed = await g2.waitFor((e) => e.type === 'guard.decision' && (e.decision === 'resumed' || e.decision === 'started'), 'the second guard to act');
    expect(resumed.decision).toBe('resumed');
    expect(resumed.runId).toBe(runId);
    await poll('the run to be resumed', () => journalOf(runId).slice(before.length).some((r) => r.type === 'run.resumed'));
    // still waiting for the defrag approval (the request was journaled before the stop): nothing defragmented yet
    expect(journalOf(runId).some((r) => r.type === 'step.started' && r.stepId === 'defrag')).toBe(false);
    expect((await cli(['approve', runId, 'defrag', '--state-dir', stateDir])).exitCode).toBe(0);
    await g2.waitFor((e) => e.type === 'guard.run-ended' && e.runId === runId, 'the resumed run to end');

    const recs = journalOf(runId);
    expect(recs.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    expect(recs.filter((r) => r.type === 'run.resumed')).toHaveLength(1);
    // the compaction ran once, in the first guard; each member was defragmented once, in the second
    expect(recs.filter((r) => r.type === 'step.started' && r.stepId === 'compact')).toHaveLength(1);
    const defrags = recs.filter((r) => r.type === 'step.succeeded' && r.stepId === 'defrag').map((r) => (r as { item?: string }).item);
    expect(defrags.sort()).toEqual(['m1', 'm2', 'm3']);
    // no second run: the history cleared (kept 10 revisions) and the rule is disarmed
    expect(runIds()).toEqual([runId]);
    await g2.waitFor((e) => e.type === 'guard.rule' && e.rule === 'history' && e.holds === false, 'the history rule to clear');
    expect(g2.events.some((e) => e.type === 'guard.decision' && e.decision === 'started')).toBe(false);
  });

  it('waits, and says so, while another run holds the cluster lock; starts once it is released', { timeout: 120_000 }, async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-'));
    const c = await cluster('locked');
    await writeHistory(c, 120);
    const inv = c.writeInventory();
    const hold = path.join(stateDir, 'hold.yaml');
    fs.writeFileSync(hold, 'apiVersion: runbook/v1\nname: hold-lock\nsummary: waits for a human while holding the cluster lock\nsteps:\n  - id: wait-here\n    action: approve\n    approval: required\n');
    // --wait-for-approval: without a TTY a run would stop at its gate (exit 3) and let the lock go.
    const holder = execa(process.execPath, [bin, 'run', hold, '-i', inv, '--state-dir', stateDir, '--wait-for-approval'], { reject: false, env: { NO_COLOR: '1' }, stdin: 'ignore' });
    // (its run dir appears a moment before its journal file)
    const holderId = await poll('the holding run to wait for its approval', () => runIds().find((id) => fs.existsSync(path.join(stateDir, 'runs', id, 'journal.jsonl')) && journalOf(id).some((r) => r.type === 'approval.requested')));

    const g = guard(['-i', inv, '--interval', '500ms', '-p', 'keepRevisions=10', '--rule', 'quota-use=off', '--rule', 'fragmentation=off', '--rule', 'history=cluster.history > 50']);
    const waiting = await g.waitFor((e) => e.type === 'guard.decision' && e.decision === 'skipped-lock', 'the guard to say it waits');
    expect(waiting.message).toMatch(/waiting/);
    expect(waiting.message).toContain(holderId);
    // it keeps waiting: no run of its own while the lock is held, and it said so once
    await g.waitFor((e) => e.type === 'guard.poll' && g.events.filter((x) => x.type === 'guard.poll').length >= 4, 'more polls');
    expect(runIds()).toEqual([holderId]);
    expect(g.events.filter((e) => e.type === 'guard.decision' && e.decision === 'skipped-lock')).toHaveLength(1);

    expect((await cli(['approve', holderId, 'wait-here', '--state-dir', stateDir])).exitCode).toBe(0);
    expect((await holder).exitCode).toBe(0);
    const started = await g.waitFor((e) => e.type === 'guard.decision' && e.decision === 'started', 'the guard to start once the lock is free');
    await g.waitFor((e) => e.type === 'guard.run-ended' && e.runId === started.runId, 'its run to end');
    expect(journalOf(started.runId!).at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
  });

  it('--once reports what it sees (auto-compaction off, each rule) without acting; bad flags are refused naming the flag', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-'));
    const c = await cluster('once');
    await writeHistory(c, 60);
    const inv = c.writeInventory();
    const r = await cli(['guard', '-i', inv, '--once', '--state-dir', stateDir, '--rule', 'history=cluster.history > 50']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rule history: HOLDS/);
    expect(r.stdout).toMatch(/rule quota-use: clear/);
    expect(r.stdout).toMatch(/auto-compaction is off/);
    expect(runIds()).toEqual([]); // --once never starts a run

    for (const [args, msg] of [
      [['--interval', 'soon'], /--interval: not a duration/],
      [['--rule', 'quota-use=members.exists(m, '], /--rule quota-use/],
      [['--rule', 'oops'], /--rule "oops": expected name=expression/],
      [['--approval', 'maybe'], /--approval: expected policy or required/],
      [['-p', 'nope=1'], /unknown param "nope"/],
    ] as const) {
      const bad = await cli(['guard', '-i', inv, '--once', '--state-dir', stateDir, ...args]);
      expect(bad.exitCode, `${args.join(' ')}: ${bad.stderr}`).toBe(2);
      expect(bad.stderr).toMatch(msg);
      expect(bad.stderr).not.toMatch(/internal error|at .*\.ts:\d+/);
    }
  });

  it('reads each member\'s own quota from /metrics over TLS with client certificates', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-'));
    const c = await startCluster({ members: 3, quotaBytes: 24 * MiB, name: 'tls', tls: true });
    clusters.push(c);
    const r = await cli(['guard', '-i', c.writeInventory(), '--once', '--json', '--state-dir', stateDir]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { facts: { members: { name: string; reachable: boolean; quota: number; quotaSource: string }[]; cluster: { compactionKnown: boolean } } };
    expect(out.facts.members.map((m) => [m.name, m.reachable, m.quota, m.quotaSource])).toEqual([
      ['m1', true, 24 * MiB, 'member'], ['m2', true, 24 * MiB, 'member'], ['m3', true, 24 * MiB, 'member'],
    ]);
    expect(out.facts.cluster.compactionKnown).toBe(true);
  });

  it('a cluster already at NOSPACE: refuses to run prevention (too late) and says what fits; reports the alarm', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-'));
    const c = await cluster('full');
    await c.fillToNospace();
    const g = guard(['-i', c.writeInventory(), '--interval', '500ms']);
    const refused = await g.waitFor((e) => e.type === 'guard.decision', 'a decision');
    expect(refused.decision).toBe('refused');
    expect(refused.message).toMatch(/NOSPACE alarm: too late for prevention; recover with: runbook run nospace-recovery/);
    await g.waitFor((e) => e.type === 'guard.finding' && e.finding?.code === 'nospace-alarm', 'the nospace-alarm finding');
    await g.waitFor((e) => e.type === 'guard.poll' && g.events.filter((x) => x.type === 'guard.poll').length >= 3, 'more polls');
    expect(runIds()).toEqual([]);
    expect((await c.alarms()).map((a) => a.alarm)).toContain('NOSPACE');
  });
});
