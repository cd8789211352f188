/**
 * Fault injection during real nospace-recovery runs: a real 3-member cluster filled to NOSPACE, the real runner
 * (bin/runbook.js) as a child process, and a fault injected when the run's journal shows it reached the right
 * moment. Each run must end in a clear, resumable failure (exit 1, the step and the member named, the alarm still
 * armed: no silent success) or in a correct recovery, and the test asserts which; after the fault is repaired,
 * `runbook resume` must finish the recovery. Nothing may be deleted along the way (test/support/nodata-loss.ts).
 *
 *   - a member SIGKILLed while it is being defragmented
 *   - a member frozen (SIGSTOP) for longer than the defrag step's timeout (SIGCONT always, in cleanup)
 *   - the disk-headroom check failing (a member's data dir on a small tmpfs, headroomFactor 10), then space freed
 *   - the runner's state dir turning read-only mid-run (chattr +i: see that test for why)
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/events/types.ts';
import { readJournal } from '../../src/store/journal.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { defragsInLog, waitForDefragInProgress } from '../support/etcd-log.ts';
import { skipUnlessCI } from '../support/must-run.ts';
import { anyOf, assertNoDataLoss, changedPaths, etcdChurn, lostPaths, runnerChurn, snapshotTree } from '../support/nodata-loss.ts';
import { cli as runCli, type CliRun, isolatedEnv } from '../support/cli.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  // Every cleanup runs, and any failure fails the test: among them is the harness's teardown, whose "nothing may
  // be deleted" check must not be reduced to a log line.
  const errors: unknown[] = [];
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanups failed: ${errors.map((e) => (e as Error).message).join(' | ')}`);
});

/**
 * Freeze the victim while etcd's own log shows its defragmentation started and not finished, and return that log
 * state: the fault then lands mid-defrag, proven from the member's side, not only from the runner's journal.
 */
async function freezeMidDefrag(cluster: TestCluster, victim: string): Promise<ReturnType<typeof defragsInLog>> {
  const m = cluster.members.find((x) => x.name === victim)!;
  await waitForDefragInProgress(m.logFile);
  await cluster.kill(victim, 'SIGSTOP');
  return defragsInLog(m.logFile);
}

function runner(args: string[], timeoutMs = 150_000): CliRun {
  const env = isolatedEnv((k) => k.startsWith('ETCDCTL_') || k.startsWith('RUNBOOK_'));
  return runCli(args, { all: true, env, extendEnv: false, timeout: timeoutMs, stdin: 'ignore' });
}

function runDirOf(stateDir: string): string | undefined {
  const runs = existsSync(join(stateDir, 'runs')) ? readdirSync(join(stateDir, 'runs')) : [];
  return runs.length === 1 ? join(stateDir, 'runs', runs[0]!) : undefined;
}

function records(stateDir: string): JournalRecord[] {
  const dir = runDirOf(stateDir);
  if (!dir || !existsSync(join(dir, 'journal.jsonl'))) return [];
  return readJournal(join(dir, 'journal.jsonl')).records;
}

/** Poll the run's journal until a record matches (the runner is a separate process: this is how we see inside). */
async function waitForRecord(stateDir: string, match: (r: JournalRecord) => boolean, child: ResultPromise, timeoutMs = 60_000): Promise<JournalRecord> {
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(5)) {
    const hit = records(stateDir).find(match);
    if (hit) return hit;
    if (exited) break;
  }
  const r = await Promise.race([child, sleep(0).then(() => undefined)]);
  throw new Error(`no matching journal record within ${timeoutMs} ms${r ? `; the runner exited ${r.exitCode}:\n${r.all}` : ''}`);
}

const defragging = (r: JournalRecord) => r.type === 'step.log' && r.stepId === 'defrag' && /^defragmenting /.test(r.message) && r.item !== undefined;

function finished(stateDir: string): Extract<JournalRecord, { type: 'run.finished' }> | undefined {
  return records(stateDir).findLast((r): r is Extract<JournalRecord, { type: 'run.finished' }> => r.type === 'run.finished');
}

/** A copy of the built-in nospace-recovery with edits, in `dir`. */
function customRunbook(dir: string, name: string, edit: (text: string) => string): string {
  const text = readFileSync(join(ROOT, 'runbooks/nospace-recovery.yaml'), 'utf8');
  const out = edit(text);
  if (out === text) throw new Error(`customRunbook ${name}: the edit changed nothing (runbooks/nospace-recovery.yaml changed shape?)`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, out.replace(/^name: nospace-recovery$/m, `name: ${name}`));
  return file;
}

async function filledCluster(quotaBytes = 32 * MiB): Promise<TestCluster> {
  const cluster = await startCluster({ quotaBytes, name: 'faults' });
  cleanups.push(() => cluster.teardown());
  // 128 live keys of 128 KiB overwritten until NOSPACE: ~16 MiB to copy per defrag, the rest history.
  await cluster.fillToNospace({ valueBytes: 128 * 1024, keys: 128 });
  return cluster;
}

async function assertRecovered(cluster: TestCluster): Promise<void> {
  expect(await cluster.alarms()).toEqual([]);
  for (const m of cluster.members) expect((await cluster.status(m.name)).dbSize).toBeLessThan(cluster.quotaBytes * 0.95);
  const c = cluster.client();
  await c.put('faults/after').value('ok').exec();
  expect(await c.get('faults/after').string()).toBe('ok');
}

/** FAULTS_VERBOSE=1 prints what the runner printed (to read the messages an operator would see). */
function show(label: string, out: { all?: string }): void {
  if (process.env.FAULTS_VERBOSE) console.log(`---- ${label}\n${out.all}`);
}

/** The run failed and says so: exit 1, the step and the member named, how to resume; the alarm still armed. */
async function assertResumableFailure(_cluster: TestCluster, stateDir: string, out: { exitCode?: number; all?: string }, step: string, member: string | undefined): Promise<string> {
  show(`${step} failure`, out);
  const fin = finished(stateDir);
  expect(out.exitCode, out.all).toBe(1);
  expect(fin?.status, out.all).toBe('failed');
  expect(fin?.error?.stepId).toBe(step);
  if (member) {
    expect(fin?.error?.member, out.all).toBe(member);
    expect(out.all).toContain(member);
  }
  expect(out.all).toMatch(new RegExp(`failed at step "${step}"`));
  expect(out.all).toMatch(/resume with: runbook resume \S+/);
  expect(out.all, 'no stack trace').not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  return fin!.runId;
}

/** Not a silent success: the alarm the run was to remove is still there (ask once every member answers). */
async function assertStillNospace(cluster: TestCluster): Promise<void> {
  expect((await cluster.alarms()).map((a) => a.alarm)).toContain('NOSPACE');
}

function dataDirs(cluster: TestCluster): string[] {
  return cluster.members.map((m) => m.dataDir);
}

describe('fault injection during nospace-recovery (real etcd, real runner)', () => {
  it('the no-data-loss check itself: a deletion is caught, a move aside is not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-nodataloss-'));
    try {
      mkdirSync(join(dir, 'data/member/snap'), { recursive: true });
      writeFileSync(join(dir, 'data/member/snap/db'), 'x');
      writeFileSync(join(dir, 'journal.jsonl'), 'x');
      writeFileSync(join(dir, 'other'), 'x');
      const before = snapshotTree(dir);
      renameSync(join(dir, 'data'), join(dir, 'data.pre-restore-20261124-101010'));
      renameSync(join(dir, 'journal.jsonl'), join(dir, 'journal.jsonl.torn-1732440000000'));
      expect(lostPaths(before)).toEqual([]);
      rmSync(join(dir, 'other'));
      expect(lostPaths(before)).toEqual([join(dir, 'other')]);
      expect(() => assertNoDataLoss(before)).toThrow(/other/);

      // A file truncated or overwritten in place (same size) is caught too, also in its moved-aside copy.
      writeFileSync(join(dir, 'snap.db'), 'snapshot bytes');
      writeFileSync(join(dir, 'kept.db'), 'kept bytes');
      const recorded = snapshotTree(dir);
      writeFileSync(join(dir, 'snap.db'), 'snapshot');
      expect(changedPaths(recorded)).toEqual([`${join(dir, 'snap.db')}: 14 bytes before, 8 now`]);
      writeFileSync(join(dir, 'snap.db'), 'snapshot BYTES');
      expect(changedPaths(recorded)).toEqual([`${join(dir, 'snap.db')}: same size, content overwritten`]);
      renameSync(join(dir, 'snap.db'), join(dir, 'snap.db.pre-restore-20261124-101010'));
      expect(changedPaths(recorded)).toEqual([`${join(dir, 'snap.db')} (moved to ${join(dir, 'snap.db.pre-restore-20261124-101010')}): same size, content overwritten`]);
      expect(() => assertNoDataLoss(recorded)).toThrow(/1 file\(s\) changed in size or content/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a member killed mid-defrag: the run stops at that member, resumable; after a restart, resume recovers', { timeout: 240_000 }, async () => {
    const cluster = await filledCluster();
    const stateDir = join(cluster.dir, 'state');
    const before = snapshotTree(dataDirs(cluster), { ignore: etcdChurn });
    const child = runner(['run', 'nospace-recovery', '-i', cluster.writeInventory(), '--state-dir', stateDir]);
    const rec = await waitForRecord(stateDir, defragging, child);
    const victim = (rec as { item: string }).item;
    const atFault = await freezeMidDefrag(cluster, victim);
    expect(atFault, `${victim} was defragmenting when killed (its own log)`).toMatchObject({ inProgress: true, started: 1, finished: 0 });
    await cluster.kill(victim, 'SIGKILL');
    const out = await child;
    const runId = await assertResumableFailure(cluster, stateDir, out, 'defrag', victim);
    await assertStillNospace(cluster);

    await cluster.start(victim);
    await cluster.waitHealthy(30_000);
    const mid = snapshotTree([...dataDirs(cluster), stateDir], { ignore: anyOf(etcdChurn, runnerChurn) });
    const resumed = await runner(['resume', runId, '--state-dir', stateDir]);
    expect(resumed.exitCode, resumed.all).toBe(0);
    expect(finished(stateDir)?.status).toBe('succeeded');
    await assertRecovered(cluster);
    assertNoDataLoss(before, 'data dirs');
    assertNoDataLoss(mid, 'data dirs and run state across resume');
  });

  it('a member frozen (SIGSTOP) longer than the step timeout: timeout naming it, resumable; after SIGCONT, resume recovers', { timeout: 240_000 }, async () => {
    const cluster = await filledCluster();
    const stateDir = join(cluster.dir, 'state');
    const rb = customRunbook(cluster.dir, 'nospace-recovery-short-timeout', (t) => t.replace(/(- id: defrag\n(?:    .*\n)*?    timeout: )30m/, '$14s'));
    const before = snapshotTree(dataDirs(cluster), { ignore: etcdChurn });
    const child = runner(['run', rb, '-i', cluster.writeInventory(), '--state-dir', stateDir]);
    const rec = await waitForRecord(stateDir, defragging, child);
    const victim = (rec as { item: string }).item;
    let frozen = true;
    cleanups.push(async () => {
      if (frozen && cluster.pid(victim) !== undefined) await cluster.kill(victim, 'SIGCONT');
    });
    const atFault = await freezeMidDefrag(cluster, victim);
    expect(atFault, `${victim} was defragmenting when frozen (its own log)`).toMatchObject({ inProgress: true, started: 1, finished: 0 });
    const out = await child;
    const runId = await assertResumableFailure(cluster, stateDir, out, 'defrag', victim);
    expect(out.all).toMatch(/timed out|deadline|timeout/i);

    await cluster.kill(victim, 'SIGCONT');
    frozen = false;
    await cluster.waitHealthy(30_000);
    await assertStillNospace(cluster);
    const resumed = await runner(['resume', runId, '--state-dir', stateDir]);
    expect(resumed.exitCode, resumed.all).toBe(0);
    await assertRecovered(cluster);
    assertNoDataLoss(before, 'data dirs');
  });

  it('the disk-headroom check failing: refused before anything changes, naming the member; after space is freed, resume recovers', { timeout: 240_000 }, async (ctx) => {
    const cluster = await startCluster({ quotaBytes: 16 * MiB, name: 'faults', guardData: { off: 'swaps a data dir for a tmpfs mount by hand' } });
    cleanups.push(() => cluster.teardown());
    // A small filesystem under one member's data dir: a tmpfs (needs root and mount; skipped otherwise).
    const victim = cluster.members[1]!;
    await cluster.stop(victim.name);
    const copy = `${victim.dataDir}.copy`;
    renameSync(victim.dataDir, copy);
    mkdirSync(victim.dataDir);
    const mount = await execa('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', victim.dataDir], { reject: false });
    if (mount.exitCode !== 0) {
      rmSync(victim.dataDir, { recursive: true });
      renameSync(copy, victim.dataDir);
      skipUnlessCI(ctx, `cannot mount a tmpfs here (${mount.stderr.trim()}): the headroom fault needs a small filesystem (root and mount)`);
    }
    cleanups.push(async () => {
      if (cluster.pid(victim.name) !== undefined) await cluster.kill(victim.name, 'SIGKILL');
      await execa('umount', ['-l', victim.dataDir], { reject: false });
    });
    await execa('cp', ['-a', `${copy}/.`, victim.dataDir]);
    await cluster.start(victim.name);
    await cluster.waitHealthy(30_000);
    await cluster.fillToNospace({ valueBytes: 128 * 1024, keys: 32 });

    // etcd preallocates 2 × 64 MiB of WAL: ~100 MiB stay free on the tmpfs; 10 × a 16 MiB db does not fit.
    const rb = customRunbook(cluster.dir, 'nospace-recovery-headroom', (t) => t.replace(/(    action: etcd\.preflight\n(?:    .*\n)*?    with:\n)/, '$1      headroomFactor: 10\n'));
    const stateDir = join(cluster.dir, 'state');
    const before = snapshotTree(dataDirs(cluster), { ignore: etcdChurn });
    const revision = (await cluster.status(victim.name)).revision;
    const out = await runner(['run', rb, '-i', cluster.writeInventory(), '--state-dir', stateDir]);
    const runId = await assertResumableFailure(cluster, stateDir, out, 'preflight', victim.name);
    await assertStillNospace(cluster);
    expect(out.all).toMatch(/not enough free disk/);
    // refused before touching the cluster: no later step started, history not compacted
    expect(records(stateDir).filter((r) => r.type === 'step.started' && r.stepId !== 'preflight')).toEqual([]);
    const early = await cluster.client().get('runbook-test/fill/0').revision(2).exec().then(() => 'readable', (e: Error) => e.message);
    expect(early, 'history at revision 2 still readable: not compacted').toBe('readable');
    expect((await cluster.status(victim.name)).revision).toBe(revision);

    // the operator frees space on that filesystem, then resumes
    await execa('mount', ['-o', 'remount,size=2g', victim.dataDir]);
    const resumed = await runner(['resume', runId, '--state-dir', stateDir]);
    expect(resumed.exitCode, resumed.all).toBe(0);
    await assertRecovered(cluster);
    assertNoDataLoss(before, 'data dirs');
  });

  it("the state dir turning read-only mid-run: the run stops cleanly and says why; once writable, resume recovers", { timeout: 240_000 }, async (ctx) => {
    // As root, chmod does not stop writes and a read-only remount is refused while the journal is open for
    // writing. chattr +i (immutable) does stop root: writes through the runner's already-open journal fd fail with
    // EPERM, as do creating and renaming files in the run dir — what a filesystem that went read-only (EROFS) or
    // a full disk (ENOSPC) does to the runner. Needs chattr and a filesystem that supports it (ext4, xfs, btrfs).
    const cluster = await filledCluster();
    const stateDir = join(cluster.dir, 'state');
    mkdirSync(stateDir);
    const probe = join(stateDir, 'probe');
    writeFileSync(probe, '');
    const ch = await execa('chattr', ['+i', probe], { reject: false });
    await execa('chattr', ['-i', probe], { reject: false });
    rmSync(probe, { force: true });
    if (ch.exitCode !== 0) skipUnlessCI(ctx, `chattr +i does not work here (${ch.stderr.trim()}): the read-only state dir fault needs it (root, ext4/xfs/btrfs)`);
    cleanups.push(async () => {
      await execa('chattr', ['-R', '-i', stateDir], { reject: false });
    });

    const before = snapshotTree(dataDirs(cluster), { ignore: etcdChurn });
    const child = runner(['run', 'nospace-recovery', '-i', cluster.writeInventory(), '--state-dir', stateDir]);
    await waitForRecord(stateDir, (r) => r.type === 'step.succeeded' && r.stepId === 'defrag', child);
    await execa('chattr', ['-R', '+i', stateDir]);
    const out = await child;
    show('state dir read-only', out);
    const journalAtFailure = readFileSync(join(runDirOf(stateDir)!, 'journal.jsonl'), 'utf8');
    await execa('chattr', ['-R', '-i', stateDir]);

    // A clear failure: not 0 (nothing after this point could be recorded, so nothing may claim success), a message
    // that says the state could not be written, no stack trace; the cluster was left mid-recovery, alarm armed.
    expect(out.exitCode, out.all).not.toBe(0);
    expect(out.exitCode, out.all).not.toBe(null);
    expect(out.all).toMatch(/EPERM|read-only|not permitted|cannot write|journal/i);
    expect(out.all, 'no stack trace').not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(journalAtFailure).not.toMatch(/"type":"run\.finished","status":"succeeded"/);
    expect((await cluster.alarms()).map((a) => a.alarm)).toContain('NOSPACE');

    const runId = records(stateDir)[0]!.runId;
    const mid = snapshotTree([...dataDirs(cluster), stateDir], { ignore: anyOf(etcdChurn, runnerChurn) });
    const resumed = await runner(['resume', runId, '--state-dir', stateDir]);
    expect(resumed.exitCode, resumed.all).toBe(0);
    await assertRecovered(cluster);
    assertNoDataLoss(before, 'data dirs');
    assertNoDataLoss(mid, 'data dirs and run state across resume');
  });
});
