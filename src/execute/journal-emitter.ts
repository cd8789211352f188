/**
 * The one path every record of a run takes: appended to the journal, folded into the run's state, shown to
 * listeners. And its latch: when the journal cannot be written (disk full, state dir read-only, …) the run must not
 * take another step whose checkpoint it cannot record. The first failed append aborts the run and fails the step in
 * hand before its side effect; what follows is only displayed. The run stays resumable from its last durable record.
 */
import type { JournalRecord, RunEvent } from '../events/types.ts';
import type { JournalWriter } from '../store/journal.ts';
import { StepError } from '../util/errors.ts';
import { applyRecord, type RunState } from './state.ts';

export interface JournalEmitter {
  emit(event: RunEvent): JournalRecord;
  /** The journal as the step runner sees it: appends go through `emit`, so the fold and the listeners see everything. */
  view: JournalWriter;
  /** Why the journal stopped taking records, once it has. */
  failure(): StepError | undefined;
}

export function createJournalEmitter(opts: {
  runId: string;
  journal: JournalWriter;
  /** How the failure message names where the journal is. */
  location: string;
  fold: RunState;
  abort: AbortController;
  resumeCommand: string;
  onEvent?: (rec: JournalRecord) => void;
}): JournalEmitter {
  const { runId, journal, fold, abort } = opts;
  let journalError: StepError | undefined;
  let unjournaled = 0;
  const emit = (event: RunEvent): JournalRecord => {
    let rec: JournalRecord;
    let failedNow: StepError | undefined;
    if (journalError) {
      rec = { ...event, seq: -++unjournaled, ts: new Date().toISOString(), runId } as JournalRecord;
    } else {
      try {
        rec = journal.append(event);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        journalError = failedNow = new StepError('stuck', `cannot write the run journal (${opts.location}): ${code}; the run stopped before taking another step`, {
          hint: `once the state dir is writable again: ${opts.resumeCommand}`,
        });
        if (!abort.signal.aborted) abort.abort('journal');
        rec = { ...event, seq: -++unjournaled, ts: new Date().toISOString(), runId } as JournalRecord;
      }
    }
    applyRecord(fold, rec);
    try {
      opts.onEvent?.(rec);
    } catch {
      /* a display must never break a run */
    }
    if (failedNow) throw failedNow;
    return rec;
  };
  const view: JournalWriter = {
    records: journal.records, append: emit, close: () => journal.close(),
    ...(journal.flush ? { flush: () => journal.flush!() } : {}),
  };
  return { emit, view, failure: () => journalError };
}
