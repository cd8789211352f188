/**
 * Which steps of a run started from chat or an alert wait for a human (the executor's `extraApprovals`), and which
 * of those the first human approval covers:
 * - `approval: required` steps always wait for a human, each on its own.
 * - A `destructive: true` runbook: every mutating step waits for its own approval.
 * - Any other runbook: the first mutating step that actually runs waits; that approval covers the run's later
 *   mutating steps (they are recorded as approved by the same person, "covered by" the first). Read-only steps
 *   (preflight) run before the pause, so the approver sees what they found.
 * - No extra gate when the runbook is `autoApprove: true` (never together with destructive) AND its config entry
 *   says `autoRun: true`.
 * Coverage is read back from the journal (`coveringApproval`) when a run is resumed, so it survives restarts and
 * takeovers.
 */
import { catalog } from '../authoring.ts';
import type { JournalRecord } from '../common.ts';
import type { Runbook } from '../authoring.ts';
import type { RunbookAccess } from './config.ts';

export interface Gates {
  /** Steps that wait for approval besides those marked `approval: required`. */
  extra: string[];
  /** Of those, the ones the first human approval covers. */
  coverable: Set<string>;
}

export function gatesFor(runbook: Runbook, access: RunbookAccess | undefined): Gates {
  if (runbook.autoApprove && !runbook.destructive && access?.autoRun) return { extra: [], coverable: new Set() };
  const mutating = runbook.steps.filter((s) => (catalog as Record<string, { mutates?: boolean }>)[s.action]?.mutates !== false && s.approval !== 'required' && s.action !== 'approve');
  const extra = mutating.map((s) => s.id);
  return { extra, coverable: runbook.destructive ? new Set() : new Set(extra) };
}

/** The `via` of a grant made by coverage (and how coverage grants are told apart from human ones). */
export function coveredVia(stepId: string): string {
  return `covered by the approval of ${stepId}`;
}

/** Is this record the human approval of a coverable step (the one that covers the rest)? */
export function isCoveringApproval(rec: JournalRecord, coverable: Set<string>): rec is Extract<JournalRecord, { type: 'approval.granted' }> {
  return rec.type === 'approval.granted' && coverable.has(rec.stepId) && !rec.via.includes('covered by');
}

/** The first human approval in a journal that covers the coverable steps after it. */
export function coveringApproval(records: readonly JournalRecord[], coverable: Set<string>): { by: string; stepId: string } | undefined {
  const rec = records.find((r) => isCoveringApproval(r, coverable));
  return rec && rec.type === 'approval.granted' ? { by: rec.by, stepId: rec.stepId } : undefined;
}
