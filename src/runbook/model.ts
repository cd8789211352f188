/** The typed runbook: what `load` + `validate` produce from YAML and what `compile` consumes. */
import type { FailureKind } from '../util/errors.ts';

export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export type ParamType = 'string' | 'integer' | 'number' | 'boolean' | 'bytes' | 'duration' | 'list';

export interface ParamSpec {
  name: string;
  type: ParamType;
  description?: string;
  /** Normalized default: bytes and integers as number, durations as milliseconds. */
  default?: unknown;
  optional: boolean;
  enum?: string[];
  pos: SourcePos;
}

/** Temporal's retry vocabulary. Intervals in milliseconds. */
export interface RetryPolicy {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  maximumAttempts: number;
  /** Failure kinds never retried, besides those never retried whatever the policy says (ALWAYS_NON_RETRYABLE in src/execute/retry.ts). */
  nonRetryable: FailureKind[];
}

export type MemberSelector = 'all' | 'voters' | 'learners';
export type MemberOrder = 'as-listed' | 'followers-then-leader';

/**
 * `parallel`: every item at once (each still journaled, probed and retried on its own); the step fails once every
 * item in flight has ended, when any failed. Without it, one item after another (with the gate between them).
 */
export type ForEachSpec =
  | { kind: 'members'; members: MemberSelector; order: MemberOrder; moveLeaderFirst: boolean; parallel?: boolean }
  /** A CEL expression that yields a list (of strings or objects with a `name`). */
  | { kind: 'items'; items: string; parallel?: boolean };

export interface Step {
  id: string;
  action: string;
  description?: string;
  /** Action input, raw: strings may hold `${{ expr }}` templates evaluated when the step starts. */
  with: Record<string, unknown>;
  /** CEL expression; the step is skipped when it evaluates to false. */
  when?: string;
  forEach?: ForEachSpec;
  /** A read-only action checked after each forEach item (or after the step) before going on. */
  gate?: string;
  timeoutMs?: number;
  retry: RetryPolicy;
  approval: 'required' | 'none';
  /** A failure of an optional step is reported and the run goes on. */
  optional: boolean;
  pos: SourcePos;
}

export interface Runbook {
  apiVersion: 'runbook/v1';
  name: string;
  summary: string;
  description?: string;
  /** Destructive runbooks always need approval when started from chat or an alert. */
  destructive: boolean;
  /** May an alert start it without a human approving? */
  autoApprove: boolean;
  params: ParamSpec[];
  steps: Step[];
  source: { file: string; hash: string };
}

export const DEFAULT_RETRY: RetryPolicy = {
  initialIntervalMs: 1000,
  backoffCoefficient: 2,
  maximumIntervalMs: 30_000,
  maximumAttempts: 1,
  nonRetryable: [],
};
