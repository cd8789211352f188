/**
 * One run per cluster, machine-wide. A run holds one lock file per key of its cluster's identity: `cluster-<id>`
 * when a member answered, and `peer-<address>` for each peer URL (resolved, normalized). Two runs on one cluster
 * share at least one key whatever inventory name, URL spelling, state dir or user they came through, and also
 * when one of them saw the cluster answer and the other did not (the cluster id alone would miss that; the peer
 * URLs alone would miss a cluster reached under another host name).
 *
 * The files live in one directory for the whole machine (RUNBOOK_LOCK_DIR, else /run/lock/runbook, else
 * /var/lock/runbook, else <tmp>/runbook-locks; created world-writable and sticky). Taking a key is atomic: the
 * holder record is written and fsync'd to a temp file, then link(2)ed to the key's name — a lock file never
 * exists without its holder in it, and of several racing links exactly one succeeds. Every key file of one
 * acquisition is a hard link of the same inode: the inode is how a holder recognizes its own lock.
 *
 * A lock is stale when its run's journal has ended (cleared automatically: a kill right after `run.finished`
 * must not block the next run) or when its pid is dead on this host (the same run may take it over on resume;
 * another run needs --break-lock). Stale files are moved aside (`<file>.stale-<ts>-<rand>`), never lost.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { isAlive as pidAlive } from '../util/pids.ts';
import { mkdirp } from '../util/mkdirp.ts';

export { isAlive as pidAlive } from '../util/pids.ts';

export interface LockHolder {
  runId: string;
  pid: number;
  host: string;
  user?: string;
  since: string;
  command: string;
  /** The run's journal file: once its last record is `run.finished`, the lock is stale whatever the pid. */
  journal?: string;
  /** Every key this acquisition holds. */
  keys?: string[];
}

export interface HeldLock {
  /** The first key file (messages). */
  file: string;
  files: string[];
  /** The keys, joined (the store interface's `key`). */
  key: string;
  keys: string[];
  release(): void;
}

export interface LockOptions {
  breakLock?: boolean;
  /** The run's journal file (a file-store run): lets others clear the lock once the run has ended. */
  journal?: string;
  /** How messages name the cluster (an inventory name); identity is in the keys. */
  label?: string;
  /** A live holder of this same run id is displaced (a fenced takeover through a remote store, see executor). */
  takeOverSameRun?: boolean;
  /** Override the machine-wide directory (tests; RUNBOOK_LOCK_DIR does the same for whole processes). */
  dir?: string;
}

const SYSTEM_DIRS = ['/run/lock', '/var/lock'];

/** The machine-wide lock directory (not created). */
export function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNBOOK_LOCK_DIR) return path.resolve(env.RUNBOOK_LOCK_DIR);
  for (const d of SYSTEM_DIRS) {
    try {
      if (fs.statSync(d).isDirectory()) return path.join(d, 'runbook');
    } catch {
      /* not on this system */
    }
  }
  return path.join(os.tmpdir(), 'runbook-locks');
}

/** Create the lock dir world-writable and sticky (every user's runs share it; nobody removes another's files). */
export function ensureLockDir(dir: string): string {
  try {
    if (!fs.existsSync(dir)) {
      mkdirp(dir, 0o1777);
      fs.chmodSync(dir, 0o1777); // the umask took bits off
    }
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new UserError(
      `cannot use the run lock directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.\n` +
        `  It is shared by every runbook run on this machine. Make it writable (mkdir -p ${dir} && chmod 1777 ${dir}) or set RUNBOOK_LOCK_DIR to a directory every user of runbook can write.`,
      { exitCode: ExitCode.failed },
    );
  }
  return dir;
}

function safeName(text: string): string {
  return text.replace(/^[a-z]+:\/\//, '').replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 60);
}

/** The lock keys of a cluster identity: its id (when known) and each peer address. */
export function lockKeys(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>): string[] {
  const keys = identity.peerURLs.map((u) => `peer-${safeName(u)}-${crypto.createHash('sha256').update(u).digest('hex').slice(0, 8)}`);
  if (identity.clusterId) keys.push(`cluster-${safeName(identity.clusterId)}`);
  return [...new Set(keys)].sort();
}

export function readLock(file: string): LockHolder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** Has the journal ended (its last complete record is `run.finished`)? Reads only the tail. */
export function journalEnded(file: string | undefined): boolean {
  if (!file) return false;
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 256 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return (JSON.parse(lines[i]!) as { type?: string }).type === 'run.finished';
      } catch {
        /* a torn last line: look at the one before */
      }
    }
    return false;
  } catch {
    return false; // unreadable (another user's state dir): the pid decides
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

type Verdict = 'live' | 'ended' | 'dead' | 'unreadable';

function judge(holder: LockHolder | undefined, mtimeMs: number): Verdict {
  if (!holder) return Date.now() - mtimeMs > 10_000 ? 'dead' : 'unreadable'; // not ours: link(2) never leaves a torn file
  if (journalEnded(holder.journal)) return 'ended';
  if (holder.host === os.hostname() && !pidAlive(holder.pid)) return 'dead';
  return 'live';
}

/** Read a key file with its inode (to tell, later, whether it is still the same file). */
function inspect(file: string): { holder: LockHolder | undefined; ino: number; mtimeMs: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(fs.readFileSync(fd, 'utf8')) as LockHolder;
    } catch {
      holder = undefined;
    }
    return { holder, ino: st.ino, mtimeMs: st.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Move a stale key file aside, but only the file that was judged: if it changed in between (another process
 * cleared it and took the key), put that one back and let the caller look again.
 */
function moveAside(file: string, judgedIno: number): void {
  const aside = `${file}.stale-${Date.now()}-${crypto.randomBytes(3).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'EPERM' || code === 'EACCES') {
      throw new UserError(`a stale run lock ${file} belongs to another user and this user may not move it: ask them (or root) to remove it`, { exitCode: ExitCode.locked });
    }
    throw err;
  }
  if (fs.statSync(aside).ino !== judgedIno) {
    try { fs.linkSync(aside, file); } catch { /* taken again meanwhile: that one holds it */ }
    fs.unlinkSync(aside);
  }
}

function holderText(h: LockHolder): string {
  return `run ${h.runId} (pid ${h.pid} on ${h.host}${h.user ? `, user ${h.user}` : ''}, since ${h.since})`;
}

/**
 * Take the machine-wide lock of a cluster identity for a run, all keys or none. Throws UserError (exit 4) naming
 * the holder, its run, host and pid when another run holds any key.
 *
 * @example
 *   const lock = acquireLock(identity, runId, { label: inventory.name, journal: '/state/runs/…/journal.jsonl' });
 *   try { … } finally { lock.release(); }
 */
export function acquireLock(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts: LockOptions = {}): HeldLock {
  const keys = lockKeys(identity);
  if (keys.length === 0) throw new UserError('cannot lock a cluster with no member addresses (the inventory names no peer or client URL)');
  const dir = ensureLockDir(opts.dir ?? lockDir());
  const label = opts.label ? `cluster "${opts.label}"` : 'this cluster';
  let user: string | undefined;
  try { user = os.userInfo().username; } catch { user = undefined; }
  const me: LockHolder = {
    runId, pid: process.pid, host: os.hostname(), ...(user ? { user } : {}), since: new Date().toISOString(),
    command: process.argv.slice(2).join(' ').slice(0, 300), ...(opts.journal ? { journal: opts.journal } : {}), keys,
  };
  const tmp = path.join(dir, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  let ino: number;
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeSync(fd, `${JSON.stringify(me)}\n`);
      fs.fsyncSync(fd);
      ino = fs.fstatSync(fd).ino;
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new UserError(`cannot write a run lock in ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (set RUNBOOK_LOCK_DIR to a writable directory shared by every runbook user)`, { exitCode: ExitCode.failed });
  }
  const taken: string[] = [];
  const lock = held(taken, keys, ino);
  try {
    for (const key of keys) {
      const file = path.join(dir, `${key}.lock`);
      for (let attempt = 0; ; attempt++) {
        try {
          fs.linkSync(tmp, file);
          taken.push(file);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const seen = inspect(file);
        if (!seen) continue; // released between our link and our look: try again
        if (attempt >= 5) throw new UserError(`could not take the lock for ${label} (${file}): another process keeps taking it`, { exitCode: ExitCode.locked });
        const verdict = judge(seen.holder, seen.mtimeMs);
        const h = seen.holder;
        if ((verdict === 'live' || verdict === 'unreadable') && !(verdict === 'live' && opts.takeOverSameRun && h?.runId === runId)) {
          throw new UserError(
            h
              ? `${label} is locked by ${holderText(h)}.\n  Only one run may recover a cluster at a time. Watch it with: runbook status ${h.runId}${h.host === os.hostname() ? '' : ` (on ${h.host})`}`
              : `${label} is locked (${file} is being written by another process); try again in a moment`,
            { exitCode: ExitCode.locked },
          );
        }
        if (verdict === 'dead' && h && h.runId !== runId && !opts.breakLock) {
          throw new UserError(
            `${label} has a stale lock from ${holderText(h)}: that process is not running.\n` +
              `  Resume that run with: runbook resume ${h.runId}\n  or, if it is abandoned, break the lock with --break-lock`,
            { exitCode: ExitCode.locked },
          );
        }
        moveAside(file, seen.ino); // ended, or dead and ours to take over
      }
    }
    return lock;
  } catch (err) {
    lock.release();
    throw err;
  } finally {
    try { fs.unlinkSync(tmp); } catch { /* already gone */ }
  }
}

function held(files: string[], keys: string[], ino: number): HeldLock {
  let released = false;
  return {
    get file() { return files[0] ?? ''; },
    files,
    key: keys.join(','),
    keys,
    release() {
      if (released) return;
      released = true;
      // Unlink only our own inode: a file that is not ours any more (cleared as stale, then taken) stays.
      for (const f of files) {
        try {
          if (fs.statSync(f).ino === ino) fs.unlinkSync(f);
        } catch {
          /* already gone */
        }
      }
    },
  };
}

/** Who holds any key of this identity, if anyone holds it live (stale holders are not reported). */
export function lockHolder(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, dir: string = lockDir()): LockHolder | undefined {
  for (const key of lockKeys(identity)) {
    const seen = inspect(path.join(dir, `${key}.lock`));
    if (seen?.holder && judge(seen.holder, seen.mtimeMs) === 'live') return seen.holder;
  }
  return undefined;
}
