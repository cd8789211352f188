/** What a caller gives to start or resume a run, and what it gets back. */
import type { ActionRegistry } from '../actions/types.ts';
import type { ErrorInfo, JournalRecord, RunStatus } from '../events/types.ts';
import type { Inventory } from '../inventory/types.ts';
import type { Runbook } from '../runbook/model.ts';
import type { StateStore } from '../store/types.ts';
import type { RunReport } from './report.ts';

export interface RunOptions {
  runbook: Runbook;
  /** The runbook's exact text (stored with the run; its sha256 is runbook.source.hash). */
  runbookText: string;
  inventory: Inventory;
  params: Record<string, unknown>;
  registry: ActionRegistry;
  /** The local state dir: where runs are kept unless `store` says otherwise, and what actions are told. */
  stateDir: string;
  /** Where the run is kept (default: the state dir, as a FileStore). A management etcd is checked not to be the target. */
  store?: StateStore;
  /** The replica that runs it (a `runbook serve` id), shown in a shared store's lock. */
  owner?: string;
  dryRun?: boolean;
  /** Approve every approval up front (`--yes`), recorded as given by this name. */
  autoApprove?: string;
  /** Steps that need approval besides those marked `approval: required` (chat-ops: destructive runbooks). */
  extraApprovals?: string[];
  approvalTimeoutMs?: number;
  /**
   * What to do when a step needs an approval that is not given yet: wait for a decision (chat-ops, a prompt, another
   * terminal), or 'pause': journal the request and end the run as awaiting-approval (exit 3), resumable once decided.
   */
  onApproval?: 'wait' | 'pause';
  requestedBy?: string;
  breakLock?: boolean;
  signal?: AbortSignal;
  onEvent?: (rec: JournalRecord) => void;
  runId?: string;
}

export interface ResumeOptions {
  stateDir: string;
  /** Where the run is kept (default: the state dir, as a FileStore). */
  store?: StateStore;
  owner?: string;
  runId: string;
  registry: ActionRegistry;
  /** The runbook as it is now; its hash must equal the run's. */
  runbook: Runbook;
  runbookText: string;
  inventory?: Inventory;
  autoApprove?: string;
  onApproval?: 'wait' | 'pause';
  breakLock?: boolean;
  signal?: AbortSignal;
  onEvent?: (rec: JournalRecord) => void;
  resolutions?: Record<string, 'done' | 'rerun'>;
}

export interface RunResult {
  runId: string;
  /** 'awaiting-approval': paused at an approval (onApproval: 'pause'); resumable once decided. */
  status: Exclude<RunStatus, 'running'>;
  error?: ErrorInfo & { stepId?: string };
  report: RunReport;
  records: readonly JournalRecord[];
  exitCode: number;
}

export interface RunHandle {
  runId: string;
  /** The run's directory, when its store keeps one (the state dir). */
  dir?: string;
  done: Promise<RunResult>;
  /**
   * Record a decision; resolves once it is durable (in the run's store), true when it was the first one. Rejects
   * when it could not be recorded: a caller must never report an approval that did not land.
   */
  approve(stepId: string, by: string, via: string): Promise<boolean>;
  deny(stepId: string, by: string, via: string, reason?: string): Promise<boolean>;
  /** Steps currently waiting for a decision. */
  pendingApprovals(): string[];
}
