/**
 * `runbook approve|deny RUN STEP` decide only what can be decided: a step that is waiting for approval now, or an
 * approval step still ahead in that run's runbook (decided in advance). Anything else (no such run, no such step, a
 * step that needs no approval, one already past, a run that has ended) is refused, with what is waiting.
 */
import type { Runbook, RunState, StateStore } from '../index.ts';
import { foldJournal } from '../run-records.ts';
import { UserError, messageOf } from '../common.ts';

type RunReader = Pick<StateStore, 'readRunMeta' | 'readJournal' | 'readRunbookCopy' | 'readApproval'>;

/** Step ids waiting for a decision now. */
export function waitingSteps(fold: RunState): string[] {
  return [...fold.steps].filter(([, s]) => s.status === 'awaiting-approval').map(([id]) => id);
}

function approvalStep(runbook: Runbook, stepId: string, extra: readonly string[]): boolean {
  const step = runbook.steps.find((s) => s.id === stepId);
  return step !== undefined && (step.action === 'approve' || step.approval === 'required' || extra.includes(stepId));
}

/** Throws a UserError (exit 2) naming what is waiting unless `stepId` of `runId` can be approved or denied now. */
export async function checkDecidable(store: RunReader, runId: string, stepId: string, verb: 'approve' | 'deny'): Promise<void> {
  const meta = await store.readRunMeta(runId); // throws "no run …" for an unknown run
  const fold = foldJournal((await store.readJournal(runId)).records);
  const waiting = waitingSteps(fold);
  if (waiting.includes(stepId)) return;
  // Decided already (the run may not have picked it up yet): recording the decision says who decided first.
  if (await store.readApproval(runId, stepId)) return;
  const now = waiting.length ? `waiting for approval: ${waiting.map((s) => `"${s}"`).join(', ')}` : 'no step is waiting for approval';
  // A failed or interrupted run can still be resumed (a decision ahead counts then); a succeeded or denied one cannot.
  if (fold.finished && (fold.finished.status === 'succeeded' || fold.finished.status === 'denied')) {
    throw new UserError(`cannot ${verb} step "${stepId}": run ${runId} (${meta.runbook}) has ended (${fold.finished.status}); ${now}`);
  }
  let runbook: Runbook | undefined;
  try {
    const { loadRunbookText } = await import('../authoring.ts');
    runbook = loadRunbookText(await store.readRunbookCopy(runId), `${runId}/runbook.yaml`);
  } catch (err) {
    throw new UserError(`cannot ${verb} step "${stepId}" of run ${runId}: it is not waiting (${now}), and the run's runbook copy cannot be read to check it is ahead (${messageOf(err)})`);
  }
  const ids = runbook.steps.map((s) => s.id);
  if (!ids.includes(stepId)) {
    throw new UserError(`run ${runId} (${meta.runbook}) has no step "${stepId}"; ${now} (steps: ${ids.join(', ')})`);
  }
  if (!approvalStep(runbook, stepId, meta.extraApprovals ?? [])) {
    throw new UserError(`step "${stepId}" of run ${runId} (${meta.runbook}) does not ask for approval; ${now}`);
  }
  const status = fold.steps.get(stepId)?.status ?? 'pending';
  if (status !== 'pending') throw new UserError(`step "${stepId}" of run ${runId} is ${status}, not waiting for approval; ${now}`);
}
