/**
 * etcd3's errors are typed classes, but `err.name` is always "Error" and the gRPC code is dropped: match them
 * with `instanceof` only (ETCD-NOTES). Every failure of a call becomes a StepError that names the member.
 */
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  EtcdUserNotFoundError,
  GRPCDataLossError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import { StepError, messageOf, type FailureKind } from '../util/errors.ts';

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

/**
 * What an error means for the operator, whatever the call was. Only `unreachable` says something about the member
 * being down; `auth` and `tls` mean the tool could not READ a member that may be perfectly healthy: the operator's
 * input (the inventory's auth or TLS files) is what to fix, never a reason to act on the cluster.
 */
export type ErrorClass = 'unreachable' | 'auth' | 'tls' | 'nospace' | 'corrupt' | 'no-leader' | 'learner' | 'other';

/** Errors of TLS configuration and handshakes, as grpc-js / OpenSSL word them (etcd 3.4 "bad certificate", 3.5 "certificate required"). */
const TLS_TROUBLE = /certificate|SSL|TLS|handshake|self[- ]signed|unable to verify|key values mismatch|PEM|wrong version number/i;
/** "user name is empty" is what etcd answers a call without credentials when auth is enabled (a GRPCInvalidArgumentError). */
/** Node's words for a peer that hung up before the TLS handshake finished (ECONNRESET there). */
const DISCONNECTED_IN_HANDSHAKE = /socket disconnected before secure TLS connection was established/i;
const AUTH_TROUBLE = /user name is empty|authentication failed|permission denied|user name not found|token is not provided/i;

/** The class of an error thrown by an etcd call (or a StepError wrapping one). */
export function errorClass(err: unknown): ErrorClass {
  const e = cause(err);
  if (e instanceof GRPCResourceExhastedError) return 'nospace';
  const text = messageOf(e);
  if (
    e instanceof EtcdAuthenticationFailedError ||
    e instanceof GRPCUnauthenticatedError ||
    e instanceof EtcdPermissionDeniedError ||
    e instanceof EtcdUserNotFoundError ||
    AUTH_TROUBLE.test(text)
  ) {
    return 'auth';
  }
  // The member closed the connection during the handshake (a process exiting, a listener going away): the
  // connection failed, nothing was said about the TLS files. Said of a member dying at its start, "tls" would make
  // a tool call an unreadable cluster what is a dead one.
  if (DISCONNECTED_IN_HANDSHAKE.test(text)) return 'unreachable';
  if (TLS_TROUBLE.test(text)) return 'tls';
  if (e instanceof GRPCDataLossError || /corrupt/i.test(text)) return 'corrupt';
  if (/not supported for learner/i.test(text)) return 'learner';
  if (/no leader|leader changed/i.test(text)) return 'no-leader';
  if (e instanceof GRPCUnavailableError || e instanceof GRPCDeadlineExceededError || /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ETIMEDOUT|No connection established|Failed to connect|no answer within/i.test(text)) {
    return 'unreachable';
  }
  return 'other';
}

/** For auth and TLS errors: what the operator must change, in their terms (never "the member is down"). */
export function accessHint(err: unknown): string | undefined {
  const text = messageOf(cause(err));
  if (/user name is empty|token is not provided/i.test(text)) {
    return 'auth is enabled on the cluster and the inventory has no credentials: set auth in the inventory (auth: {username: root, passwordEnv: ETCD_PASSWORD} or passwordFile)';
  }
  if (/authentication failed|user name not found/i.test(text)) return 'check the auth username and password of the inventory (etcd refused them)';
  if (/permission denied/i.test(text)) return 'the etcd user of the inventory lacks the permission (root is needed for maintenance calls)';
  if (/key values mismatch/i.test(text)) return "the inventory's tls.key does not belong to tls.cert: give the key of that certificate";
  if (/unable to verify|self[- ]signed|unable to get (local )?issuer/i.test(text)) {
    return "the inventory's tls.cacert does not sign the member's certificate (or no cacert is given): give the CA that signed the member's --cert-file";
  }
  if (/certificate required|alert bad certificate/i.test(text)) {
    return 'the member wants a client certificate signed by its --trusted-ca-file: set the TLS files of the inventory (tls.cert and tls.key, signed by that CA)';
  }
  if (/unknown ca/i.test(text)) return "the member's --trusted-ca-file does not sign the inventory's client certificate (tls.cert)";
  if (/expired/i.test(text)) return 'a certificate has expired (the member\'s or the inventory\'s client certificate): renew it';
  if (/hostname|altnames|IP: .* is not in the cert/i.test(text)) return "the member's certificate does not name the host of its client URL: use a URL its certificate covers";
  if (/wrong version number|PEM/i.test(text)) return 'check the TLS files of the inventory (cacert, cert, key) and the member URL scheme (http vs https)';
  if (TLS_TROUBLE.test(text)) return 'check the TLS files of the inventory (cacert, cert, key) and the member URL scheme';
  return undefined;
}

export interface ClassifyContext {
  /** Member name (from the inventory) or endpoint: every message names it. */
  member: string;
  /** What was being done, e.g. "status", "defragment". */
  op: string;
}

/** The StepError kind and hint for an error thrown by an etcd3 call. */
export function classify(err: unknown): { kind: FailureKind; hint?: string } {
  if (err instanceof StepError) return { kind: err.kind, ...(err.hint ? { hint: err.hint } : {}) };
  if (err instanceof GRPCResourceExhastedError) {
    return { kind: 'precondition', hint: 'the NOSPACE alarm is armed: run the nospace-recovery runbook (compact, defragment, disarm)' };
  }
  if (err instanceof EtcdInvalidAuthTokenError) return { kind: 'transient' };
  const klass = errorClass(err);
  if (klass === 'auth' || klass === 'tls') return { kind: 'invalid', hint: accessHint(err)! };
  if (err instanceof GRPCOutOfRangeError) return { kind: 'invalid' };
  if (err instanceof GRPCFailedPreconditionError) return { kind: 'precondition' };
  if (err instanceof GRPCDeadlineExceededError) return { kind: 'transient', hint: 'the member did not answer in time (overloaded, frozen, or the network is down)' };
  if (err instanceof GRPCUnavailableError) return { kind: 'transient', hint: 'is the member running and its client URL right?' };
  if (err instanceof GRPCCancelledError) return { kind: 'transient' };
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
