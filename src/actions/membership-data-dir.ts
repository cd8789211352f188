/**
 * Which data dir the replacement starts on. It must never be the old member's data: etcd would come up as the
 * removed member. The preflight records the identity (device + inode) of the old member's data dir before
 * anything changes; at start, a dir at that path with the same identity is the old data (not moved aside), and a
 * dir with another identity was created after the preflight, i.e. by this replacement (a resumed start).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';

export interface DirIdentity {
  path: string;
  existed: boolean;
  dev?: number;
  ino?: number;
}

export function dirIdentity(path: string): DirIdentity {
  try {
    const st = statSync(path);
    return { path, existed: true, dev: st.dev, ino: st.ino };
  } catch {
    return { path, existed: false };
  }
}

function sameDir(a: DirIdentity, b: DirIdentity): boolean {
  return a.existed && b.existed && a.dev === b.dev && a.ino === b.ino;
}

export type DataDirChoice =
  | { path: string; why: 'fresh' | 'resumed' | 'relocated' | 'relocated-resumed' }
  | { refuse: string; hint: string };

/** The fresh dir used when the old data is still in place: named after the new member, so a resume finds it again. */
export function relocatedPath(base: string, newIdHex: string): string {
  return `${base.replace(/\/+$/, '')}.replacement-${newIdHex}`;
}

/**
 * @param base       the old member's data dir (as recorded by the preflight, else the inventory's)
 * @param recorded   its identity at preflight time, when known
 * @param canRelocate the driver can point the member at another dir (process driver)
 */
export function chooseDataDir(base: string, recorded: DirIdentity | undefined, newIdHex: string, canRelocate: boolean): DataDirChoice {
  const alt = relocatedPath(base, newIdHex);
  if (existsSync(alt)) return { path: alt, why: 'relocated-resumed' };
  const now = dirIdentity(base);
  if (!now.existed) return { path: base, why: 'fresh' };
  if (recorded && recorded.path === base && !sameDir(recorded, now)) return { path: base, why: 'resumed' };
  const whose = recorded && recorded.path === base ? 'still holds the old member\'s data (it was not moved aside)' : 'exists, and this run cannot tell whether it is the old member\'s data';
  if (canRelocate && recorded && recorded.path === base) return { path: alt, why: 'relocated' };
  return {
    refuse: `data dir ${base} ${whose}: the replacement must start on an empty data dir`,
    hint: `move ${base} aside (mv ${base} ${base}.replaced-<timestamp>; never delete it), then resume the run`,
  };
}

/** An existing directory with nothing in it (a fresh mount point): etcd starts a new member there. */
function isEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length === 0;
  } catch {
    return false;
  }
}

/**
 * A data dir the operator named for the replacement (a new disk or host): used when empty or absent, never
 * relocated, and refused when it holds anything (this run cannot tell whose data that is).
 */
export function chooseGivenDataDir(dir: string, newIdHex: string): DataDirChoice {
  return isEmptyDir(dir) ? { path: dir, why: 'fresh' } : chooseDataDir(dir, undefined, newIdHex, false);
}
