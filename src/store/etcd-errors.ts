/** The two ways the management etcd store fails a command or a run. */
import { shortGrpcMessage } from '../etcd/errors.ts';
import { ExitCode, StepError, UserError } from '../util/errors.ts';

/**
 * Errors from the management etcd name the store and what was being done, never the TLS material. They are not
 * the user's mistake, but they are not bugs either: printed as they are, exit 1.
 */
export function storeError(op: string, err: unknown): Error {
  if (err instanceof StepError || err instanceof UserError) return err;
  return new UserError(`the management etcd did not answer (${op}): ${shortGrpcMessage(err)}`, { exitCode: ExitCode.failed });
}

/** The error that stops a runner that is no longer the lock holder. */
export function fencingError(why: string): StepError {
  return new StepError('precondition', `lost the run lock: another runner took over, or may take over, this run (${why}); this runner stops without running the next step`, {
    hint: 'see who runs it now: runbook status RUN --store …',
  });
}
