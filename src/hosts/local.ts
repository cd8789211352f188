/** The Host for this machine: node:fs for files, execa (argv, no shell) for commands. */
import { forEachChunk } from '../util/file-chunks.ts';
import { createReadStream, createWriteStream } from 'node:fs';
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, writeSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { copyToFreshName } from '../drivers/safe-fs.ts';
import { StepError, messageOf } from '../util/errors.ts';
import type { Host, HostRunOptions, HostRunResult, HostStat } from './types.ts';

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** The inherited environment without variables that start with `prefix`. */
function envWithout(prefix: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !(prefix && k.startsWith(prefix))) env[k] = v;
  return env;
}

/** Run an argv with execa: never rejects for an exit code; cancellation, timeout and spawn failures become StepErrors. */
export async function runArgv(argv: string[], opts: HostRunOptions = {}, where = 'this machine'): Promise<HostRunResult> {
  const [file, ...args] = argv;
  if (!file) throw new StepError('invalid', 'empty command');
  const r = await execa(file, args, {
    reject: false,
    env: { ...envWithout(opts.dropEnvPrefix), ...opts.env },
    extendEnv: false,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    forceKillAfterDelay: 5_000,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    ...(opts.inputFile !== undefined ? { inputFile: opts.inputFile } : opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    maxBuffer: 16 * 1024 * 1024,
    stripFinalNewline: false,
  });
  if (r.isCanceled) throw new StepError('cancelled', `${basename(file)} on ${where} was cancelled`);
  if (r.timedOut) throw new StepError('timeout', `${basename(file)} on ${where} did not finish within ${Math.round((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)}s and was killed`);
  if (r.exitCode === undefined) {
    const cause = r.cause as NodeJS.ErrnoException | undefined;
    if (cause?.code === 'ENOENT') {
      throw new StepError('failed', `${file} is not installed on ${where} (not found)`, { hint: 'install it, or set etcdBinDir in the inventory' });
    }
    throw new StepError('failed', `${basename(file)} on ${where} ${r.signal ? `was killed by ${r.signal}` : `could not run: ${messageOf(r.cause)}`}`);
  }
  return { exitCode: r.exitCode, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** fsync a file or directory; best effort (some file systems refuse directories). */
export function fsyncPath(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    // not supported here: nothing more we can do
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** sha256 of a file, read through one reused buffer (constant memory, no garbage per chunk). */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await forEachChunk(path, signal, (chunk) => hash.update(chunk));
  return hash.digest('hex');
}

export const localHost: Host = {
  label: 'this machine',
  remote: false,

  run: (argv, opts) => runArgv(argv, opts),

  async stat(path) {
    try {
      const s = statSync(path);
      const out: HostStat = { type: s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other', size: s.size, mtimeMs: s.mtimeMs };
      return out;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StepError('failed', `cannot stat ${path}: ${messageOf(err)}`);
    }
  },

  async mkdir(path) {
    mkdirSync(path, { recursive: true });
  },

  async rename(from, to) {
    if (existsSync(to)) throw new StepError('precondition', `not moving ${from}: ${to} already exists`, { hint: 'look at both and move one away by hand' });
    try {
      renameSync(from, to);
    } catch (err) {
      throw new StepError('failed', `cannot move ${from} to ${to}: ${messageOf(err)}`, { cause: err });
    }
    fsyncPath(dirname(to));
    if (dirname(from) !== dirname(to)) fsyncPath(dirname(from));
  },

  sha256: (path) => sha256File(path),

  async readText(path, maxBytes = 1024 * 1024) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StepError('failed', `cannot read ${path}: ${messageOf(err)}`);
    }
    try {
      const buf = Buffer.alloc(maxBytes);
      const n = readSync(fd, buf, 0, maxBytes, 0);
      return buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
  },

  async writeTextAtomic(path, text) {
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
    let mode = 0o644;
    try {
      mode = statSync(path).mode & 0o7777;
    } catch {
      // a new file
    }
    const fd = openSync(tmp, 'wx', mode);
    try {
      fchmodSync(fd, mode); // the umask does not narrow a replaced file's mode
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    fsyncPath(dir);
  },

  copyToFreshName: async (from, base, ext = '') => copyToFreshName(from, base, ext),

  async putFile(localPath, to, opts = {}) {
    if (existsSync(to)) throw new StepError('precondition', `not copying ${localPath}: ${to} already exists`);
    mkdirSync(dirname(to), { recursive: true });
    const tmp = join(dirname(to), `.${basename(to)}.tmp-${process.pid}-${Date.now()}`);
    await pipeline(createReadStream(localPath), createWriteStream(tmp, { flags: 'wx', mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
    fsyncPath(tmp);
    await localHost.rename(tmp, to);
  },

  async list(dir) {
    try {
      return readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new StepError('failed', `cannot list ${dir}: ${messageOf(err)}`);
    }
  },

  async fsync(path) {
    fsyncPath(path);
  },
};
