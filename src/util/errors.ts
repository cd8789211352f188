/**
 * Error kinds that reach the user. Anything that is the user's fault (bad runbook, bad flag, bad inventory)
 * is a UserError and exits 2 without a stack trace. A StepError is a failure of the outside world during a
 * run: it names the step, the member and what to do next, and exits 1.
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  invalidInput: 2,
  awaitingApproval: 3,
  locked: 4,
  denied: 5,
  critical: 6,
  interrupted: 130,
  terminated: 143,
} as const;

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

/** A problem with what the user gave us. Printed as is, exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
  readonly diagnostics: Diagnostic[];
  readonly exitCode: number;
  constructor(message: string, opts: { diagnostics?: Diagnostic[]; exitCode?: number } = {}) {
    super(message);
    this.diagnostics = opts.diagnostics ?? [];
    this.exitCode = opts.exitCode ?? ExitCode.invalidInput;
  }
}

/**
 * Kinds used by retry policies (`nonRetryable: [precondition]`) and by the engine.
 * - transient: the outside world may get better by itself (timeouts, unavailable member)
 * - precondition: the cluster is not in a state where the step is safe (quorum, CORRUPT alarm); a human must look
 * - invalid: the inputs are wrong; retrying cannot help
 * - timeout: the step's own deadline passed
 * - cancelled: the operator interrupted the run
 * - unimplemented: the action has no implementation in this build
 */
export type StepErrorKind =
  | 'transient'
  | 'precondition'
  | 'invalid'
  | 'timeout'
  | 'cancelled'
  | 'unimplemented'
  | 'denied'
  /** an aborted attempt did not stop: never retried, a human must look */
  | 'stuck'
  | 'failed';

export class StepError extends Error {
  override name = 'StepError';
  readonly kind: StepErrorKind;
  readonly member: string | undefined;
  readonly hint: string | undefined;
  constructor(kind: StepErrorKind, message: string, opts: { member?: string; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.member = opts.member;
    this.hint = opts.hint;
  }
}

/** The message of anything thrown, never its stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.constructor.name;
  return String(err);
}
