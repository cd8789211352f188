import { describe, expect, it } from 'vitest';
import {
  castGrpcError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
} from 'etcd3';
import { classify, errorClass, isAlreadyCompacted, isDeadlineExceeded, isFutureRevision, isNoSpace, isNotLeader, isOutcomeUnknown, shortGrpcMessage, toStepError } from '../../../src/etcd/errors.ts';
import { StepError } from '../../../src/util/errors.ts';

/** An error as grpc-js hands it to etcd3 (a plain Error with a numeric code), cast the way etcd3 casts it. */
function grpc(code: number, message: string): Error {
  return castGrpcError(Object.assign(new Error(message), { code }));
}

const NOSPACE = () => grpc(8, '8 RESOURCE_EXHAUSTED: etcdserver: mvcc: database space exceeded');
const COMPACTED = () => grpc(11, '11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted');
const FUTURE = () => grpc(11, '11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision');
const REFUSED = () => grpc(14, '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ');
const BAD_CERT = () =>
  grpc(14, '14 UNAVAILABLE: No connection established. Last error: 40:error:0A000412:SSL routines:ssl3_read_bytes:ssl/tls alert bad certificate (2026-01-01T00:00:00Z).');
const DEADLINE = () => grpc(4, '4 DEADLINE_EXCEEDED: Deadline exceeded after 5.001s');
const NOT_LEADER = () => grpc(9, '9 FAILED_PRECONDITION: etcdserver: not leader');

describe('etcd error classification', () => {
  it('is by class: etcd3 names every error "Error"', () => {
    const e = NOSPACE();
    expect(e).toBeInstanceOf(GRPCResourceExhastedError);
    expect(e.name).toBe('Error');
    expect(COMPACTED()).toBeInstanceOf(GRPCOutOfRangeError);
    expect(REFUSED()).toBeInstanceOf(GRPCUnavailableError);
    expect(DEADLINE()).toBeInstanceOf(GRPCDeadlineExceededError);
  });

  it('maps NOSPACE to a precondition that names the member and what to do', () => {
    const err = toStepError(NOSPACE(), { member: 'm2', op: 'put /runbook/canary' });
    expect(err).toBeInstanceOf(StepError);
    expect(err).toMatchObject({ kind: 'precondition', member: 'm2', message: 'm2: put /runbook/canary: mvcc: database space exceeded' });
    expect(err.hint).toMatch(/nospace-recovery/);
    expect(isNoSpace(err)).toBe(true);
    expect(isNoSpace(NOSPACE())).toBe(true);
    expect(isNoSpace(COMPACTED())).toBe(false);
  });

  it('tells "already compacted" from "future revision"', () => {
    expect(isAlreadyCompacted(COMPACTED())).toBe(true);
    expect(isAlreadyCompacted(toStepError(COMPACTED(), { member: 'm1', op: 'compact' }))).toBe(true);
    expect(isAlreadyCompacted(FUTURE())).toBe(false);
    expect(isFutureRevision(FUTURE())).toBe(true);
    expect(classify(FUTURE()).kind).toBe('invalid');
  });

  it('treats an unreachable or slow member as transient, outcome unknown', () => {
    const refused = toStepError(REFUSED(), { member: 'm3', op: 'status' });
    expect(refused.kind).toBe('transient');
    expect(refused.message).toBe('m3: status: connection refused (No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1.)');
    expect(isOutcomeUnknown(refused)).toBe(true);
    const slow = toStepError(DEADLINE(), { member: 'm1', op: 'defragment' });
    expect(slow.kind).toBe('transient');
    expect(isDeadlineExceeded(slow)).toBe(true);
    expect(isOutcomeUnknown(slow)).toBe(true);
    expect(isOutcomeUnknown(NOSPACE())).toBe(false);
  });

  it('treats TLS and credential trouble as invalid input (retrying cannot help)', () => {
    expect(classify(BAD_CERT())).toMatchObject({ kind: 'invalid', hint: expect.stringMatching(/TLS files/) });
    const denied = castGrpcError(Object.assign(new Error('7 PERMISSION_DENIED: etcdserver: permission denied'), { code: 7 }));
    expect(denied).toBeInstanceOf(EtcdPermissionDeniedError);
    expect(classify(denied).kind).toBe('invalid');
  });

  it('a member that hung up during the TLS handshake (a process dying at its start) is unreachable, not a TLS problem', () => {
    // What grpc-js reported when try-restart polled a member that accepted the connection and then exited on its
    // damaged db: read as "tls", it made the tool refuse a power-loss restore as "cannot read the cluster".
    const dying = grpc(14, '14 UNAVAILABLE: No connection established. Last error: Error: Client network socket disconnected before secure TLS connection was established. Resolution note: ');
    expect(errorClass(dying)).toBe('unreachable');
    expect(classify(dying).kind).toBe('transient');
    expect(errorClass(BAD_CERT())).toBe('tls');
  });

  it('recognizes a move-leader sent to a follower', () => {
    expect(isNotLeader(NOT_LEADER())).toBe(true);
    expect(classify(NOT_LEADER()).kind).toBe('precondition');
  });

  it('keeps StepErrors as they are and unknown errors as failed', () => {
    const own = new StepError('timeout', 'x', { member: 'm1' });
    expect(toStepError(own, { member: 'm2', op: 'y' })).toBe(own);
    expect(classify(new TypeError('boom')).kind).toBe('failed');
  });

  it('shortens messages to what a chat line can hold', () => {
    expect(shortGrpcMessage(new Error(`14 UNAVAILABLE: ${'x'.repeat(1000)}`)).length).toBeLessThanOrEqual(300);
  });
});
