/**
 * What a guard says: one event per decision, finding or run, as data. The terminal, --json, the audit log and chat
 * are formatters over these (like RunEvent for runs).
 */
import type { JournalRecord } from '../events/types.ts';
import type { GuardFinding } from './findings.ts';

export type GuardEvent =
  | { type: 'guard.started'; cluster: string; intervalMs: number; cooldownMs: number; rules: { name: string; expr: string }[]; runbook: string }
  | { type: 'guard.poll'; cluster: string; summary: string; reachable: number; members: number }
  | { type: 'guard.rule'; cluster: string; rule: string; holds: boolean; error?: string }
  | { type: 'guard.decision'; cluster: string; decision: 'started' | 'resumed' | 'skipped-cooldown' | 'skipped-lock' | 'skipped-hysteresis' | 'skipped-running' | 'refused'; rules: string[]; message: string; runId?: string }
  | { type: 'guard.run'; cluster: string; runId: string; record: JournalRecord }
  | { type: 'guard.run-ended'; cluster: string; runId: string; status: string; message: string }
  | { type: 'guard.finding'; cluster: string; finding: GuardFinding; state: 'raised' | 'cleared' }
  | { type: 'guard.stopped'; cluster: string; reason: string };

/** A line for a terminal; undefined for events only --json shows (every poll, every rule evaluation, run records). */
export function formatGuardEvent(e: GuardEvent): string | undefined {
  const at = `[${e.cluster}]`;
  switch (e.type) {
    case 'guard.started':
      return `${at} guard started: every ${e.intervalMs / 1000}s, cooldown ${Math.round(e.cooldownMs / 1000)}s, runbook ${e.runbook}; rules: ${e.rules.map((r) => `${r.name} (${r.expr})`).join('; ')}`;
    case 'guard.poll':
    case 'guard.rule':
      return e.type === 'guard.rule' && e.error ? `${at} rule ${e.rule} could not be evaluated: ${e.error}` : undefined;
    case 'guard.decision':
      return `${at} ${e.message}`;
    case 'guard.run': {
      const r = e.record;
      if (r.type === 'approval.requested') return `${at} run ${e.runId} waits for approval of step "${r.stepId}": runbook approve ${e.runId} ${r.stepId}`;
      if (r.type === 'step.failed') return `${at} run ${e.runId}: step ${r.stepId}${r.item ? ` (${r.item})` : ''} failed: ${r.error.message}${r.willRetry ? ' (retrying)' : ''}`;
      return undefined;
    }
    case 'guard.run-ended':
      return `${at} ${e.message}`;
    case 'guard.finding':
      return e.state === 'raised' ? `${at} ${e.finding.severity}: ${e.finding.message}` : `${at} cleared: ${e.finding.code}${e.finding.member ? ` (${e.finding.member})` : ''}`;
    case 'guard.stopped':
      return `${at} guard stopped: ${e.reason}`;
  }
}
