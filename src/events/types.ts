/**
 * RunEvent: everything a run does, as data. The journal is these events, persisted (with seq + ts);
 * the terminal display, --json, chat-ops and metrics are formatters over the same stream.
 */
import type { ClusterIdentity, IdentityReason } from './cluster-identity.ts';
import type { FailureKind } from '../util/errors.ts';

/** A failure as the journal keeps it (src/execute/step-runner.ts toErrorInfo). */
export interface ErrorInfo {
  kind: FailureKind;
  message: string;
  /** One line fit for a chat message: `<step>[<item>]: <first line of message>`, clipped. */
  short?: string;
  member?: string;
  hint?: string;
  stepId?: string;
  item?: string;
  attempt?: number;
  durationMs?: number;
  /** The original error (a gRPC, errno or S3 error) the message explains: its name, message and code. */
  cause?: { name: string; message: string; code?: string };
}

export type RunStatus = 'running' | 'awaiting-approval' | 'succeeded' | 'failed' | 'cancelled' | 'denied';

export type RunEvent =
  | {
      type: 'run.started';
      runId: string;
      runbook: string;
      runbookFile: string;
      hash: string;
      params: Record<string, unknown>;
      inventory: { name: string; source: string; members: string[] };
      dryRun: boolean;
      pid: number;
      host: string;
      requestedBy?: string;
    }
  | { type: 'run.resumed'; runId: string; pid: number; note?: string }
  /** The cluster the run is pinned to (src/execute/identity.ts); `previousClusterId` names the one a restore replaced. */
  | { type: 'cluster.identity'; reason: IdentityReason; identity: ClusterIdentity; previousClusterId?: string | null }
  | { type: 'step.skipped'; stepId: string; reason: string }
  | { type: 'step.items'; stepId: string; items: string[]; parallel?: boolean }
  | { type: 'step.started'; stepId: string; item?: string; attempt: number; deadline?: number; member?: string }
  | { type: 'step.probe'; stepId: string; item?: string; done: boolean; detail?: string; inDoubt?: boolean }
  | { type: 'step.log'; stepId: string; item?: string; message: string; data?: Record<string, unknown> }
  | { type: 'step.plan'; stepId: string; item?: string; plan: string }
  | { type: 'step.succeeded'; stepId: string; item?: string; output?: unknown; durationMs: number; via?: 'run' | 'probe' }
  | { type: 'step.failed'; stepId: string; item?: string; attempt: number; error: ErrorInfo; willRetry: boolean; retryInMs?: number; durationMs: number }
  | { type: 'step.finished'; stepId: string; status: 'succeeded' | 'failed' | 'skipped'; durationMs: number; output?: unknown }
  | { type: 'approval.requested'; stepId: string; message?: string; expiresAt?: number }
  | { type: 'approval.granted'; stepId: string; by: string; via: string }
  | { type: 'approval.denied'; stepId: string; by: string; via: string; reason?: string }
  | { type: 'run.interrupted'; signal: string }
  | { type: 'run.finished'; status: Exclude<RunStatus, 'running'>; error?: ErrorInfo & { stepId?: string }; durationMs: number; report?: unknown };

/** A journal record: an event with its sequence number and wall-clock time. */
export type JournalRecord = RunEvent & { seq: number; ts: string; runId: string };

/**
 * The end of a switch over the record types (`default: return unhandled(rec)`): a record type added to RunEvent
 * does not compile until every such switch handles it. At run time (a journal written by a newer runbook) the
 * record is passed over.
 */
export function unhandled(rec: never): undefined {
  void rec;
  return undefined;
}
