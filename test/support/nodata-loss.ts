/**
 * "Nothing was deleted", checked: list a directory tree before a test acts, and afterwards assert that every path
 * that existed still exists, or was moved aside to a `<path>.<label>-<ts>` sibling (the product's rule: data dirs,
 * snapshots, journals are never deleted, only moved aside with a timestamp), possibly as part of a moved-aside
 * parent directory.
 *
 * @example
 * const before = snapshotTree([cluster.dir], { ignore: etcdChurn });
 * …run, crash, resume…
 * assertNoDataLoss(before);
 *
 * Files that etcd itself rotates (WAL segments, .snap files, temp files) come and go by design: pass
 * `ignore: etcdChurn` for trees that hold etcd data dirs. Runner temp files (`*.tmp-<pid>`) and lock files
 * (released locks are removed) are ignored by `runnerChurn`.
 *
 * Every other file's size and sha256 are recorded too, and must be the same afterwards (where it was, or in its
 * moved-aside copy): a snapshot truncated or a file overwritten in place is data lost as much as a deletion. Only
 * files rewritten in place by design (`liveFiles`: a running member's db, a run's journal and state) are exempt.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { EXPIRED_DIR } from '../../src/snapshot/list.ts';

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Files not rewritten in place by design: their content, to compare afterwards. */
  sha256?: string;
}

export interface TreeSnapshot {
  roots: string[];
  entries: Map<string, TreeEntry>;
  ignore: (path: string) => boolean;
}

/** Files rewritten in place by design: a member's live bbolt db, a run's journal and state files. */
export function liveFiles(path: string): boolean {
  return /[\\/]member[\\/]snap[\\/]db$/.test(path) || /[\\/]runs[\\/][^\\/]+[\\/]/.test(path);
}

function sha256Of(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined; // vanished or unreadable while listing: its existence is still checked
  }
}

const MAX_ENTRIES = 200_000;

/** etcd's own rotation: WAL segments and their preallocated .tmp, raft .snap files, bbolt's defrag temp. */
export function etcdChurn(path: string): boolean {
  return /[\\/]member[\\/]wal[\\/][^\\/]+\.(wal|tmp)$/.test(path) || /[\\/]member[\\/]snap[\\/][^\\/]+\.snap(\.db)?$/.test(path) || /[\\/]member[\\/]snap[\\/]db\.tmp/.test(path) || /\.tmp$/.test(path);
}

/** The runner's temp files (atomic writes) and lock files (removed on release, by design). */
export function runnerChurn(path: string): boolean {
  return /\.tmp-\d+$/.test(path) || /[\\/]locks[\\/][^\\/]+\.lock$/.test(path);
}

export function anyOf(...preds: ((p: string) => boolean)[]): (p: string) => boolean {
  return (p) => preds.some((f) => f(p));
}

/** List every path under `roots` (symlinks are not followed). */
export function snapshotTree(roots: string | string[], opts: { ignore?: (path: string) => boolean; live?: (path: string) => boolean } = {}): TreeSnapshot {
  const list = Array.isArray(roots) ? roots : [roots];
  const ignore = opts.ignore ?? (() => false);
  const live = opts.live ?? liveFiles;
  const entries = new Map<string, TreeEntry>();
  const stack = [...list];
  while (stack.length) {
    const p = stack.pop()!;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue; // vanished while listing: not ours to judge
    }
    const type: TreeEntry['type'] = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    if (!ignore(p)) {
      const sha256 = type === 'file' && !live(p) ? sha256Of(p) : undefined;
      entries.set(p, sha256 === undefined ? { type, size: st.size } : { type, size: st.size, sha256 });
    }
    if (entries.size > MAX_ENTRIES) throw new Error(`snapshotTree: more than ${MAX_ENTRIES} entries under ${list.join(', ')}`);
    if (type === 'dir') for (const name of readdirSync(p)) stack.push(join(p, name));
  }
  return { roots: list, entries, ignore };
}

/** `<name>.<label>-<ts>`: the way the product moves things aside (label like pre-restore, torn, stale; ts starts with a digit). */
function asideNames(dir: string, name: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const prefix = `${name}.`;
  return names.filter((n) => n.startsWith(prefix) && /^[A-Za-z][A-Za-z0-9_-]*?-\d[\w:.+-]*$/.test(n.slice(prefix.length)));
}

/** Where a missing path went, if it (or a parent of it) was moved aside; undefined when it is simply gone. */
export function movedAside(path: string, roots: string[]): string | undefined {
  const within = (p: string) => roots.some((r) => p === r || p.startsWith(r + sep));
  // Snapshot retention moves what it expires into an `expired/` folder beside it (src/snapshot/retention.ts).
  const expired = join(dirname(path), EXPIRED_DIR, basename(path));
  if (existsSync(expired)) return expired;
  for (let anc = path; within(anc); anc = dirname(anc)) {
    if (!existsSync(anc)) {
      const rest = relative(anc, path);
      for (const n of asideNames(dirname(anc), basename(anc))) {
        const candidate = rest ? join(dirname(anc), n, rest) : join(dirname(anc), n);
        if (existsSync(candidate)) return candidate;
      }
    }
    if (roots.includes(anc)) break;
  }
  return undefined;
}

/**
 * Every moved-aside copy of a path (the path itself or an ancestor moved to `<name>.<label>-<ts>`), whether or not
 * something new stands at the path now: a data dir moved aside and restored afresh holds a new file of the same name.
 */
function asideCopies(path: string, roots: string[]): string[] {
  const within = (p: string) => roots.some((r) => p === r || p.startsWith(r + sep));
  const out: string[] = [];
  for (let anc = path; within(anc); anc = dirname(anc)) {
    const rest = relative(anc, path);
    for (const n of asideNames(dirname(anc), basename(anc))) {
      const candidate = rest ? join(dirname(anc), n, rest) : join(dirname(anc), n);
      if (existsSync(candidate)) out.push(candidate);
    }
    if (roots.includes(anc)) break;
  }
  return out;
}

/** Paths that existed at the snapshot and are now neither there nor moved aside. */
export function lostPaths(before: TreeSnapshot): string[] {
  const lost: string[] = [];
  for (const p of before.entries.keys()) {
    if (existsSync(p)) continue;
    if (movedAside(p, before.roots) === undefined) lost.push(p);
  }
  return lost.sort();
}

/**
 * Files whose size or content differ from what was recorded, where they are now (in place or moved aside): a
 * truncation or an overwrite in place. Each as `path: what changed`.
 */
export function changedPaths(before: TreeSnapshot): string[] {
  const changed: string[] = [];
  for (const [p, e] of before.entries) {
    if (e.sha256 === undefined) continue;
    const now = existsSync(p) ? p : movedAside(p, before.roots);
    if (now === undefined) continue; // lost: lostPaths reports it
    let st;
    try {
      st = lstatSync(now);
    } catch {
      continue;
    }
    const where = now === p ? '' : ` (moved to ${now})`;
    // A new file at the old path is fine when the recorded one survives, unchanged, in a moved-aside copy.
    const keptAside = () => asideCopies(p, before.roots).some((c) => { try { return lstatSync(c).size === e.size && sha256Of(c) === e.sha256; } catch { return false; } });
    if (now === p && (!st.isFile() || st.size !== e.size || sha256Of(now) !== e.sha256) && keptAside()) continue;
    if (!st.isFile()) changed.push(`${p}${where}: was a file, now is not`);
    else if (st.size !== e.size) changed.push(`${p}${where}: ${e.size} bytes before, ${st.size} now`);
    else if (sha256Of(now) !== e.sha256) changed.push(`${p}${where}: same size, content overwritten`);
  }
  return changed.sort();
}

/** Throws, listing what was lost or altered, when anything that existed before is gone without a moved-aside copy or changed. */
export function assertNoDataLoss(before: TreeSnapshot, what = 'no data lost'): void {
  const lost = lostPaths(before);
  const changed = changedPaths(before);
  if (lost.length === 0 && changed.length === 0) return;
  const list = (xs: string[]) => `${xs.slice(0, 20).map((p) => `  ${p}`).join('\n')}${xs.length > 20 ? '\n  …' : ''}`;
  const parts = [
    lost.length ? `${lost.length} path(s) that existed before are gone and were not moved aside:\n${list(lost)}` : '',
    changed.length ? `${changed.length} file(s) changed in size or content:\n${list(changed)}` : '',
  ].filter(Boolean);
  throw new Error(`${what}: ${parts.join('\n')}`);
}
