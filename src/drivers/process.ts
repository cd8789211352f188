/**
 * The `process` member driver: a local command line (argv, no shell) and a pid file. Rehearsals and tests
 * drive their etcd members through it; operators can use it for hand-run members.
 *
 * Safety: a pid is only ever signalled when it is alive AND its /proc/<pid>/cmdline is the command the
 * inventory names (same program, same --name / --data-dir when the command has them), so a pid file left
 * over from an earlier boot can never make us kill an unrelated process that reused the pid.
 */
import { isAlive } from '../util/pids.ts';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DriverSpec, MemberSpec } from '../inventory/types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import type { MemberDriver } from './types.ts';

export type ProcessSpec = Extract<DriverSpec, { type: 'process' }>;

/** Flags that identify which instance a process is: when the command has them, a live process must match them too. */
const IDENTITY_FLAGS = ['name', 'data-dir'];
const POLL_MS = 50;

// ---- argv helpers (pure) -------------------------------------------------------------------------

function flagName(flag: string): string {
  return flag.replace(/^-+/, '');
}

/** Index of each occurrence of a flag in argv (from argv[1]), with where its value is. */
function findFlag(command: string[], flag: string): { index: number; form: 'eq' | 'sep' | 'bare'; value: string }[] {
  const name = flagName(flag);
  const found: { index: number; form: 'eq' | 'sep' | 'bare'; value: string }[] = [];
  for (let i = 1; i < command.length; i++) {
    const arg = command[i]!;
    const m = /^--?([^=-][^=]*)(?:=(.*))?$/s.exec(arg);
    if (!m || m[1] !== name) continue;
    if (m[2] !== undefined) {
      found.push({ index: i, form: 'eq', value: m[2] });
    } else {
      const next = command[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        found.push({ index: i, form: 'sep', value: next });
        i++;
      } else {
        found.push({ index: i, form: 'bare', value: 'true' });
      }
    }
  }
  return found;
}

/**
 * The value of `--flag` in an argv (`--flag=value`, `--flag value`, `-flag=value`; a bare boolean flag is "true").
 * Like Go's flag package, the last occurrence wins. argv[0] is the program and never a flag.
 *
 * @example getFlag(['etcd', '--quota-backend-bytes', '8589934592'], 'quota-backend-bytes') // '8589934592'
 */
export function getFlag(command: string[], flag: string): string | undefined {
  return findFlag(command, flag).at(-1)?.value;
}

/**
 * A copy of argv with `--flag` set to value: every occurrence is rewritten in its own form
 * (`--flag value` stays two words), or `--flag=value` is appended when the flag is absent.
 *
 * @example setFlag(['etcd', '--name=a'], 'quota-backend-bytes', '8GiB') // ['etcd', '--name=a', '--quota-backend-bytes=8GiB']
 */
export function setFlag(command: string[], flag: string, value: string): string[] {
  const name = flagName(flag);
  const out = [...command];
  const found = findFlag(command, name);
  if (found.length === 0) return [...out, `--${name}=${value}`];
  for (const f of found) {
    const dashes = /^-+/.exec(out[f.index]!)![0];
    if (f.form === 'sep') out[f.index + 1] = value;
    else out[f.index] = `${dashes}${name}=${value}`;
  }
  return out;
}

// ---- /proc inspection --------------------------------------------------------------------------

/** argv of a live process, or undefined when it is gone or a zombie (zombies have an empty cmdline). */
export function processArgv(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** True when the pid is a live process (not a zombie waiting to be reaped). */
/** Does this live argv belong to the instance `command` describes? */
export function argvMatches(live: string[], command: string[]): boolean {
  const [liveProgram] = live;
  const [program] = command;
  if (liveProgram === undefined || program === undefined) return false;
  if (liveProgram !== program && basename(liveProgram) !== basename(program)) return false;
  for (const flag of IDENTITY_FLAGS) {
    const want = getFlag(command, flag);
    if (want !== undefined && getFlag(live, flag) !== want) return false;
  }
  return true;
}

function readPidFile(pidFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

function writeFileAtomic(file: string, data: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, file);
}

/** The pid in the pid file when it is a live process running this command; never a recycled pid. */
function livePid(spec: ProcessSpec, command: string[] = spec.command): number | undefined {
  const pid = readPidFile(spec.pidFile);
  if (pid === undefined || !isAlive(pid)) return undefined;
  const live = processArgv(pid);
  return live !== undefined && argvMatches(live, command) ? pid : undefined;
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) return true;
    if (Date.now() >= until) return false;
    await sleep(POLL_MS);
  }
}

// ---- start / stop / status ------------------------------------------------------------------------

/**
 * Start the command detached (own session, survives us), stdout+stderr appended to logFile, and write its pid
 * to pidFile atomically. Idempotent: when the pid file names a live process running this command, nothing is
 * started and that pid is returned.
 */
/**
 * runbook's own variables that etcd would read as its flags (it maps every ETCD_<FLAG> to --<flag>): ETCD_VERSION
 * (which release the scripts chose) is `--version` to etcd, and 3.4 refuses to start on "3.4.23" as its value.
 */
const NOT_FOR_ETCD = ['ETCD_VERSION', 'ETCD_BIN_DIR'];

function inheritedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of NOT_FOR_ETCD) delete env[k];
  return env;
}

export async function startProcess(
  spec: ProcessSpec,
  opts: { signal?: AbortSignal } = {},
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const [program, ...args] = spec.command;
  if (program === undefined) throw new StepError('invalid', `process driver: empty command (pid file ${spec.pidFile})`);
  if (opts.signal?.aborted) throw new StepError('cancelled', `not starting ${basename(program)}: cancelled`);
  const running = livePid(spec);
  if (running !== undefined) return { pid: running, alreadyRunning: true };

  let out: number | 'ignore' = 'ignore';
  if (spec.logFile) {
    mkdirSync(dirname(spec.logFile), { recursive: true });
    out = openSync(spec.logFile, 'a');
  }
  try {
    const child = spawn(program, args, {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...inheritedEnv(), ...spec.env },
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    }).catch((err: unknown) => {
      throw new StepError('failed', `cannot start ${program}: ${messageOf(err)}`, {
        hint: 'check the command in the inventory (and PATH / etcdBinDir)',
        cause: err,
      });
    });
    child.unref();
    writeFileAtomic(spec.pidFile, `${pid}\n`);
    return { pid, alreadyRunning: false };
  } finally {
    if (typeof out === 'number') closeSync(out);
  }
}

/**
 * Stop the process the pid file names, if it is alive and running this command: SIGTERM, wait up to timeoutMs,
 * then SIGKILL (or SIGKILL straight away). Removes the pid file once the process is gone.
 */
export async function stopProcess(
  spec: ProcessSpec,
  opts: { signal?: 'SIGTERM' | 'SIGKILL'; timeoutMs?: number } = {},
): Promise<{ wasRunning: boolean; pid?: number; killed?: boolean }> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const pid = livePid(spec);
  if (pid === undefined) return { wasRunning: false };
  const signal = opts.signal ?? 'SIGTERM';
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new StepError('failed', `cannot signal pid ${pid}: ${messageOf(err)}`);
  }
  let killed = signal === 'SIGKILL';
  if (!(await waitForExit(pid, signal === 'SIGKILL' ? 5_000 : timeoutMs))) {
    if (signal === 'SIGKILL') throw new StepError('timeout', `pid ${pid} did not exit 5s after SIGKILL`);
    killed = true;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited between the check and the kill
    }
    if (!(await waitForExit(pid, 5_000))) throw new StepError('timeout', `pid ${pid} did not exit 5s after SIGKILL`);
  }
  if (readPidFile(spec.pidFile) === pid) rmSync(spec.pidFile, { force: true });
  return { wasRunning: true, pid, killed };
}

export async function processStatus(spec: ProcessSpec): Promise<{ running: boolean; pid?: number }> {
  const pid = livePid(spec);
  return pid === undefined ? { running: false } : { running: true, pid };
}

// ---- flag overrides that survive restarts -------------------------------------------------------------

interface ArgvSidecar {
  version: 1;
  /** Flags changed through the driver, applied over the inventory's command on every start. */
  flags: Record<string, string>;
  /** The resulting argv, for humans reading the file. */
  command: string[];
}

/** `<pidFile>.argv.json`: flag changes made through the driver (the inventory itself is never rewritten). */
export function sidecarPath(spec: ProcessSpec): string {
  return `${spec.pidFile}.argv.json`;
}

function readSidecar(spec: ProcessSpec): ArgvSidecar | undefined {
  const file = sidecarPath(spec);
  if (!existsSync(file)) return undefined;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<ArgvSidecar>;
    if (data.version !== 1 || typeof data.flags !== 'object' || data.flags === null) throw new Error('unknown format');
    return { version: 1, flags: data.flags, command: data.command ?? [] };
  } catch (err) {
    throw new StepError('invalid', `cannot read ${file}: ${messageOf(err)}`, { hint: 'fix or move the file aside' });
  }
}

/** The argv a start would run: the inventory's command with the flags set through the driver applied. */
export function effectiveCommand(spec: ProcessSpec): string[] {
  const sidecar = readSidecar(spec);
  let command = spec.command;
  for (const [flag, value] of Object.entries(sidecar?.flags ?? {})) command = setFlag(command, flag, value);
  return command;
}

/** MemberDriver over a local process. getFlag reads the running process's argv (what is in effect) when it runs. */
export function processDriver(member: MemberSpec): MemberDriver {
  const spec = member.driver;
  if (spec.type !== 'process') throw new StepError('invalid', `member ${member.name}: not a process driver`, { member: member.name });
  if (member.ssh) {
    throw new StepError('unimplemented', `member ${member.name}: the process driver runs members on this machine only (ssh is set)`, {
      member: member.name,
    });
  }
  const current = (): ProcessSpec => ({ ...spec, command: effectiveCommand(spec) });
  /** The command line in effect and where it was read (MemberDriver.argv). */
  const commandLine = async (): Promise<{ argv: string[]; from: string }> => {
    const command = current();
    const pid = livePid(command);
    const live = pid === undefined ? undefined : processArgv(pid);
    return live ? { argv: live, from: `argv of pid ${pid}` } : { argv: command.command, from: 'configured command (not running)' };
  };

  return {
    async start(opts = {}) {
      await startProcess(current(), opts.signal ? { signal: opts.signal } : {});
    },
    async stop(opts = {}) {
      await stopProcess(current(), {
        signal: opts.force ? 'SIGKILL' : 'SIGTERM',
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      });
    },
    status: () => processStatus(current()),
    argv: commandLine,
    async getFlag(flag) {
      return getFlag((await commandLine()).argv, flag);
    },
    async setFlag(flag, value) {
      const name = flagName(flag);
      const previous = getFlag(effectiveCommand(spec), name);
      if (previous === value) return { changed: false, previous };
      const flags = { ...readSidecar(spec)?.flags, [name]: value };
      let command = spec.command;
      for (const [f, v] of Object.entries(flags)) command = setFlag(command, f, v);
      const sidecar: ArgvSidecar = { version: 1, flags, command };
      writeFileAtomic(sidecarPath(spec), `${JSON.stringify(sidecar, null, 2)}\n`);
      return previous === undefined ? { changed: true } : { changed: true, previous };
    },
  };
}

export { isAlive };
