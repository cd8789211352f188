/**
 * The persisted xstate snapshot: saved beside the journal after every transition, so a resume can restore the
 * machine where it was instead of replaying the journal. Per ETCD-NOTES (xstate persistence): it is used only when
 * it belongs to the same runbook (hash) and was active, and an error snapshot never overwrites a good one.
 */
import type { AnyActorRef, Snapshot } from 'xstate';
import type { RunState } from './state.ts';

interface SavedSnapshot {
  hash: string;
  snapshot: { status: string };
}

/** The snapshot to restore a resumed run from, if the saved one is usable; else the journal is replayed. */
export function restorableSnapshot(text: string | undefined, runbookHash: string, fold: RunState): Snapshot<unknown> | undefined {
  if (!text || fold.status === 'failed' || fold.status === 'cancelled') return undefined;
  try {
    const saved = JSON.parse(text) as SavedSnapshot;
    // A JSON value that passed these checks is what getPersistedSnapshot() wrote.
    if (saved.hash === runbookHash && saved.snapshot?.status === 'active') return saved.snapshot as Snapshot<unknown>;
  } catch {
    /* damaged: rebuild from the journal (journaled steps return at once) */
  }
  return undefined;
}

/** Save the actor's persisted snapshot after every change (best effort: the journal is the source of truth). */
export function persistSnapshots(actor: AnyActorRef, runbookHash: string, save: ((data: string) => void) | undefined): void {
  if (!save) return; // a dry run keeps nothing
  let lastGood = '';
  actor.subscribe({
    next: (snap) => {
      if (snap.status === 'error') return; // never overwrite a good snapshot with an error one
      try {
        const data = JSON.stringify({ hash: runbookHash, snapshot: actor.getPersistedSnapshot() });
        if (data !== lastGood) {
          save(data);
          lastGood = data;
        }
      } catch {
        /* the journal is the source of truth; a failed snapshot write only costs a replay */
      }
    },
    error: () => {},
  });
}
