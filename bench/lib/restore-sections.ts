/**
 * The restore and replacement benchmarks (issue 20): on identical damaged clusters (bench/lib/data-cluster.ts),
 * (a) the hand recipe as a plain etcdctl/etcdutl script against (b) `runbook run … --yes` (the real CLI as a child
 * process, cold start included), trial pairs in alternating order, medians over the trials.
 *
 *   power-loss-restore: every member SIGKILLed with its db's first 16 KiB zeroed; (a) bench/restore-recipe.sh.
 *   member-replacement: one member SIGKILLed with its db zeroed the same way; (a) bench/replace-recipe.sh.
 *
 * Time to writable: (a) spawn → its test put returned; (b) spawn → the runbook's own proof that the cluster takes
 * writes again (its verify-writes step; before that step existed, verify-cluster). The runbook's later steps (the
 * fresh or pre-change snapshot) are reported separately, with the wall time. Physical floor: one copy of the
 * snapshot per member (what a restore must write), or one for the replacement (what the leader must send it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JournalRecord } from '../../src/events/types.ts';
import type { DataCluster } from './data-cluster.ts';
import { median, ms } from './report.ts';
import { breakdown, onlyRunDir, runCli, type RunBreakdown } from './runbook-cli.ts';
import { runScript, type ScriptResult } from './script.ts';

export interface PairTrial {
  rep: number;
  order: string;
  recipe: { wallMs: number; writableMs: number; phases: { name: string; ms: number }[] };
  runbook: { wallMs: number; writableMs: number; coldStartMs: number; steps: { label: string; ms: number }[]; betweenStepsMs: number; shutdownMs: number };
  /** runbook / recipe, time to writable */
  ratio: number;
  wallRatio: number;
}

const WRITABLE_STEPS = ['verify-writes', 'verify-cluster'];

function writableOf(bd: RunBreakdown, startedAt: number): number {
  for (const id of WRITABLE_STEPS) {
    const r = bd.records.find((x: JournalRecord) => x.type === 'step.succeeded' && x.stepId === id);
    if (r) return Date.parse(r.ts) - startedAt;
  }
  throw new Error(`run ${bd.runId}: no ${WRITABLE_STEPS.join('/')} step succeeded`);
}

async function runbookTrial(dc: DataCluster, runbook: string, tag: string, params: string[]): Promise<PairTrial['runbook']> {
  const stateDir = mkdtempSync(join(dc.cluster.dir, `state-${tag}-`));
  const inventory = dc.cluster.writeInventory(join(stateDir, 'cluster.yaml'));
  const child = await runCli(['run', runbook, '-i', inventory, '--state-dir', stateDir, '--yes', ...params]);
  if (child.exitCode !== 0) throw new Error(`runbook run ${runbook} exited ${child.exitCode}:\n${child.stdout.slice(-3000)}\n${child.stderr.slice(-2000)}`);
  const bd = breakdown(child, onlyRunDir(stateDir));
  const out = {
    wallMs: child.wallMs,
    writableMs: writableOf(bd, child.startedAt),
    coldStartMs: bd.coldStartMs,
    steps: bd.steps.map((s) => ({ label: s.label, ms: s.ms })),
    betweenStepsMs: bd.betweenStepsMs,
    shutdownMs: bd.shutdownMs,
  };
  rmSync(stateDir, { recursive: true, force: true });
  return out;
}

function recipeOut(r: ScriptResult): PairTrial['recipe'] {
  const w = r.at('put');
  if (w === undefined) throw new Error('recipe printed no put mark');
  return { wallMs: r.wallMs, writableMs: w, phases: r.phases };
}

/** Copy a file n times with fsync: the bytes a restore (n members) or a catch-up (1) must write, at disk speed. */
export function copyFloor(file: string, dir: string, n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const dst = join(dir, `floor-${i}.db`);
    const t0 = performance.now();
    execFileSync('dd', [`if=${file}`, `of=${dst}`, 'bs=4M', 'conv=fsync', 'status=none']);
    total += performance.now() - t0;
    rmSync(dst, { force: true });
  }
  return total;
}

function summarize(kind: string, sizeMiB: number, dc: DataCluster, trials: PairTrial[], floorMs: number): Record<string, unknown> {
  const med = (f: (t: PairTrial) => number) => median(trials.map(f));
  const stepLabels = [...new Set(trials.flatMap((t) => t.runbook.steps.map((s) => s.label.replace(/\[.*\]$/, ''))))];
  const phaseNames = [...new Set(trials.flatMap((t) => t.recipe.phases.map((p) => p.name)))];
  return {
    kind,
    sizeMiB,
    snapshotBytes: dc.snapshotBytes,
    reps: trials.length,
    recipeWritableMs: med((t) => t.recipe.writableMs),
    runbookWritableMs: med((t) => t.runbook.writableMs),
    ratio: med((t) => t.ratio),
    ratios: trials.map((t) => Math.round(t.ratio * 100) / 100),
    recipeWallMs: med((t) => t.recipe.wallMs),
    runbookWallMs: med((t) => t.runbook.wallMs),
    wallRatio: med((t) => t.wallRatio),
    wallRatios: trials.map((t) => Math.round(t.wallRatio * 100) / 100),
    floorMs,
    runbookParts: {
      coldStart: med((t) => t.runbook.coldStartMs),
      ...Object.fromEntries(stepLabels.map((l) => [l, med((t) => t.runbook.steps.filter((s) => s.label === l || s.label.startsWith(`${l}[`)).reduce((a, s) => a + s.ms, 0))])),
      betweenSteps: med((t) => t.runbook.betweenStepsMs),
      shutdown: med((t) => t.runbook.shutdownMs),
    },
    recipeParts: Object.fromEntries(phaseNames.map((n) => [n, med((t) => t.recipe.phases.find((p) => p.name === n)?.ms ?? 0)])),
    trials,
  };
}

type Log = (s: string) => void;

async function pairs(
  kind: string,
  dc: DataCluster,
  sizeMiB: number,
  reps: number,
  log: Log,
  fault: () => Promise<void>,
  recipe: () => Promise<ScriptResult>,
  runbook: (tag: string) => Promise<PairTrial['runbook']>,
  check: (what: string) => Promise<void>,
): Promise<PairTrial[]> {
  const trials: PairTrial[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
    let a: PairTrial['recipe'] | undefined;
    let b: PairTrial['runbook'] | undefined;
    for (const v of order) {
      await dc.reset();
      await fault();
      if (v === 'a') {
        a = recipeOut(await recipe());
        await check(`${kind} recipe ${sizeMiB} MiB rep ${rep}`);
        log(`${kind} ${sizeMiB} MiB rep ${rep + 1}/${reps} recipe  writable ${ms(a.writableMs)} (wall ${ms(a.wallMs)})`);
      } else {
        b = await runbook(`${kind}-${rep}`);
        await check(`${kind} runbook ${sizeMiB} MiB rep ${rep}`);
        log(`${kind} ${sizeMiB} MiB rep ${rep + 1}/${reps} runbook writable ${ms(b.writableMs)} (wall ${ms(b.wallMs)})`);
      }
    }
    trials.push({ rep, order: order.join(''), recipe: a!, runbook: b!, ratio: b!.writableMs / a!.writableMs, wallRatio: b!.wallMs / a!.wallMs });
  }
  return trials;
}

/** Every member answers with the snapshot's keys and takes a write. */
async function checkData(dc: DataCluster, what: string): Promise<void> {
  await dc.cluster.waitHealthy(60_000, { members: dc.cluster.members.map((m) => m.name) });
  for (const m of dc.cluster.members) {
    const c = dc.cluster.client(m.name);
    try {
      const n = await c.getAll().prefix('bench/data/').count();
      const want = Math.ceil(dc.sizeBytes / (64 * 1024));
      if (n !== want) throw new Error(`${what}: ${m.name} has ${n} data keys, expected ${want}`);
    } finally {
      c.close();
    }
  }
}

export async function powerLossBench(dc: DataCluster, sizeMiB: number, reps: number, log: Log): Promise<Record<string, unknown>> {
  const c = dc.cluster;
  const initialCluster = c.members.map((m) => `${m.name}=${m.peerURL}`).join(',');
  let n = 0;
  const trials = await pairs(
    'power-loss-restore', dc, sizeMiB, reps, log,
    () => dc.powerLoss(),
    () => runScript('bench/restore-recipe.sh', [dc.snapshot, `recipe-${n++}`, initialCluster, c.endpoints.join(','),
      ...c.members.map((m) => [m.name, m.peerURL, m.dataDir, dc.argvFile(m.name), m.pidFile, m.logFile].join('='))], c.tls),
    (tag) => runbookTrial(dc, 'power-loss-restore', tag, []),
    (what) => checkData(dc, what),
  );
  const floorMs = copyFloor(dc.snapshot, c.dir, c.members.length);
  return summarize('power-loss-restore', sizeMiB, dc, trials, floorMs);
}

export async function replacementBench(dc: DataCluster, sizeMiB: number, reps: number, log: Log): Promise<Record<string, unknown>> {
  const c = dc.cluster;
  const victim = c.members.at(-1)!;
  const trials = await pairs(
    'member-replacement', dc, sizeMiB, reps, log,
    // A member dies in a cluster that has been up for a while: etcd's strict reconfiguration check refuses a
    // `member add` until the voters have been connected for 5 s, a wait that only a just-started cluster has.
    async () => {
      await sleep(6000);
      await dc.killOne(victim.name);
    },
    () => runScript('bench/replace-recipe.sh', [victim.name, victim.peerURL, victim.dataDir, dc.argvFile(victim.name), victim.pidFile, victim.logFile, c.endpoints.join(',')], c.tls),
    (tag) => runbookTrial(dc, 'member-replacement', tag, ['-p', `member=${victim.name}`]),
    (what) => checkData(dc, what),
  );
  const floorMs = copyFloor(dc.snapshot, c.dir, 1);
  return summarize('member-replacement', sizeMiB, dc, trials, floorMs);
}
