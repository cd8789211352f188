/**
 * Where a member's files live: `hostFor(member)` is this machine, or the member's `ssh` host. Plus the file moves
 * recovery needs on either: move aside under a fresh timestamped name (never delete, never overwrite).
 */
import type { SshHost } from '../inventory/types.ts';
import { utcStamp } from '../drivers/safe-fs.ts';
import { StepError } from '../util/errors.ts';
import { localHost } from './local.ts';
import { sshHostOf } from './ssh.ts';
import type { Host } from './types.ts';

export type { Host, HostRunOptions, HostRunResult, HostStat } from './types.ts';
export { localHost, sha256File, fsyncPath } from './local.ts';
export { sshHostOf, sshLabel } from './ssh.ts';

/** The host a member (or an inventory component) lives on. */
export function hostFor(target: { ssh?: SshHost | undefined }): Host {
  return target.ssh ? sshHostOf(target.ssh) : localHost;
}

/** The first of `base`, `base-2`, `base-3`… that does not exist on the host. Bounded. */
export async function freshPathOn(host: Host, base: string): Promise<string> {
  for (let i = 1; i <= 100; i++) {
    const p = i === 1 ? base : `${base}-${i}`;
    if (!(await host.stat(p))) return p;
  }
  throw new StepError('failed', `${host.label}: no free name like ${base} (100 taken)`);
}

/**
 * Move `path` to `<path>.<label>-<UTC stamp>` on the host (a fresh name: nothing is overwritten or deleted).
 * Returns the new path.
 *
 * @example await moveAside(hostFor(member), '/var/lib/etcd', 'pre-restore') // '/var/lib/etcd.pre-restore-20261124T153012Z'
 */
export async function moveAside(host: Host, path: string, label: string, at: Date = new Date()): Promise<string> {
  const clean = path.replace(/\/+$/, '');
  const to = await freshPathOn(host, `${clean}.${label}-${utcStamp(at)}`);
  await host.rename(clean, to);
  return to;
}
