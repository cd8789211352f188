/**
 * Approvals while a run runs: a step that needs one waits for a decision in the run's store (given by this process,
 * `runbook approve` in another terminal, chat-ops, or another replica), bounded by its expiry; or, with
 * onApproval: 'pause', journals the request and ends the run resumable. The first decision wins, in the store.
 */
import type { ApprovalDecision } from '../store/run-dir.ts';
import { StepError, UserError } from '../util/errors.ts';
import type { RunContext } from './run-context.ts';
import { stepState } from './state.ts';

const DEFAULT_APPROVAL_TIMEOUT_MS = 24 * 3600_000;
const APPROVAL_POLL_MS = 200;

export type Decision = { decision: 'granted' | 'denied'; by: string; via: string; reason?: string };

export interface Approvals {
  /** The approval actor's work: resolves once granted, throws a StepError when denied, expired or paused. */
  await(stepId: string): Promise<void>;
  /** A decision given to this run (RunHandle.approve/deny): durable in the store, the waiter woken. True when first. */
  decide(stepId: string, d: Decision): Promise<boolean>;
}

export function createApprovals(rc: RunContext): Approvals {
  const { x, fold, emit, abort, resumeCommand } = rc;
  const { decisions, runId } = x;
  const waiters = new Map<string, () => void>();

  const wait = async (stepId: string): Promise<void> => {
    const s = rc.step(stepId);
    const st = stepState(fold, s.id);
    if (st.approval?.status === 'granted') return;
    if (st.approval?.status === 'denied') throw new StepError('denied', `step "${s.id}" was denied by ${st.approval.by}`);
    const timeout = x.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
    let decision: ApprovalDecision | undefined = await decisions.readApproval(runId, s.id);
    if (!decision && x.autoApprove) {
      decision = (await decisions.decideApproval(runId, s.id, { decision: 'granted', by: x.autoApprove, via: 'cli --yes' })).decision;
    }
    if (!decision) {
      const expiresAt = st.approval?.expiresAt ?? Date.now() + timeout;
      // Requested again by every process that waits (a resume too), with the first request's expiry: whoever
      // watches this process (a prompt, chat) learns that it waits, and the journal says since when.
      if (Date.now() < expiresAt) {
        emit({ type: 'approval.requested', stepId: s.id, ...(s.description ? { message: s.description } : {}), expiresAt });
        if (x.onApproval === 'pause') {
          throw new StepError('paused', `step "${s.id}" is waiting for approval`, { hint: `runbook approve ${runId} ${s.id}, then ${resumeCommand}` });
        }
      }
      // Poll the store for a decision (written by this process, the CLI in another terminal, or chat-ops). Bounded by expiry.
      while (!decision) {
        if (abort.signal.aborted) throw new StepError('cancelled', 'run interrupted while waiting for approval');
        if (Date.now() >= expiresAt) {
          decision = (await decisions.decideApproval(runId, s.id, { decision: 'denied', by: 'runbook', via: 'expiry', reason: 'approval expired' })).decision;
          break;
        }
        decision = await decisions.readApproval(runId, s.id).catch(() => undefined);
        if (decision) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(APPROVAL_POLL_MS, Math.max(0, expiresAt - Date.now())));
          waiters.set(s.id, () => { clearTimeout(t); resolve(); });
          abort.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        waiters.delete(s.id);
      }
    }
    if (decision.decision === 'granted') {
      emit({ type: 'approval.granted', stepId: s.id, by: decision.by, via: decision.via });
      return;
    }
    emit({ type: 'approval.denied', stepId: s.id, by: decision.by, via: decision.via, ...(decision.reason ? { reason: decision.reason } : {}) });
    throw new StepError('denied', `step "${s.id}" was denied by ${decision.by}${decision.reason ? ` (${decision.reason})` : ''}`);
  };

  const decide = async (stepId: string, d: Decision): Promise<boolean> => {
    if (!rc.hasStep(stepId)) throw new UserError(`run ${runId} has no step "${stepId}"`);
    // A shared store: first decision wins there (another replica may decide too); the waiter polls it.
    const { first } = await decisions.decideApproval(runId, stepId, d);
    waiters.get(stepId)?.();
    return first;
  };

  return { await: wait, decide };
}
