/**
 * The real CLI (`bin/runbook.js`) as a child process, the way an operator runs it: one helper for every integration
 * test. It never rejects (a test asserts on the exit code and the output), sets NO_COLOR (output compares as text)
 * and always has a timeout, so a hung run fails its test instead of hanging the suite.
 */
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const ROOT = resolve(import.meta.dirname, '../..');
export const bin = join(ROOT, 'bin/runbook.js');

export interface CliOptions {
  /** Added to the environment (NO_COLOR=1 always). */
  env?: Record<string, string>;
  /** Default 60 s. */
  timeout?: number;
  /** Default a pipe nobody writes to; 'ignore' gives the CLI no stdin at all (no prompt can wait on it). */
  stdin?: 'ignore' | 'pipe';
  /** false: the child gets only `env` (see isolatedEnv), not this process's environment. Default true. */
  extendEnv?: boolean;
  /** Also collect stdout and stderr interleaved as `all`. */
  all?: boolean;
}

export type CliRun = ResultPromise<{ reject: false; timeout: number; env: Record<string, string>; extendEnv: boolean; stdin: 'ignore' | 'pipe'; all: boolean }>;

export function cli(args: string[], opts: CliOptions = {}): CliRun {
  return execa(process.execPath, [bin, ...args], {
    reject: false,
    timeout: opts.timeout ?? 60_000,
    env: { ...opts.env, NO_COLOR: '1' },
    extendEnv: opts.extendEnv ?? true,
    stdin: opts.stdin ?? 'pipe',
    all: opts.all ?? false,
  });
}

/**
 * This process's environment without the variables `drop` names: for a CLI run (with `extendEnv: false`) that the
 * developer's shell (ETCDCTL_ENDPOINTS, RUNBOOK_INVENTORY, …) must not steer.
 */
export function isolatedEnv(drop: (name: string) => boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !drop(k)) env[k] = v;
  return env;
}
