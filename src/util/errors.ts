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
  /** The machine is not usable as it is (a state dir not writable or not a directory, a disk full): the message says what to fix. */
  environment: 7,
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

const MAX_QUOTED = 80;
const MAX_MESSAGE = 500;
/** More than this many problems in one file are summarized: nobody reads 80,000 lines. */
const MAX_DIAGNOSTICS = 200;

/**
 * Keep a diagnostic readable whatever the input: long quoted echoes of the input are shortened, and the whole
 * message is capped (a 1 MiB scalar must not come back as a 1 MiB error line).
 */
export function clipMessage(message: string): string {
  let out = message.replace(/"(?:[^"\\]|\\.){80,}"/g, (q) => `${q.slice(0, MAX_QUOTED - 20)}…"`);
  out = out.replace(/\r?\n/g, ' ');
  return out.length > MAX_MESSAGE ? `${out.slice(0, MAX_MESSAGE - 1)}…` : out;
}

/** A problem with what the user gave us. Printed as is, exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
  readonly diagnostics: Diagnostic[];
  readonly exitCode: number;
  constructor(message: string, opts: { diagnostics?: Diagnostic[]; exitCode?: number } = {}) {
    super(message);
    const all = opts.diagnostics ?? [];
    const shown = all.slice(0, MAX_DIAGNOSTICS).map((d) => ({ ...d, message: clipMessage(d.message) }));
    const rest = all[MAX_DIAGNOSTICS];
    if (rest) shown.push({ ...rest, message: `… and ${all.length - MAX_DIAGNOSTICS} more problems (fix these first)` });
    this.diagnostics = shown;
    this.exitCode = opts.exitCode ?? ExitCode.invalidInput;
  }
}

/**
 * Every way a step can fail: one list, the type derived from it. Retry policies name these (`nonRetryable:
 * [precondition]`; src/execute/retry.ts decides, and lists the kinds never retried whatever the policy says).
 * - transient: the outside world may get better by itself (timeouts of a call, an unavailable member)
 * - precondition: the cluster is not in a state where the step is safe (quorum, CORRUPT alarm); a human must look
 * - invalid: the inputs are wrong; retrying cannot help
 * - timeout: the step's own deadline passed
 * - cancelled: the operator interrupted the run
 * - unimplemented: the action has no implementation in this build
 * - denied: an approval was refused
 * - paused: an approval is needed and nobody can be asked here (no TTY, no --yes): the run stops, resumable (exit 3)
 * - stuck: an aborted attempt did not stop: a human must look
 * - failed: anything else
 * - engine: the engine itself failed (a bug), not a step: only ever the error of a whole run
 */
export const FAILURE_KINDS = ['transient', 'precondition', 'invalid', 'timeout', 'cancelled', 'unimplemented', 'denied', 'paused', 'stuck', 'failed', 'engine'] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

/** Where a step error happened and how long the attempt ran: set by the step runner, which knows. */
export interface StepErrorOptions {
  member?: string;
  hint?: string;
  /** The error this one explains (a gRPC error, an errno error): kept, and summarized in the journal. */
  cause?: unknown;
  stepId?: string;
  /** The forEach item's key. */
  item?: string;
  attempt?: number;
  durationMs?: number;
}

/** A chat line is about this long; longer messages are clipped for it (the full message stays in the journal). */
const SHORT_MESSAGE_MAX = 200;

export class StepError extends Error {
  override name = 'StepError';
  readonly kind: FailureKind;
  readonly member: string | undefined;
  readonly hint: string | undefined;
  readonly stepId: string | undefined;
  readonly item: string | undefined;
  readonly attempt: number | undefined;
  readonly durationMs: number | undefined;
  constructor(kind: FailureKind, message: string, opts: StepErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.member = opts.member;
    this.hint = opts.hint;
    this.stepId = opts.stepId;
    this.item = opts.item;
    this.attempt = opts.attempt;
    this.durationMs = opts.durationMs;
  }

  /** One line fit for a chat message: the step (and item) when known, then the first line of the message, clipped. */
  get shortMessage(): string {
    return shortMessage(this.message, this.stepId === undefined ? undefined : this.item === undefined ? this.stepId : `${this.stepId}[${this.item}]`);
  }
}

/** `<where>: <first line of message>`, at most SHORT_MESSAGE_MAX characters; `where` is left out when the message starts with it. */
export function shortMessage(message: string, where?: string): string {
  const line = message.split(/\r?\n/, 1)[0]!.trim();
  const text = where && !line.startsWith(where) ? `${where}: ${line}` : line;
  return text.length > SHORT_MESSAGE_MAX ? `${text.slice(0, SHORT_MESSAGE_MAX - 1)}…` : text;
}

/** The message of anything thrown, never its stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.constructor.name;
  return String(err);
}

/** What an errno means for the operator, and what to do about it. */
const ERRNO_ADVICE: Record<string, string> = {
  EACCES: 'permission denied: run as a user who may write there, or choose another place (--state-dir or RUNBOOK_STATE_DIR for runs)',
  EPERM: 'operation not permitted: run as a user who may do this, or choose another place (--state-dir or RUNBOOK_STATE_DIR for runs)',
  EROFS: 'the filesystem is read-only: choose a writable place (--state-dir or RUNBOOK_STATE_DIR for runs)',
  ENOTDIR: 'a part of this path is a file, not a directory: fix the path (--state-dir or RUNBOOK_STATE_DIR for runs)',
  ENOENT: 'no such file or directory: create it, or fix the path',
  EISDIR: 'this is a directory, a file was expected: fix the path',
  ENOSPC: 'no space left on the device: free space there, or choose another place',
  EDQUOT: 'disk quota exceeded: free space there, or choose another place',
  EMFILE: 'too many open files: raise the limit (ulimit -n) and try again',
  ENAMETOOLONG: 'the path is too long: choose a shorter one',
  ELOOP: 'too many symbolic links in the path: fix the path',
};

/**
 * A failure of the machine rather than of runbook (a Node system error with an errno code and a path), as a
 * UserError that says what to do and exits 7; undefined for anything else.
 */
export function environmentError(err: unknown): UserError | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException;
  const advice = e.code ? ERRNO_ADVICE[e.code] : undefined;
  if (!advice) return undefined;
  const dest = (e as { dest?: unknown }).dest;
  const where = e.path ? ` ${e.path}${typeof dest === 'string' ? ` → ${dest}` : ''}` : '';
  return new UserError(`cannot ${e.syscall ?? 'use'}${where} (${e.code}): ${advice}`, { exitCode: ExitCode.environment });
}
