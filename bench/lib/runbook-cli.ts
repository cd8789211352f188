/**
 * Run the real CLI (`node bin/runbook.js run …`) as a child process, the way an operator would, and take the run
 * apart afterwards from its journal: cold start (spawn → run.started), each step, the time between steps
 * (engine), shutdown (run.finished → exit), time until writable (disarm succeeded), peak RSS.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { JournalRecord } from '../../src/events/types.ts';
import { readJournal } from '../../src/store/journal.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/runbook.js');
const RSS_PROBE = join(ROOT, 'bench/lib/rss-probe.ts');

/** Wall-clock milliseconds since the epoch, sub-millisecond resolution. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface ChildResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  startedAt: number;
  endedAt: number;
  wallMs: number;
  /** Peak resident set of the child (KiB), when measured. */
  maxRssKiB?: number;
}

/** Spawn `node [--import rss-probe] bin/runbook.js …args`. */
export function runCli(args: string[], opts: { rssFile?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ChildResult> {
  const nodeArgs = [...(opts.rssFile ? ['--import', RSS_PROBE] : []), BIN, ...args];
  const env: Record<string, string> = { ...(process.env as Record<string, string>), NO_COLOR: '1', ...(opts.env ?? {}) };
  for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') || k === 'RUNBOOK_INVENTORY') delete env[k];
  if (opts.rssFile) env.BENCH_RSS_FILE = opts.rssFile;
  return new Promise((resolvePromise) => {
    const startedAt = nowMs();
    execFile(process.execPath, nodeArgs, { env, timeout: opts.timeoutMs ?? 30 * 60_000, maxBuffer: 64 * 1024 * 1024, cwd: ROOT }, (err, stdout, stderr) => {
      const endedAt = nowMs();
      const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
      const result: ChildResult = {
        exitCode: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr,
        startedAt,
        endedAt,
        wallMs: endedAt - startedAt,
      };
      if (opts.rssFile && existsSync(opts.rssFile)) result.maxRssKiB = Number(readFileSync(opts.rssFile, 'utf8').trim());
      resolvePromise(result);
    });
  });
}

export interface StepTiming {
  /** step id, or step[item] for forEach items */
  label: string;
  /** First record of the step (or item) → its last record. */
  ms: number;
  /** The part spent in the action's run (step.started → step.succeeded), summed over attempts. */
  runMs: number;
  /** Probe before the run (previous record → step.probe). */
  probeMs: number;
  /** Gate after the item (step.succeeded → "gate … passed"). */
  gateMs: number;
}

export interface RunBreakdown {
  runId: string;
  status: string;
  records: JournalRecord[];
  /** spawn → run.started */
  coldStartMs: number;
  /** run.started → run.finished */
  runMs: number;
  /** run.finished → process exit */
  shutdownMs: number;
  /** spawn → disarm step succeeded (the cluster accepts writes) */
  writableMs: number | undefined;
  steps: StepTiming[];
  /** Time between records that belongs to no step (engine transitions, skipped steps). */
  betweenStepsMs: number;
  /** Per-member defragment RPC times (from the defrag outputs), in run order. */
  defragRpcMs: { member: string; ms: number; leaderMovedTo?: string }[];
}

const ts = (r: JournalRecord) => Date.parse(r.ts);

/** The only run under `<stateDir>/runs`. */
export function onlyRunDir(stateDir: string): string {
  const runs = readdirSync(join(stateDir, 'runs'));
  if (runs.length !== 1) throw new Error(`expected one run in ${stateDir}, found ${runs.length}`);
  return join(stateDir, 'runs', runs[0]!);
}

export function breakdown(child: ChildResult, runDirPath: string): RunBreakdown {
  const records = readJournal(join(runDirPath, 'journal.jsonl')).records;
  const started = records.find((r) => r.type === 'run.started');
  const finished = records.findLast((r) => r.type === 'run.finished');
  if (!started || !finished || finished.type !== 'run.finished') throw new Error(`incomplete journal in ${runDirPath}`);
  const steps = new Map<string, StepTiming>();
  const key = (r: JournalRecord) => ('stepId' in r ? ('item' in r && r.item ? `${r.stepId}[${r.item}]` : r.stepId) : undefined);
  let attributed = 0;
  let lastStart: number | undefined;
  // Each gap between two records is charged to the step (or item) of the later record.
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    const gap = ts(r) - ts(records[i - 1]!);
    const k = key(r);
    if (!k || r.type === 'step.skipped' || r.type === 'step.items') continue;
    let st = steps.get(k);
    if (!st) steps.set(k, (st = { label: k, ms: 0, runMs: 0, probeMs: 0, gateMs: 0 }));
    st.ms += gap;
    attributed += gap;
    if (r.type === 'step.probe') st.probeMs += gap;
    if (r.type === 'step.started') lastStart = ts(r);
    if ((r.type === 'step.succeeded' || r.type === 'step.failed') && lastStart !== undefined) {
      st.runMs += ts(r) - lastStart;
      lastStart = undefined;
    }
    if (r.type === 'step.log' && /^gate .* passed$/.test(r.message)) st.gateMs += gap;
  }
  const total = ts(finished) - ts(started);
  const disarm = records.find((r) => r.type === 'step.succeeded' && r.stepId === 'disarm');
  const defragRpcMs = records.flatMap((r) => {
    if (r.type !== 'step.succeeded' || r.stepId !== 'defrag' || !r.output) return [];
    const o = r.output as { member?: string; durationMs?: number; leaderMovedTo?: string };
    return o.durationMs === undefined ? [] : [{ member: o.member ?? r.item ?? '?', ms: o.durationMs, ...(o.leaderMovedTo ? { leaderMovedTo: o.leaderMovedTo } : {}) }];
  });
  return {
    runId: started.runId,
    status: finished.status,
    records,
    coldStartMs: ts(started) - child.startedAt,
    runMs: total,
    shutdownMs: child.endedAt - ts(finished),
    writableMs: disarm ? ts(disarm) - child.startedAt : undefined,
    steps: [...steps.values()],
    betweenStepsMs: total - attributed,
    defragRpcMs,
  };
}
