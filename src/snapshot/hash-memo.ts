/**
 * The sha256 of a local snapshot file, remembered for the life of the process while the file is provably the
 * same: same device, inode, size, mtime and ctime as when it was hashed (ctime cannot be set back by any tool, so
 * a rewrite, a rename over it or a touch all show). A restore checks that the snapshot is still the one chosen:
 * within one run the selection already read it, and each member's restore need not read the whole file again.
 * A new process (a resumed run) starts empty and hashes once.
 */
import { statSync, type Stats } from 'node:fs';
import { sha256File } from '../hosts/local.ts';
import { sharedWhileRunning } from '../util/in-flight.ts';

const memo = new Map<string, { identity: string; sha256: string }>();
/** Reads in progress, by path and identity: members restored at once share one read of the file. */
const reading = new Map<string, Promise<string>>();

function identity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * A file changed within this long of its hashing is not remembered: file times are coarse (a kernel tick), so a
 * rewrite of the same size right after could leave every field of its stat the same (git's "racy" index entries).
 */
const SETTLED_MS = 2000;

/** Remember a hash computed by a reader that streamed the file between `before` (its stat) and now. */
export function rememberSha256(path: string, before: Stats, sha256: string): void {
  const after = statOf(path);
  const settled = after !== undefined && Date.now() - Math.max(after.mtimeMs, after.ctimeMs) > SETTLED_MS;
  if (after && settled && identity(after) === identity(before)) memo.set(path, { identity: identity(after), sha256 });
  else memo.delete(path);
}

/** The file's sha256: remembered when the file is unchanged since it was hashed, else read (and remembered). */
export async function snapshotSha256(path: string, signal?: AbortSignal): Promise<string> {
  const before = statOf(path);
  const known = memo.get(path);
  if (before && known && known.identity === identity(before)) return known.sha256;
  if (!before) return sha256File(path, signal);
  return sharedWhileRunning(reading, `${path}\0${identity(before)}`, async () => {
    const sha256 = await sha256File(path, signal);
    rememberSha256(path, before, sha256);
    return sha256;
  });
}

export { statOf as statForMemo };
