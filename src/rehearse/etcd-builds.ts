/**
 * The etcd builds a checkout has fetched (scripts/fetch-etcd.sh unpacks Debian's under `.tools/etcd-<version>/bin`,
 * relative to the repo root): `runbook rehearse --etcd-version 3.5.16` runs its throwaway cluster on one of them.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { BUILTIN_DIR } from '../runbook/find.ts';
import { UserError } from '../util/errors.ts';

/** The repo root (where runbooks/ and .tools/ are). */
function repoRoot(): string {
  return path.dirname(path.resolve(BUILTIN_DIR));
}

/** Versions with an unpacked build, oldest first. */
export function fetchedEtcdVersions(root = repoRoot()): string[] {
  const tools = path.join(root, '.tools');
  if (!existsSync(tools)) return [];
  return readdirSync(tools)
    .map((e) => /^etcd-(\d+\.\d+\.\d+)$/.exec(e)?.[1])
    .filter((v): v is string => v !== undefined && existsSync(path.join(tools, `etcd-${v}`, 'bin', 'etcd')))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

/** `.tools/etcd-<version>/bin` (absolute), or a UserError saying how to fetch it. */
export function fetchedEtcdBinDir(version: string, root = repoRoot()): string {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new UserError(`--etcd-version: expected a release like 3.5.16, got ${JSON.stringify(version.slice(0, 40))}`);
  const dir = path.join(root, '.tools', `etcd-${version}`, 'bin');
  if (!existsSync(path.join(dir, 'etcd'))) {
    const have = fetchedEtcdVersions(root);
    throw new UserError(`--etcd-version ${version}: etcd ${version} is not fetched (no ${path.join(dir, 'etcd')}): run scripts/fetch-etcd.sh ${version}${have.length ? ` (fetched: ${have.join(', ')})` : ''}`);
  }
  return dir;
}
