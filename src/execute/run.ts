/**
 * Runs a prepared run (started, resumed or dry) as an xstate actor over its journal, and ends it: resources
 * disposed, the lock let go in the right order, the last record durable, an exit code.
 */
import os from 'node:os';
import { createActor } from 'xstate';
import { compileRunbook, FINAL } from '../compile/machine.ts';
import type { ErrorInfo } from '../events/types.ts';
import { ExitCode } from '../util/errors.ts';
import { createActors } from './actors.ts';
import { createApprovals } from './approvals.ts';
import { createJournalEmitter } from './journal-emitter.ts';
import { buildReport } from './report.ts';
import { createResourceScope } from './resources.ts';
import { createRunContext, type RunInternals } from './run-context.ts';
import { createRunMachine } from './run-machine.ts';
import type { RunHandle, RunResult } from './run-types.ts';
import { persistSnapshots, restorableSnapshot } from './snapshot.ts';
import { toErrorInfo } from './step-runner.ts';

export function execute(x: RunInternals): RunHandle {
  const { runbook, journal, fold, runId } = x;
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(x.signal!.reason);
  if (x.signal?.aborted) onOuterAbort();
  x.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const resources = createResourceScope();
  const started = Date.now();
  const resumeCommand = `runbook resume ${runId}`;
  const emitter = createJournalEmitter({
    runId, journal, location: journal.location ?? 'memory', fold, abort, resumeCommand, ...(x.onEvent ? { onEvent: x.onEvent } : {}),
  });
  const { emit } = emitter;
  const rc = createRunContext(x, { abort, resources, resumeCommand, emit, journalView: emitter.view });
  const approvals = createApprovals(rc);
  const machine = createRunMachine(rc, compileRunbook(runbook), createActors(rc, approvals));

  // ---- start or restore ------------------------------------------------------------------------
  const restored = x.resumed ? restorableSnapshot(x.snapshotText, runbook.source.hash, fold) : undefined;
  if (x.resumed) {
    emit({ type: 'run.resumed', runId, pid: process.pid, ...(x.resumeNote ? { note: x.resumeNote } : restored ? { note: 'restored from the persisted machine snapshot' } : { note: 'replaying from the journal' }) });
  } else {
    emit({
      type: 'run.started', runId, runbook: runbook.name, runbookFile: runbook.source.file, hash: runbook.source.hash,
      params: x.params,
      inventory: { name: x.inventory.name, source: x.inventory.source, members: x.inventory.members.map((m) => m.name) },
      dryRun: x.dryRun ?? false, pid: process.pid, host: os.hostname(),
      ...(x.requestedBy ? { requestedBy: x.requestedBy } : {}),
    });
  }

  if (x.pin) emit({ type: 'cluster.identity', reason: x.pin.reason, identity: x.pin.identity, ...(x.pin.previousClusterId !== undefined ? { previousClusterId: x.pin.previousClusterId } : {}) });

  const actor = restored
    ? createActor(machine, { snapshot: restored, input: { params: x.params } })
    : createActor(machine, { input: { params: x.params } });
  persistSnapshots(actor, runbook.source.hash, journal.saveSnapshot?.bind(journal));

  const done = new Promise<RunResult>((resolve) => {
    const finish = async (status: RunResult['status'], error?: ErrorInfo & { stepId?: string }) => {
      await resources.dispose();
      const journalError = emitter.failure();
      if (journalError) {
        status = 'failed';
        error = { ...toErrorInfo(journalError), ...(error?.stepId ? { stepId: error.stepId } : {}) };
      }
      const report = buildReport(runbook, fold, started);
      // The machine-wide lock goes before the run's last record: a kill right after `run.finished` then leaves no
      // lock behind (and one left anyway is cleared by the next run, since the journal says this one ended).
      x.lock?.releaseMachineWide();
      emit({ type: 'run.finished', status, ...(error ? { error } : {}), durationMs: Date.now() - (fold.startedAt ?? started), report });
      try {
        await journal.flush?.(); // a remote store: everything durable, or this runner was fenced off
      } catch (err) {
        status = 'failed';
        error = { ...toErrorInfo(err), ...(error?.stepId ? { stepId: error.stepId } : {}) };
      }
      try {
        journal.close();
      } catch {
        /* nothing more can be written anyway */
      }
      const released = x.lock?.release();
      if (released) await released.catch(() => {});
      x.signal?.removeEventListener('abort', onOuterAbort);
      const exitCode = status === 'succeeded' ? ExitCode.ok
        : status === 'denied' ? ExitCode.denied
        : status === 'awaiting-approval' ? ExitCode.awaitingApproval
        : status === 'cancelled' ? (abort.signal.reason === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted)
        : ExitCode.failed;
      resolve({ runId, status, ...(error ? { error } : {}), report, records: journal.records, exitCode });
    };
    actor.subscribe({
      complete: () => {
        const snap = actor.getSnapshot();
        const value = snap.value;
        const ctxErr = snap.context.error;
        if (value === FINAL.succeeded) void finish('succeeded');
        else if (value === FINAL.denied && ctxErr?.kind === 'paused') void finish('awaiting-approval', ctxErr);
        // Ctrl-C while waiting for an approval leaves through the approval's error edge: that is an interrupt,
        // not a denial, and the run must stay resumable.
        else if (value === FINAL.denied && ctxErr?.kind !== 'cancelled') void finish('denied', ctxErr);
        else if (abort.signal.aborted) {
          emit({ type: 'run.interrupted', signal: String(abort.signal.reason ?? 'abort') });
          void finish('cancelled', ctxErr ?? { kind: 'cancelled', message: 'run interrupted' });
        } else void finish('failed', ctxErr);
      },
      error: (err) => {
        void finish('failed', { kind: 'engine', message: `engine error: ${(err as Error).message}` });
      },
    });
  });

  actor.start();

  return {
    runId,
    ...(journal.dir ? { dir: journal.dir } : {}),
    done,
    approve: (stepId, by, via) => approvals.decide(stepId, { decision: 'granted', by, via }),
    deny: (stepId, by, via, reason) => approvals.decide(stepId, { decision: 'denied', by, via, ...(reason ? { reason } : {}) }),
    pendingApprovals: () => [...fold.steps].filter(([, s]) => s.status === 'awaiting-approval').map(([id]) => id),
  };
}
