/**
 * The etcd command-line tools a snapshot needs, run on a host (this machine or a member's): which one restores
 * (etcdutl on etcd >= 3.5, with --bump-revision and --mark-compacted; etcdctl on 3.4), `snapshot status`, and a
 * trial restore. Inherited ETCDCTL_* variables are dropped so they cannot clash with our flags.
 */
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { Host } from '../hosts/types.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';

export interface EtcdVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

export interface RestoreTool {
  kind: 'etcdctl' | 'etcdutl';
  path: string;
  /** The etcd version the choice was made on, when known. */
  version?: string;
}

/** How far etcdutl moves revisions forward on >= 3.5 (what the Kubernetes docs use): watch caches see them grow. */
export const BUMP_REVISION = 1_000_000_000;

const TOOL_ENV = { ETCDCTL_API: '3' };

/** "etcd Version: 3.4.23", "etcdutl version: 3.5.9", "etcdctl version: 3.4.23" → the version. */
export function parseVersion(text: string): EtcdVersion | undefined {
  const m = /\bversion:\s*v?(\d+)\.(\d+)\.(\d+)/i.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: `${m[1]}.${m[2]}.${m[3]}` };
}

export function atLeast(v: EtcdVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function binPath(binDir: string | undefined, name: string): string {
  return binDir ? join(binDir, name) : name;
}

/**
 * Where the etcd tools are for a member: next to the etcd binary its process command names (when that is an
 * absolute path), else the inventory's etcdBinDir, else PATH.
 */
export function memberBinDir(member: Pick<MemberSpec, 'driver'>, inventory: Pick<Inventory, 'etcdBinDir'>): string | undefined {
  const program = member.driver.type === 'process' ? member.driver.command[0] : undefined;
  if (program && isAbsolute(program) && basename(program).startsWith('etcd')) return dirname(program);
  return inventory.etcdBinDir;
}

async function versionOf(host: Host, argv: string[], signal?: AbortSignal): Promise<EtcdVersion | undefined> {
  try {
    const r = await host.run(argv, { env: TOOL_ENV, dropEnvPrefix: 'ETCDCTL_', timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    return r.exitCode === 0 ? parseVersion(r.stdout) : undefined;
  } catch (err) {
    if (err instanceof StepError && (err.kind === 'cancelled' || err.kind === 'transient')) throw err;
    return undefined; // not installed
  }
}

/**
 * The tool that restores snapshots on this host: etcdutl when etcd is >= 3.5 (or etcd is not installed but
 * etcdutl is), else etcdctl. Refuses when etcd >= 3.5 runs there without etcdutl (etcdctl cannot bump revisions).
 */
export async function detectRestoreTool(host: Host, binDir: string | undefined, signal?: AbortSignal): Promise<RestoreTool> {
  const etcd = await versionOf(host, [binPath(binDir, 'etcd'), '--version'], signal);
  const etcdutl = etcd === undefined || atLeast(etcd, 3, 5) ? await versionOf(host, [binPath(binDir, 'etcdutl'), 'version'], signal) : undefined;
  if (etcdutl) return { kind: 'etcdutl', path: binPath(binDir, 'etcdutl'), version: etcd?.text ?? etcdutl.text };
  if (etcd && atLeast(etcd, 3, 5)) {
    throw new StepError('failed', `${host.label}: etcd ${etcd.text} is installed but etcdutl is not: a restore for etcd >= 3.5 needs etcdutl (--bump-revision, --mark-compacted)`, {
      hint: 'install etcdutl next to etcd (same release), or set etcdBinDir in the inventory',
    });
  }
  const etcdctl = await versionOf(host, [binPath(binDir, 'etcdctl'), 'version'], signal);
  if (!etcdctl) {
    throw new StepError('failed', `${host.label}: neither etcdutl nor etcdctl found${binDir ? ` in ${binDir}` : ' in PATH'}`, {
      hint: 'install the etcd release tools on that host, or set etcdBinDir in the inventory',
    });
  }
  return { kind: 'etcdctl', path: binPath(binDir, 'etcdctl'), version: etcd?.text ?? etcdctl.text };
}

export interface RestoreArgs {
  snapshot: string;
  dataDir: string;
  name: string;
  peerURLs: string;
  initialCluster: string;
  token: string;
}

/** argv of the restore: etcdutl bumps revisions and marks them compacted (>= 3.5); etcdctl (3.4) cannot. */
export function restoreArgv(tool: RestoreTool, a: RestoreArgs): string[] {
  return [
    tool.path, 'snapshot', 'restore', a.snapshot,
    '--data-dir', a.dataDir,
    '--name', a.name,
    '--initial-advertise-peer-urls', a.peerURLs,
    '--initial-cluster', a.initialCluster,
    '--initial-cluster-token', a.token,
    ...(tool.kind === 'etcdutl' ? ['--bump-revision', String(BUMP_REVISION), '--mark-compacted'] : []),
  ];
}

export function toolEnv(): Record<string, string> {
  return { ...TOOL_ENV };
}

export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
}

/**
 * `snapshot status -w json`. Not an integrity check on 3.4 (see file-check.ts), but it proves the file opens as
 * a database and gives its revision. A file cut in half crashes it (SIGBUS, exit 2): reported as a problem.
 */
export async function snapshotStatus(host: Host, tool: RestoreTool, file: string, signal?: AbortSignal): Promise<{ ok: true; status: SnapshotStatus } | { ok: false; problem: string }> {
  const r = await host.run([tool.path, 'snapshot', 'status', file, '-w', 'json'], { env: TOOL_ENV, dropEnvPrefix: 'ETCDCTL_', timeoutMs: 10 * 60_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) return { ok: false, problem: `\`${basename(tool.path)} snapshot status\` failed (exit ${r.exitCode}${r.exitCode === 2 ? ', it crashed reading the file' : ''}): ${tail(r.stderr) || tail(r.stdout)}` };
  try {
    const j = JSON.parse(r.stdout) as Partial<SnapshotStatus>;
    if (typeof j.revision !== 'number') throw new Error('no revision');
    return { ok: true, status: { hash: j.hash ?? 0, revision: j.revision, totalKey: j.totalKey ?? 0, totalSize: j.totalSize ?? 0 } };
  } catch {
    return { ok: false, problem: `\`${basename(tool.path)} snapshot status\` printed something unexpected: ${tail(r.stdout)}` };
  }
}

/** Restore into a throwaway dir (which must not exist): catches what status misses ("expected sha256", "missing hash"). */
export async function trialRestore(host: Host, tool: RestoreTool, file: string, dataDir: string, signal?: AbortSignal): Promise<{ ok: true } | { ok: false; problem: string }> {
  const argv = restoreArgv(tool, {
    snapshot: file,
    dataDir,
    name: 'trial',
    peerURLs: 'http://127.0.0.1:2380',
    initialCluster: 'trial=http://127.0.0.1:2380',
    token: 'runbook-trial',
  });
  const r = await host.run(argv, { env: TOOL_ENV, dropEnvPrefix: 'ETCDCTL_', timeoutMs: 30 * 60_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) return { ok: false, problem: `a trial restore failed (exit ${r.exitCode}): ${tail(r.stderr) || tail(r.stdout)}` };
  const db = await host.stat(join(dataDir, 'member', 'snap', 'db'));
  if (db?.type !== 'file') return { ok: false, problem: 'a trial restore exited 0 but wrote no member/snap/db' };
  return { ok: true };
}
