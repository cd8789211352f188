/** What a journal says about a run: folded per step and per forEach item. Pure. */
import { unhandled, type ErrorInfo, type JournalRecord, type RunStatus } from '../events/types.ts';

export interface ItemState {
  status: 'pending' | 'started' | 'succeeded' | 'failed';
  attempts: number;
  firstStartedAt?: number;
  lastStartedAt?: number;
  finishedAt?: number;
  output?: unknown;
  error?: ErrorInfo;
  via?: 'run' | 'probe';
  /**
   * Sizes an attempt logged just before its side effect (etcd.defrag: `before`). When a runner dies after the
   * effect and before journaling it, the probe of the next runner sees only the result: this is the "before".
   */
  loggedBefore?: { dbSize: number; inUse: number };
}

export interface StepState {
  status: 'pending' | 'running' | 'awaiting-approval' | 'skipped' | 'succeeded' | 'failed';
  skipReason?: string;
  items?: string[];
  item: Map<string, ItemState>;
  approval?: { status: 'requested' | 'granted' | 'denied'; by?: string; via?: string; reason?: string; expiresAt?: number };
  startedAt?: number;
  finishedAt?: number;
  output?: unknown;
}

export interface RunState {
  runId?: string;
  started?: Extract<JournalRecord, { type: 'run.started' }>;
  status: RunStatus | 'new';
  steps: Map<string, StepState>;
  finished?: Extract<JournalRecord, { type: 'run.finished' }>;
  startedAt?: number;
  lastAt?: number;
}

export const NO_ITEM = '';

export function stepState(run: RunState, stepId: string): StepState {
  let s = run.steps.get(stepId);
  if (!s) {
    s = { status: 'pending', item: new Map() };
    run.steps.set(stepId, s);
  }
  return s;
}

export function itemState(step: StepState, key: string): ItemState {
  let it = step.item.get(key);
  if (!it) {
    it = { status: 'pending', attempts: 0 };
    step.item.set(key, it);
  }
  return it;
}

export function newRunState(): RunState {
  return { status: 'new', steps: new Map() };
}

/** Apply one record to the folded state (mutates `run`). */
export function applyRecord(run: RunState, rec: JournalRecord): void {
  const at = Date.parse(rec.ts);
  run.lastAt = at;
  switch (rec.type) {
    case 'run.started':
      run.runId = rec.runId;
      run.started = rec;
      run.status = 'running';
      run.startedAt = at;
      break;
    case 'run.resumed':
      run.status = 'running';
      delete run.finished;
      break;
    case 'step.skipped': {
      const s = stepState(run, rec.stepId);
      s.status = 'skipped';
      s.skipReason = rec.reason;
      s.finishedAt = at;
      break;
    }
    case 'step.log': {
      const b = rec.data?.before as { dbSize?: unknown; inUse?: unknown } | undefined;
      if (b && typeof b.dbSize === 'number' && typeof b.inUse === 'number') {
        itemState(stepState(run, rec.stepId), rec.item ?? NO_ITEM).loggedBefore = { dbSize: b.dbSize, inUse: b.inUse };
      }
      break;
    }
    case 'step.items':
      stepState(run, rec.stepId).items = rec.items;
      break;
    case 'step.started': {
      const s = stepState(run, rec.stepId);
      s.status = 'running';
      s.startedAt ??= at;
      const it = itemState(s, rec.item ?? NO_ITEM);
      it.status = 'started';
      it.attempts = Math.max(it.attempts, rec.attempt);
      it.firstStartedAt ??= at;
      it.lastStartedAt = at;
      break;
    }
    case 'step.succeeded': {
      const s = stepState(run, rec.stepId);
      const it = itemState(s, rec.item ?? NO_ITEM);
      it.status = 'succeeded';
      it.output = rec.output;
      it.via = rec.via ?? 'run';
      it.finishedAt = at;
      it.firstStartedAt ??= at;
      delete it.error;
      break;
    }
    case 'step.failed': {
      const s = stepState(run, rec.stepId);
      const it = itemState(s, rec.item ?? NO_ITEM);
      it.status = 'failed';
      it.error = rec.error;
      it.attempts = Math.max(it.attempts, rec.attempt);
      it.finishedAt = at;
      break;
    }
    case 'step.finished': {
      const s = stepState(run, rec.stepId);
      s.status = rec.status;
      s.finishedAt = at;
      if (rec.output !== undefined) s.output = rec.output;
      break;
    }
    case 'approval.requested': {
      const s = stepState(run, rec.stepId);
      s.status = 'awaiting-approval';
      s.approval = { status: 'requested', ...(rec.expiresAt ? { expiresAt: rec.expiresAt } : {}) };
      run.status = 'awaiting-approval';
      break;
    }
    case 'approval.granted': {
      const s = stepState(run, rec.stepId);
      s.approval = { status: 'granted', by: rec.by, via: rec.via };
      if (s.status === 'awaiting-approval') s.status = 'pending';
      run.status = 'running';
      break;
    }
    case 'approval.denied': {
      const s = stepState(run, rec.stepId);
      s.approval = { status: 'denied', by: rec.by, via: rec.via, ...(rec.reason ? { reason: rec.reason } : {}) };
      s.status = 'failed';
      break;
    }
    case 'run.finished':
      run.status = rec.status;
      run.finished = rec;
      break;
    // Nothing the folded state keeps (the terminal and --json show them from the records themselves).
    case 'cluster.identity':
    case 'step.probe':
    case 'step.log':
    case 'step.plan':
    case 'run.interrupted':
      break;
    default:
      unhandled(rec);
  }
}

export function foldJournal(records: readonly JournalRecord[]): RunState {
  const run = newRunState();
  for (const rec of records) applyRecord(run, rec);
  return run;
}

/**
 * An item is in doubt when an attempt started and nothing says how it ended, or it ended in a way that does
 * not tell whether the effect happened (timeout, cancellation).
 */
export function isInDoubt(it: ItemState): boolean {
  if (it.status === 'started') return true;
  return it.status === 'failed' && (it.error?.kind === 'timeout' || it.error?.kind === 'cancelled');
}
