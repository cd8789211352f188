/**
 * The etcd versions a test can use: the one the suite runs ($ETCD_BIN_DIR / $ETCD_VERSION, chosen by
 * scripts/test.sh) and the other builds scripts/fetch-etcd.sh unpacked under .tools/etcd-<version>/bin.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveEtcdBinDir, binaryVersion } from '../../src/rehearse/etcd-binary.ts';

const root = join(import.meta.dirname, '../..');

/** .tools/etcd-<v>/bin; fails the test (not skips) when that build was not fetched. */
export function toolsBinDir(version: string): string {
  const dir = join(root, '.tools', `etcd-${version}`, 'bin');
  if (!existsSync(join(dir, 'etcd'))) throw new Error(`etcd ${version} is not fetched: run scripts/fetch-etcd.sh ${version}`);
  return dir;
}

/** The dir and version of the etcd this run uses. */
export function suiteEtcd(): { binDir: string; version: string } {
  const binDir = resolveEtcdBinDir();
  return { binDir, version: binaryVersion(join(binDir, 'etcd')) };
}

/** Another fetched version members of the suite's cluster can run beside it (same minor if possible, else newer). */
export function otherVersion(version: string): string {
  return version === '3.5.30' ? '3.5.16' : '3.5.30';
}

/** Can the suite's own tools restore with --bump-revision (capability probe, as the product does)? */
export function suiteToolsCanBump(): boolean {
  const { binDir } = suiteEtcd();
  for (const tool of ['etcdutl', 'etcdctl']) {
    const path = join(binDir, tool);
    if (!existsSync(path)) continue;
    let help = '';
    try {
      help = execFileSync(path, ['snapshot', 'restore', '--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      help = String((err as { stdout?: string }).stdout ?? '');
    }
    if (help.includes('--bump-revision')) return true;
  }
  return false;
}

/**
 * `-p allowRevisionRewind=true` where the suite's etcd tools cannot bump revisions (3.4.23): there, as for an
 * operator, power-loss-restore refuses without it. Empty elsewhere, so the refusal stays in force.
 */
export function rewindParams(): string[] {
  return suiteToolsCanBump() ? [] : ['-p', 'allowRevisionRewind=true'];
}
