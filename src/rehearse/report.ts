/** The rehearsal report: what was broken, how the run went step by step, and the independent checks. */
import { colors, formatReport } from '../events/terminal.ts';
import type { MemberSpace, RunReport } from '../execute/report.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import type { FaultName } from './faults.ts';
import type { Check } from './verify.ts';

export interface RehearsalReport {
  runbook: string;
  runbookFile: string;
  fault: FaultName;
  /** What the fault injection did, for humans. */
  faultSummary?: string;
  passed: boolean;
  /** Interrupted by SIGINT/SIGTERM (the sandbox was torn down all the same). */
  interrupted?: string;
  /** Why the rehearsal itself could not go on (the cluster did not start, the fault could not be injected). */
  error?: string;
  cluster: {
    members: number;
    quotaBytes: number;
    dir: string;
    /** `--keep`: left running; the inventory and the pids to stop. */
    kept?: { inventory: string; pids: number[] };
    fromSnapshot?: string;
    /** The etcd release the members ran (what each reported, checked at start) and where its binaries are. */
    etcdVersion?: string;
    etcdBinDir?: string;
  };
  /** What the operator should know about how the rehearsal differed from a real run. */
  notes?: string[];
  run?: {
    runId: string;
    dir: string;
    status: string;
    durationMs: number;
    error?: { stepId?: string; kind: string; message: string; member?: string; hint?: string };
  };
  steps: RunReport['steps'];
  /** From the start of the run until the cluster took writes again. */
  timeToWritableMs?: number;
  /** How timeToWritableMs was measured: the runbook's first successful write probe or disarm, or the end of the run. */
  timeToWritableFrom?: 'write probe' | 'end of run';
  /** Bytes the defragmentations gave back, summed over members (else db sizes after the fault minus after the run). */
  reclaimedBytes?: number;
  space?: MemberSpace[];
  checks: Check[];
  phases: { phase: string; durationMs: number }[];
  totalMs: number;
}

/** The report as the terminal shows it after the run's own progress lines. */
export function formatRehearsal(r: RehearsalReport, opts: { color: boolean }): string {
  const c = colors(opts.color);
  const lines: string[] = [];
  const verdict = r.interrupted ? c.yellow(`INTERRUPTED (${r.interrupted})`) : r.passed ? c.green('PASSED') : c.red('FAILED');
  lines.push(`${c.bold('■')} rehearsal of ${r.runbook} (fault: ${r.fault}${r.cluster.etcdVersion ? `, etcd ${r.cluster.etcdVersion}` : ''}): ${verdict} in ${formatDuration(r.totalMs)}`);
  for (const n of r.notes ?? []) lines.push(c.yellow(`  note: ${n}`));
  if (r.error) lines.push(c.red(`  ${r.error}`));
  if (r.run?.error && !r.interrupted) {
    const e = r.run.error;
    lines.push(c.red(`  the run failed at step "${e.stepId ?? '?'}"${e.member ? ` on member ${e.member}` : ''}: ${e.message}`));
  }
  if (r.steps.length) {
    // The run's step and space tables; time to writable is printed below with how it was measured.
    lines.push(formatReport({ steps: r.steps, ...(r.space ? { space: r.space } : {}) }, { color: opts.color }));
  }
  if (r.checks.length) {
    lines.push(c.dim('  checks (the rehearsal\'s own, independent of the runbook\'s verify steps)'));
    for (const ch of r.checks) lines.push(`  ${ch.ok ? c.green('✓') : c.red('✗')} ${ch.name}: ${c.dim(ch.detail)}`);
  }
  const facts: string[] = [];
  if (r.timeToWritableMs !== undefined) facts.push(`writable again after ${formatDuration(r.timeToWritableMs)}${r.timeToWritableFrom === 'end of run' ? ' (at the end of the run)' : ''}`);
  if (r.reclaimedBytes !== undefined) facts.push(`${formatBytes(r.reclaimedBytes)} reclaimed`);
  if (facts.length) lines.push(`  ${facts.join(' · ')}`);
  lines.push(c.dim(`  ${r.phases.map((p) => `${p.phase} ${formatDuration(p.durationMs)}`).join(' · ')}`));
  if (r.run) lines.push(c.dim(`  journal: ${r.run.dir}`));
  if (r.cluster.kept) {
    lines.push(`  cluster kept running: runbook diagnose -i ${r.cluster.kept.inventory}`);
    lines.push(`  stop it with: kill ${r.cluster.kept.pids.join(' ')}; then remove ${r.cluster.dir}`);
  }
  return lines.join('\n');
}
