/**
 * The etcd binaries a throwaway cluster runs: where they are (always an absolute dir, so a unit or an ssh session
 * with another PATH runs the same etcd), which version they are, and the environment etcdctl/etcdutl run in.
 */
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../util/errors.ts';

/** The dir of an executable `etcd` on PATH, absolute. */
function etcdDirOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    try {
      accessSync(join(dir, 'etcd'), fsConstants.X_OK);
      return dir;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where a throwaway cluster's etcd binaries are: given, $ETCD_BIN_DIR, or the PATH's etcd, always absolute. */
export function resolveEtcdBinDir(given?: string): string {
  const dir = given ?? process.env.ETCD_BIN_DIR ?? etcdDirOnPath();
  if (!dir) throw new UserError('no etcd binary: set ETCD_BIN_DIR (e.g. .tools/etcd-3.5.30/bin, see scripts/fetch-etcd.sh) or put etcd on PATH');
  const abs = resolve(dir);
  if (!existsSync(join(abs, 'etcd'))) throw new UserError(`no etcd in ${abs} (ETCD_BIN_DIR): fetch one with scripts/fetch-etcd.sh <version>`);
  return abs;
}

const versionCache = new Map<string, string>();
/** `<path> --version`'s etcd version (cached per path). */
export function binaryVersion(etcdPath: string): string {
  let v = versionCache.get(etcdPath);
  if (v === undefined) {
    const out = execFileSync(etcdPath, ['--version'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
    v = /etcd Version:\s*v?(\d+\.\d+\.\d+)/.exec(out)?.[1];
    if (!v) throw new Error(`${etcdPath} --version printed no etcd version: ${out.slice(0, 200)}`);
    versionCache.set(etcdPath, v);
  }
  return v;
}

/** The environment for etcdctl: ours without ETCDCTL_* (etcdctl exits 1 when ETCDCTL_ENDPOINTS and --endpoints are both set). */
export function etcdctlEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ETCDCTL_')) env[k] = v;
  return env;
}
