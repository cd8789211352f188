/**
 * File operations the drivers and member actions use on an operator's machine. Nothing here deletes or
 * overwrites: backups get a timestamped name that does not exist yet, writes go to a temp file that is renamed
 * over the target (readers see the old or the new content, never half), moves refuse an existing target.
 */
import { closeSync, constants, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { StepError, messageOf } from '../util/errors.ts';

/** UTC timestamp for file names: 20261124T153012Z. */
export function utcStamp(at: Date = new Date()): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** The first of `base`, `base-2`, `base-3`… (before `ext`) that does not exist. Bounded. */
export function freshPath(base: string, ext = ''): string {
  for (let i = 1; i <= 1000; i++) {
    const p = i === 1 ? `${base}${ext}` : `${base}-${i}${ext}`;
    if (!existsSync(p)) return p;
  }
  throw new StepError('failed', `no free file name like ${base}${ext} (1000 taken)`);
}

/** fsync a directory so a rename or create in it survives a power loss. Best effort (some file systems refuse). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not supported here: the rename itself is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Write `data` to `file` atomically: a temp file in the same directory (a dot file, so a kubelet watching a
 * manifests dir ignores it), fsync'd, then renamed over the target.
 */
export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.tmp-${process.pid}-${Date.now()}`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(dir);
}

/** Copy `file` to a new timestamped file `<dir>/<stem>.<stamp>[-n]<ext>`; never overwrites. Returns its path. */
export function backupFile(file: string, dir: string, stem: string, ext: string): string {
  return copyToFreshName(file, join(dir, `${stem}.${utcStamp()}`), ext);
}

/**
 * Copy `file` (its mode kept) to the first free `<base><ext>`, `<base>-2<ext>`…, creating the directory (0700)
 * when it is missing; never overwrites. Returns the path taken.
 */
export function copyToFreshName(file: string, base: string, ext = ''): string {
  const dir = dirname(base);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const target = freshPath(base, ext);
  try {
    copyFileSync(file, target, constants.COPYFILE_EXCL);
  } catch (err) {
    throw new StepError('failed', `cannot back up ${file} to ${target}: ${messageOf(err)}`, { hint: 'nothing was changed; check the backup directory' });
  }
  const fd = openSync(target, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dir);
  return target;
}

/**
 * Move a file (or directory) to `to`, which must not exist. Same file system: one atomic rename. Across file
 * systems (files only): copy next to the target, fsync, rename into place, then unlink the source.
 */
export function moveNoClobber(from: string, to: string): void {
  if (existsSync(to)) throw new StepError('precondition', `not moving ${from}: ${to} already exists`, { hint: 'look at both and move one away by hand' });
  mkdirSync(dirname(to), { recursive: true });
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw new StepError('failed', `cannot move ${from} to ${to}: ${messageOf(err)}`, { cause: err });
    const tmp = join(dirname(to), `.${basename(to)}.tmp-${process.pid}-${Date.now()}`);
    copyFileSync(from, tmp, constants.COPYFILE_EXCL);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, to);
    unlinkSync(from);
  }
  fsyncDir(dirname(to));
  if (dirname(from) !== dirname(to)) fsyncDir(dirname(from));
}
