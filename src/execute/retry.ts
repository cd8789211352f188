/**
 * Retries: which failures a policy may name, which are never retried, whether a failed attempt is tried again and
 * after how long (Temporal's vocabulary: initialInterval, backoffCoefficient, maximumInterval, maximumAttempts,
 * nonRetryable), and the checks on a runbook's `retry:` block beyond its shape (src/runbook/schema.ts has the shape).
 */
import { DEFAULT_RETRY, type RetryPolicy } from '../runbook/model.ts';
import { FAILURE_KINDS, type FailureKind } from '../util/errors.ts';

/**
 * Never retried whatever the policy says: retrying cannot help (invalid, unimplemented), a human decided
 * (cancelled, denied) or must look first (precondition; stuck: an aborted attempt may still be running).
 * A timeout is retried only for an idempotent step (see retryDecision).
 */
export const ALWAYS_NON_RETRYABLE: ReadonlySet<FailureKind> = new Set<FailureKind>(['precondition', 'invalid', 'cancelled', 'unimplemented', 'denied', 'stuck']);

/**
 * Kinds a runbook's `retry.nonRetryable` may name: every failure kind a step attempt can end with, i.e. all but
 * `paused` (no failure: a run waiting for an approval nobody here can give) and `engine` (a whole run's, never a step's).
 */
export const POLICY_KINDS = FAILURE_KINDS.filter((k): k is Exclude<FailureKind, 'paused' | 'engine'> => k !== 'paused' && k !== 'engine');

export type RetryDecision = { retry: true; inMs: number } | { retry: false };

/**
 * After attempt number `attemptsSoFar` (1-based, of this run of the step) failed with `kind`: try again, and when.
 * A timed-out attempt of a step that is not idempotent may have taken effect: it is not repeated.
 */
export function retryDecision(kind: FailureKind, attemptsSoFar: number, policy: RetryPolicy, idempotent: boolean): RetryDecision {
  const retry = !ALWAYS_NON_RETRYABLE.has(kind) && !policy.nonRetryable.includes(kind) && attemptsSoFar < policy.maximumAttempts && (idempotent || kind !== 'timeout');
  return retry ? { retry: true, inMs: backoffMs(policy, attemptsSoFar + 1) } : { retry: false };
}

/** Delay before attempt `next` (2-based: the delay after the first failure is for attempt 2). */
export function backoffMs(policy: RetryPolicy, next: number): number {
  const n = Math.max(0, next - 2);
  return Math.min(policy.maximumIntervalMs, Math.round(policy.initialIntervalMs * policy.backoffCoefficient ** n));
}

/** A runbook's `retry:` block as its schema parsed it (intervals in milliseconds). */
export interface RetrySpec {
  maximumAttempts?: number | undefined;
  initialInterval?: number | undefined;
  backoffCoefficient?: number | undefined;
  maximumInterval?: number | undefined;
  nonRetryable?: readonly FailureKind[] | undefined;
}

/** What is wrong with a retry block that has the right shape: the field and the message (none: fine). */
export function retrySpecProblem(spec: RetrySpec): { field: keyof RetrySpec; message: string } | undefined {
  if (spec.initialInterval !== undefined && spec.maximumInterval !== undefined && spec.maximumInterval < spec.initialInterval) {
    return { field: 'maximumInterval', message: 'is shorter than initialInterval' };
  }
  return undefined;
}

/** The policy a step runs with: the defaults, overridden by what the runbook says. */
export function retryPolicyOf(spec: RetrySpec | undefined): RetryPolicy {
  const policy: RetryPolicy = { ...DEFAULT_RETRY, nonRetryable: [...DEFAULT_RETRY.nonRetryable] };
  if (!spec) return policy;
  if (spec.maximumAttempts !== undefined) policy.maximumAttempts = spec.maximumAttempts;
  if (spec.initialInterval !== undefined) policy.initialIntervalMs = spec.initialInterval;
  if (spec.backoffCoefficient !== undefined) policy.backoffCoefficient = spec.backoffCoefficient;
  if (spec.maximumInterval !== undefined) policy.maximumIntervalMs = spec.maximumInterval;
  if (spec.nonRetryable !== undefined) policy.nonRetryable = [...spec.nonRetryable];
  return policy;
}

/** Sleep that ends early (rejecting with the signal's reason) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
