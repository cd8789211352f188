import { describe, expect, it } from 'vitest';
import { ALWAYS_NON_RETRYABLE, POLICY_KINDS, retryDecision, retryPolicyOf, retrySpecProblem } from '../../../src/execute/retry.ts';
import { DEFAULT_RETRY } from '../../../src/runbook/model.ts';
import { FAILURE_KINDS, StepError } from '../../../src/util/errors.ts';

const policy = { ...DEFAULT_RETRY, maximumAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 150 };

describe('retry decisions', () => {
  it('retries a transient failure until maximumAttempts, with backoff capped at maximumInterval', () => {
    expect(retryDecision('transient', 1, policy, true)).toEqual({ retry: true, inMs: 100 });
    expect(retryDecision('transient', 2, policy, true)).toEqual({ retry: true, inMs: 150 });
    expect(retryDecision('transient', 3, policy, true)).toEqual({ retry: false });
  });

  it('never retries the kinds a human must look at, whatever the policy', () => {
    for (const kind of ALWAYS_NON_RETRYABLE) expect(retryDecision(kind, 1, policy, true), kind).toEqual({ retry: false });
    expect([...ALWAYS_NON_RETRYABLE].sort()).toEqual(['cancelled', 'denied', 'invalid', 'precondition', 'stuck', 'unimplemented']);
  });

  it('a timeout is repeated only when the step is idempotent; nonRetryable adds kinds', () => {
    expect(retryDecision('timeout', 1, policy, false)).toEqual({ retry: false });
    expect(retryDecision('timeout', 1, policy, true).retry).toBe(true);
    expect(retryDecision('failed', 1, { ...policy, nonRetryable: ['failed'] }, true)).toEqual({ retry: false });
  });

  it('a policy names every failure kind a step attempt can end with, and nothing else', () => {
    expect([...POLICY_KINDS].sort()).toEqual(FAILURE_KINDS.filter((k) => k !== 'paused' && k !== 'engine').sort());
  });

  it('builds the policy from a runbook retry block and rejects a maximum interval below the initial one', () => {
    expect(retryPolicyOf(undefined)).toEqual(DEFAULT_RETRY);
    expect(retryPolicyOf({ maximumAttempts: 4, nonRetryable: ['timeout'] })).toEqual({ ...DEFAULT_RETRY, maximumAttempts: 4, nonRetryable: ['timeout'] });
    expect(retrySpecProblem({ initialInterval: 2000, maximumInterval: 1000 })).toEqual({ field: 'maximumInterval', message: 'is shorter than initialInterval' });
    expect(retrySpecProblem({ initialInterval: 1000, maximumInterval: 1000 })).toBeUndefined();
  });
});

describe('StepError', () => {
  it('has a one-line short message that names the step and item, clipped for a chat line', () => {
    const e = new StepError('transient', `no voter answers: ${'x'.repeat(400)}\nmore`, { stepId: 'defrag', item: 'm2', attempt: 2, durationMs: 31 });
    expect(e.shortMessage.startsWith('defrag[m2]: no voter answers: xxx')).toBe(true);
    expect(e.shortMessage.length).toBeLessThanOrEqual(200);
    expect(e.shortMessage).not.toContain('\n');
    expect(new StepError('failed', 'defrag[m2]: probe failed: boom', { stepId: 'defrag', item: 'm2' }).shortMessage).toBe('defrag[m2]: probe failed: boom');
  });
});
