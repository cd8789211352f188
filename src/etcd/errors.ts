/**
 * etcd3's errors are typed classes, but `err.name` is always "Error" and the gRPC code is dropped: match them
 * with `instanceof` only (ETCD-NOTES). Every failure of a call becomes a StepError that names the member.
 */
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import { StepError, messageOf, type StepErrorKind } from '../util/errors.ts';

/** "mvcc: database space exceeded": the NOSPACE alarm is armed (writes refused until it is disarmed). */
export function isNoSpace(err: unknown): boolean {
  return cause(err) instanceof GRPCResourceExhastedError;
}

/** The etcd3 error behind a StepError made by toStepError (or the error itself). */
function cause(err: unknown): unknown {
  return err instanceof StepError && err.cause !== undefined ? err.cause : err;
}

/** Compacting (or reading) at a revision at or below the compact revision. */
export function isAlreadyCompacted(err: unknown): boolean {
  const e = cause(err);
  return e instanceof GRPCOutOfRangeError && /has been compacted/.test(e.message);
}

/** A revision newer than the member's current one. */
export function isFutureRevision(err: unknown): boolean {
  const e = cause(err);
  return e instanceof GRPCOutOfRangeError && /future revision/.test(e.message);
}

/** The call timed out on the client: the server may still be working on it (a defrag, for example). */
export function isDeadlineExceeded(err: unknown): boolean {
  return cause(err) instanceof GRPCDeadlineExceededError;
}

/** The member could not be reached (connection refused, reset, TLS handshake) or refused as unhealthy / learner. */
export function isUnavailable(err: unknown): boolean {
  return cause(err) instanceof GRPCUnavailableError;
}

/** A leader-only request (move-leader) was sent to a member that is not the leader. */
export function isNotLeader(err: unknown): boolean {
  const e = cause(err);
  return e instanceof GRPCFailedPreconditionError && /not leader/.test(e.message);
}

/** Outcome unknown: the request may have been applied (timeouts, a dropped connection mid-call). */
export function isOutcomeUnknown(err: unknown): boolean {
  const e = cause(err);
  return e instanceof GRPCDeadlineExceededError || e instanceof GRPCCancelledError || e instanceof GRPCUnavailableError;
}

/** "14 UNAVAILABLE: No connection established. Last error: ..." → the part a human needs. */
export function shortGrpcMessage(err: unknown): string {
  let text = messageOf(err).replace(/^\d+\s+[A-Z_]+:\s*/, '').replace(/^etcdserver:\s*/, '');
  text = text.replace(/\s*Resolution note:.*$/s, '').replace(/\s+/g, ' ').trim();
  if (/ECONNREFUSED/.test(text)) text = `connection refused (${text})`;
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

const TLS_TROUBLE = /certificate|SSL|TLS|handshake|self[- ]signed|unable to verify/i;

export interface ClassifyContext {
  /** Member name (from the inventory) or endpoint: every message names it. */
  member: string;
  /** What was being done, e.g. "status", "defragment". */
  op: string;
}

/** The StepError kind and hint for an error thrown by an etcd3 call. */
export function classify(err: unknown): { kind: StepErrorKind; hint?: string } {
  if (err instanceof StepError) return { kind: err.kind, ...(err.hint ? { hint: err.hint } : {}) };
  if (err instanceof GRPCResourceExhastedError) {
    return { kind: 'precondition', hint: 'the NOSPACE alarm is armed: run the nospace-recovery runbook (compact, defragment, disarm)' };
  }
  if (err instanceof GRPCOutOfRangeError) return { kind: 'invalid' };
  if (err instanceof GRPCFailedPreconditionError) return { kind: 'precondition' };
  if (err instanceof GRPCDeadlineExceededError) return { kind: 'transient', hint: 'the member did not answer in time (overloaded, frozen, or the network is down)' };
  if (err instanceof GRPCUnavailableError) {
    if (TLS_TROUBLE.test(err.message)) return { kind: 'invalid', hint: 'check the TLS files of the inventory (cacert, cert, key) and the member URL scheme' };
    return { kind: 'transient', hint: 'is the member running and its client URL right?' };
  }
  if (err instanceof GRPCCancelledError) return { kind: 'transient' };
  if (err instanceof EtcdAuthenticationFailedError || err instanceof GRPCUnauthenticatedError) {
    return { kind: 'invalid', hint: 'check the auth username and password of the inventory' };
  }
  if (err instanceof EtcdPermissionDeniedError) return { kind: 'invalid', hint: 'the etcd user lacks the permission (root is needed for maintenance calls)' };
  if (err instanceof EtcdInvalidAuthTokenError) return { kind: 'transient' };
  if (err instanceof ClientClosedError) return { kind: 'cancelled' };
  return { kind: 'failed' };
}

/** Wrap an error of a call to one member into a StepError naming the member (the original is the `cause`). */
export function toStepError(err: unknown, ctx: ClassifyContext): StepError {
  if (err instanceof StepError) return err;
  const { kind, hint } = classify(err);
  return new StepError(kind, `${ctx.member}: ${ctx.op}: ${shortGrpcMessage(err)}`, {
    member: ctx.member,
    cause: err,
    ...(hint ? { hint } : {}),
  });
}
