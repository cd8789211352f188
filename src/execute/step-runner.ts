/**
 * Runs one step (or one forEach item of a step) with checkpoint semantics:
 *   journaled success → return it (never repeat) · probe → effect there? record success
 *   in doubt + not idempotent → stop and ask a human · attempts with timeout, verify, retry/backoff.
 * `step.started` is journaled before any side effect.
 */
import type { ActionContext, ActionImpl, ActionMeta, StepItem } from '../actions/types.ts';
import type { ErrorInfo } from '../events/types.ts';
import type { Step } from '../runbook/model.ts';
import { StepError, UserError, clipMessage, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { retryDecision, sleep } from './retry.ts';
import { NO_ITEM, isInDoubt, itemState, stepState, type RunState } from './state.ts';
import type { JournalWriter } from '../store/journal.ts';

export interface StepEnv {
  runId: string;
  journal: JournalWriter;
  fold: RunState;
  signal: AbortSignal;
  dryRun: boolean;
  /** Operator decisions for steps left in doubt: done = accept the effect as there; rerun = run it again. */
  resolutions: Record<string, 'done' | 'rerun'>;
  resumeCommand: string;
  /** Dry-run: a mutating step has been planned (not run) already. */
  plannedMutation?: boolean;
  makeContext(step: Step, attempt: number, item: StepItem | undefined, signal: AbortSignal, deadline: number | undefined): ActionContext;
}

/** Grace period for an aborted attempt to settle before the engine gives up on it (no overlapping attempts). */
const SETTLE_MS = 15_000;

/** An error as the journal keeps it: plain data, the original's name, message and code as `cause`. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof StepError) {
    return {
      kind: err.kind,
      message: err.message,
      ...(err.stepId !== undefined ? { short: err.shortMessage } : {}),
      ...(err.member ? { member: err.member } : {}),
      ...(err.hint ? { hint: err.hint } : {}),
      ...(err.stepId !== undefined ? { stepId: err.stepId } : {}),
      ...(err.item !== undefined ? { item: err.item } : {}),
      ...(err.attempt !== undefined ? { attempt: err.attempt } : {}),
      ...(err.durationMs !== undefined ? { durationMs: err.durationMs } : {}),
      ...(err.cause !== undefined ? { cause: causeInfo(err.cause) } : {}),
    };
  }
  if (err instanceof UserError) return { kind: 'invalid', message: err.message };
  return { kind: 'failed', message: messageOf(err) };
}

/** The innermost cause worth naming: a StepError that merely wraps another error says less than what it wraps. */
function causeInfo(cause: unknown): NonNullable<ErrorInfo['cause']> {
  let e = cause;
  while (e instanceof StepError && e.cause !== undefined) e = e.cause;
  const code = (e as { code?: unknown } | null)?.code;
  return {
    name: e instanceof Error ? e.name : typeof e,
    message: clipMessage(messageOf(e)),
    ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
  };
}

function itemLabel(step: Step, item: StepItem | undefined): string {
  return item ? `${step.id}[${item.key}]` : step.id;
}

export async function runStep(
  env: StepEnv,
  step: Step,
  meta: ActionMeta,
  impl: ActionImpl | undefined,
  input: unknown,
  item: StepItem | undefined,
): Promise<unknown> {
  // A remote journal: what earlier steps recorded (their success) is durable before this step starts, so a runner
  // that takes over finds them done rather than in doubt. Rejects when this runner lost the run lock.
  await env.journal.flush?.();
  const key = item?.key ?? NO_ITEM;
  const itemField = item ? { item: item.key } : {};
  const st = itemState(stepState(env.fold, step.id), key);
  if (st.status === 'succeeded') return st.output; // already took effect: never repeat

  if (!impl) {
    throw new StepError('unimplemented', `action "${step.action}" has no implementation in this version of runbook; the step was not run`);
  }
  const label = itemLabel(step, item);
  const inDoubt = isInDoubt(st);
  const idempotent = meta.idempotent || (input as { idempotent?: unknown } | null)?.idempotent === true;
  const resolution = env.resolutions[step.id] ?? env.resolutions[label];

  if (resolution === 'done' && (inDoubt || st.status === 'failed')) {
    const rec = env.journal.append({ type: 'step.succeeded', stepId: step.id, ...itemField, output: { resolvedBy: 'operator' }, durationMs: 0, via: 'probe' });
    return (rec as { output?: unknown }).output;
  }

  // Probe first: is the effect already there? (after a crash, or because there is nothing to do)
  if (impl.probe) {
    const ctx = env.makeContext(step, st.attempts || 1, item, env.signal, Date.now() + 60_000);
    let probe;
    try {
      probe = await impl.probe(ctx, input);
    } catch (err) {
      if (env.signal.aborted) throw new StepError('cancelled', 'run interrupted');
      const info = toErrorInfo(err);
      throw new StepError(info.kind === 'failed' ? 'transient' : info.kind, `${label}: probe failed: ${info.message}`, {
        ...(info.member ? { member: info.member } : {}),
        stepId: step.id, ...itemField, cause: err,
      });
    }
    env.journal.append({ type: 'step.probe', stepId: step.id, ...itemField, done: probe.done, ...(probe.detail ? { detail: probe.detail } : {}), ...(inDoubt ? { inDoubt } : {}) });
    if (probe.done) {
      env.journal.append({ type: 'step.succeeded', stepId: step.id, ...itemField, output: probe.output, durationMs: 0, via: 'probe' });
      return probe.output;
    }
  }

  // In a plan, read-only steps run for real until the first mutating step is planned: after that the cluster no
  // longer looks like the plan says it would, so later checks are described, not run.
  if (env.dryRun && (meta.mutates || env.plannedMutation)) {
    if (meta.mutates) env.plannedMutation = true;
    const ctx = env.makeContext(step, 1, item, env.signal, undefined);
    const plan = impl.plan ? await impl.plan(ctx, input) : `would run ${step.action}${meta.mutates ? '' : ' (a check)'} with ${JSON.stringify(input)}`;
    env.journal.append({ type: 'step.plan', stepId: step.id, ...itemField, plan });
    const output = { dryRun: true, plan };
    env.journal.append({ type: 'step.succeeded', stepId: step.id, ...itemField, output, durationMs: 0, via: 'probe' });
    return output;
  }

  if (inDoubt && !idempotent && resolution !== 'rerun') {
    throw new StepError(
      'precondition',
      `${label} was interrupted while "${step.action}" was running and it is not safe to repeat; whether it took effect is unknown` +
        (impl.probe ? ' (its probe says the effect is not there)' : ''),
      {
        hint: `check by hand whether it happened, then: ${env.resumeCommand} --mark-done ${step.id}   (it did)   or   ${env.resumeCommand} --rerun ${step.id}   (it did not)`,
        ...(item?.member ? { member: item.member.name } : {}),
      },
    );
  }

  const policy = step.retry;
  const firstAttempt = st.attempts + 1;
  for (let n = 0; ; n++) {
    const attempt = firstAttempt + n;
    if (env.signal.aborted) throw new StepError('cancelled', 'run interrupted');
    const started = Date.now();
    const deadline = step.timeoutMs ? started + step.timeoutMs : undefined;
    env.journal.append({
      type: 'step.started', stepId: step.id, ...itemField, attempt,
      ...(deadline ? { deadline } : {}),
      ...(item?.member ? { member: item.member.name } : {}),
    });
    await env.journal.flush?.(); // durable before the side effect; rejects when this runner lost the run lock
    try {
      const output = await attemptOnce(env, step, impl, input, item, attempt, deadline);
      env.journal.append({ type: 'step.succeeded', stepId: step.id, ...itemField, output, durationMs: Date.now() - started, via: 'run' });
      return output;
    } catch (err) {
      const durationMs = Date.now() - started;
      const first = toErrorInfo(err);
      const member = first.member ?? item?.member?.name;
      // One error that says where and when: the step, the item, the attempt and its duration, the original as cause.
      const failure = new StepError(first.kind, first.message, {
        ...(member ? { member } : {}),
        ...(first.hint ? { hint: first.hint } : {}),
        stepId: step.id, ...itemField, attempt, durationMs, cause: err,
      });
      const info = toErrorInfo(failure);
      const decision = retryDecision(info.kind, n + 1, policy, idempotent);
      env.journal.append({
        type: 'step.failed', stepId: step.id, ...itemField, attempt, error: info, willRetry: decision.retry,
        ...(decision.retry ? { retryInMs: decision.inMs } : {}), durationMs,
      });
      if (!decision.retry) throw failure;
      try {
        await sleep(decision.inMs, env.signal);
      } catch {
        throw new StepError('cancelled', 'run interrupted');
      }
    }
  }
}

async function attemptOnce(
  env: StepEnv,
  step: Step,
  impl: ActionImpl,
  input: unknown,
  item: StepItem | undefined,
  attempt: number,
  deadline: number | undefined,
): Promise<unknown> {
  const ac = new AbortController();
  const onRunAbort = () => ac.abort(new StepError('cancelled', 'run interrupted'));
  if (env.signal.aborted) onRunAbort();
  env.signal.addEventListener('abort', onRunAbort, { once: true });
  const timer = deadline
    ? setTimeout(() => ac.abort(new StepError('timeout', `${itemLabel(step, item)} timed out after ${formatDuration(step.timeoutMs!)}`)), Math.max(0, deadline - Date.now()))
    : undefined;
  const ctx = env.makeContext(step, attempt, item, ac.signal, deadline);
  const work = (async () => {
    const output = await impl.run(ctx, input);
    if (impl.verify) await impl.verify(ctx, input, output);
    return output;
  })();
  let settled = false;
  work.then(() => { settled = true; }, () => { settled = true; });
  const aborted = new Promise<never>((_, reject) => {
    if (ac.signal.aborted) reject(ac.signal.reason);
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } catch (err) {
    if (ac.signal.aborted && !settled) {
      // The work was told to stop (its child processes killed, its calls cancelled). Never start another attempt
      // while this one may still be running.
      let settleTimer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        work.then(() => true, () => true),
        new Promise<boolean>((resolve) => { settleTimer = setTimeout(() => resolve(false), SETTLE_MS); }),
      ]);
      clearTimeout(settleTimer); // a pending timer would keep an interrupted process alive for SETTLE_MS
      if (!done) {
        throw new StepError('stuck', `${itemLabel(step, item)}: the attempt did not stop within ${SETTLE_MS / 1000}s of being aborted; not retrying while it may still run`);
      }
    }
    throw ac.signal.aborted ? ac.signal.reason : err;
  } finally {
    if (timer) clearTimeout(timer);
    env.signal.removeEventListener('abort', onRunAbort);
  }
}
