/** Temporal-style retry schedule and the rules for which failures are retried. */
import type { RetryPolicy } from '../runbook/model.ts';

/** Never retried whatever the policy says: retrying cannot help, or a human must look first. */
export const ALWAYS_NON_RETRYABLE = new Set(['precondition', 'invalid', 'cancelled', 'unimplemented', 'denied', 'stuck']);

export function isRetryable(kind: string, policy: RetryPolicy): boolean {
  return !ALWAYS_NON_RETRYABLE.has(kind) && !policy.nonRetryable.includes(kind);
}

/** Delay before attempt `next` (2-based: the delay after the first failure is for attempt 2). */
export function backoffMs(policy: RetryPolicy, next: number): number {
  const n = Math.max(0, next - 2);
  return Math.min(policy.maximumIntervalMs, Math.round(policy.initialIntervalMs * policy.backoffCoefficient ** n));
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
