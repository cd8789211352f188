/** One call to one member: deadline, cancellation, and errors that name the member. */
import { StepError } from '../util/errors.ts';
import { isDeadlineExceeded, toStepError } from './errors.ts';
import type { EtcdClient } from './client.ts';
import type { EtcdPool } from './pool.ts';

export interface CallOpts {
  /** This call's deadline from now (default: the pool's request timeout). */
  timeoutMs?: number;
  /** An absolute deadline (epoch ms) the call must not outlive, e.g. the step's. */
  deadline?: number;
  /** Abandons the wait when aborted (the server may still finish the request). */
  signal?: AbortSignal;
}

export interface GrpcOptions {
  deadline: number;
}

/**
 * Run `fn` against the member's client with an explicit deadline. Failures become StepErrors naming the member;
 * a deadline that was the step's own becomes kind `timeout`.
 */
export async function callMember<T>(
  pool: EtcdPool,
  endpointOrName: string,
  op: string,
  fn: (client: EtcdClient, options: GrpcOptions) => Promise<T>,
  opts: CallOpts = {},
): Promise<T> {
  const member = pool.nameOf(endpointOrName);
  const own = Date.now() + (opts.timeoutMs ?? pool.requestTimeoutMs);
  const stepBound = opts.deadline !== undefined && opts.deadline < own;
  const deadline = stepBound ? opts.deadline! : own;
  if (opts.signal?.aborted) throw new StepError('cancelled', `${member}: ${op}: cancelled`, { member });
  if (deadline <= Date.now()) throw new StepError('timeout', `${member}: ${op}: the step's deadline has passed`, { member });
  const client = pool.member(endpointOrName);
  try {
    return await abortable(fn(client, { deadline }), opts.signal);
  } catch (err) {
    if (err instanceof Aborted) throw new StepError('cancelled', `${member}: ${op}: cancelled`, { member });
    if (stepBound && isDeadlineExceeded(err)) {
      throw new StepError('timeout', `${member}: ${op}: the step's deadline passed before the member answered`, { member, cause: err });
    }
    throw toStepError(err, { member, op });
  }
}

class Aborted extends Error {}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}
