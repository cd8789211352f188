/**
 * Human-readable progress: one line per thing that happened, with durations, per step and per member.
 * Colours only on a TTY (and not with NO_COLOR). Secrets never reach events, so nothing is filtered here.
 */
import { unhandled, type JournalRecord } from './types.ts';
import type { RunReport } from '../execute/report.ts';
import { formatBytes, formatDuration } from '../util/units.ts';

export interface TerminalOptions {
  color: boolean;
  verbose?: boolean;
  /** A plan: nothing to resume. */
  dryRun?: boolean;
}

export function colors(enabled: boolean) {
  const wrap = (code: number) => (s: string) => (enabled ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { green: wrap(32), red: wrap(31), yellow: wrap(33), dim: wrap(2), bold: wrap(1), cyan: wrap(36) };
}

function who(rec: { stepId: string; item?: string }): string {
  return rec.item ? `${rec.stepId} [${rec.item}]` : rec.stepId;
}

function summarizeOutput(output: unknown): string {
  if (output === undefined || output === null) return '';
  if (typeof output !== 'object') return String(output);
  const o = output as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof o.revision === 'number') parts.push(`revision ${o.revision}`);
  if (typeof o.reclaimedBytes === 'number') parts.push(`reclaimed ${formatBytes(o.reclaimedBytes)}`);
  if (o.skipped === true) parts.push('nothing to gain');
  if (typeof o.leaderMovedTo === 'string') parts.push(`leader moved to ${o.leaderMovedTo}`);
  if (typeof o.path === 'string') parts.push(String(o.path));
  if (typeof o.recovered === 'boolean') parts.push(o.recovered ? 'recovered' : 'did not recover');
  if (typeof o.summary === 'string') parts.push(o.summary);
  return parts.join(', ');
}

export function formatRecord(rec: JournalRecord, opts: TerminalOptions): string | undefined {
  const c = colors(opts.color);
  switch (rec.type) {
    case 'run.started':
      return `${c.bold(`▶ ${rec.runbook}`)} ${c.dim(`run ${rec.runId}${rec.dryRun ? ' (dry run: nothing will be changed)' : ''}`)}\n  cluster ${rec.inventory.name}: ${rec.inventory.members.join(', ')}`;
    case 'run.resumed':
      return `${c.bold('▶ resumed')} ${c.dim(`run ${rec.runId}`)}${rec.note ? `\n  ${rec.note}` : ''}`;
    case 'cluster.identity': {
      const id = rec.identity;
      const what = id.clusterId
        ? `cluster id ${id.clusterId}; members ${id.members.map((m) => `${m.name || '(unstarted)'} ${m.id}${m.version ? ` v${m.version}` : ''}`).join(', ')}`
        : `no member answers yet; peer URLs ${id.peerURLs.join(', ')}`;
      const why = rec.reason === 'restore' ? `restore replaces cluster id ${rec.previousClusterId ?? '?'}; the new id is pinned once the members answer`
        : rec.reason === 'after-restore' ? `new identity after the restore (was ${rec.previousClusterId ?? '?'})` : 'pinned';
      return c.dim(`  identity (${why}): ${rec.reason === 'restore' ? `was ${rec.previousClusterId ?? '?'}` : what}`);
    }
    case 'step.skipped':
      return `${c.dim(`- ${rec.stepId}: skipped (${rec.reason})`)}`;
    case 'step.items':
      return `${c.dim(`  ${rec.stepId}: ${rec.items.length} item(s) ${rec.parallel ? `at once: ${rec.items.join(', ')}` : `in order: ${rec.items.join(' → ')}`}`)}`;
    case 'step.started':
      return `${c.cyan('…')} ${who(rec)}${rec.attempt > 1 ? c.yellow(` (attempt ${rec.attempt})`) : ''}`;
    case 'step.probe':
      if (!rec.done && !opts.verbose && !rec.inDoubt) return undefined;
      return `${c.dim(`  ${who(rec)}: ${rec.inDoubt ? 'was interrupted; probe: ' : 'probe: '}${rec.done ? 'effect already there' : 'not done yet'}${rec.detail ? ` (${rec.detail})` : ''}`)}`;
    case 'step.log':
      return `${c.dim(`  ${who(rec)}: ${rec.message}`)}`;
    case 'step.plan':
      return `${c.yellow('~')} ${who(rec)}: ${rec.plan}`;
    case 'step.succeeded': {
      if (rec.output && typeof rec.output === 'object' && (rec.output as { dryRun?: boolean }).dryRun) return undefined;
      const s = summarizeOutput(rec.output);
      const via = rec.via === 'probe' ? ' (already done)' : '';
      return `${c.green('✓')} ${who(rec)}${via} ${c.dim(formatDuration(rec.durationMs))}${s ? ` ${s}` : ''}`;
    }
    case 'step.failed':
      return `${c.red('✗')} ${who(rec)} ${c.dim(`attempt ${rec.attempt}, ${formatDuration(rec.durationMs)}`)}: ${rec.error.message}${rec.error.member ? ` (member ${rec.error.member})` : ''}${rec.willRetry ? c.yellow(` — retrying in ${formatDuration(rec.retryInMs ?? 0)}`) : ''}`;
    case 'approval.requested':
      return `${c.yellow('?')} ${rec.stepId}: waiting for approval${rec.message ? ` — ${rec.message}` : ''}\n  approve: runbook approve ${rec.runId} ${rec.stepId}    deny: runbook deny ${rec.runId} ${rec.stepId}`;
    case 'approval.granted':
      return `${c.green('✓')} ${rec.stepId}: approved by ${rec.by} (${rec.via})`;
    case 'approval.denied':
      return `${c.red('✗')} ${rec.stepId}: denied by ${rec.by} (${rec.via})${rec.reason ? `: ${rec.reason}` : ''}`;
    case 'run.interrupted':
      return c.yellow(`■ interrupted (${rec.signal})`);
    case 'run.finished': {
      const lines: string[] = [];
      // Paused at an approval: the CLI prints what to type next; the report would only repeat the steps so far.
      if (rec.status === 'awaiting-approval') return c.yellow(`■ run ${rec.runId} stopped at the approval of step "${rec.error?.stepId ?? '?'}" after ${formatDuration(rec.durationMs)} (resumable)`);
      const status = rec.status === 'succeeded' ? c.green('succeeded') : c.red(rec.status);
      lines.push(`${c.bold('■')} run ${rec.runId} ${status} in ${formatDuration(rec.durationMs)}`);
      if (rec.report) lines.push(formatReport(rec.report as RunReport, opts));
      if (rec.error) {
        lines.push(c.red(`  failed at step "${rec.error.stepId ?? '?'}"${rec.error.member ? ` on member ${rec.error.member}` : ''}: ${rec.error.message}`));
        if (rec.error.hint) lines.push(`  ${rec.error.hint}`);
      }
      if ((rec.status === 'failed' || rec.status === 'cancelled') && !opts.dryRun) lines.push(`  resume with: runbook resume ${rec.runId}`);
      return lines.join('\n');
    }
    case 'step.finished':
      return undefined; // its step.succeeded / step.failed line said it, with the duration
    default:
      return unhandled(rec);
  }
}

export function formatReport(report: RunReport, opts: TerminalOptions): string {
  const c = colors(opts.color);
  const lines: string[] = [];
  const rows = report.steps.map((s) => [s.id, s.status, s.durationMs !== undefined ? formatDuration(s.durationMs) : '', s.note ?? '']);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 4));
  lines.push(c.dim(`  ${'step'.padEnd(w[0]!)}  ${'status'.padEnd(w[1]!)}  ${'time'.padStart(w[2]!)}`));
  for (const r of rows) lines.push(`  ${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padStart(w[2]!)}  ${c.dim(r[3]!)}`);
  if (report.space?.length) {
    lines.push(c.dim('  member            db before → after        in use     reclaimed   fragmentation'));
    for (const m of report.space) {
      lines.push(
        `  ${m.member.padEnd(16)}  ${formatBytes(m.dbSizeBefore).padStart(9)} → ${formatBytes(m.dbSizeAfter).padEnd(9)}  ${formatBytes(m.inUseAfter).padStart(9)}  ${formatBytes(m.reclaimedBytes).padStart(10)}   ${(m.fragmentationBefore * 100).toFixed(0)}% → ${(m.fragmentationAfter * 100).toFixed(0)}%${m.skipped ? ' (skipped: nothing to gain)' : ''}`,
      );
    }
  }
  if (report.timeToWritableMs !== undefined) {
    const after = report.afterWritable ? `; then ${formatDuration(report.afterWritable.ms)} for ${report.afterWritable.steps.join(', ')}` : '';
    lines.push(`  writable again after ${formatDuration(report.timeToWritableMs)}${after}`);
  }
  return lines.join('\n');
}
