/**
 * Save a snapshot of a running cluster to `<dir>/<cluster>-<UTC stamp>.db`, in constant memory whatever its size:
 * streamed into `<file>.part`, fsync'd, verified (sha256 trailer + `snapshot status`), described in `<file>.json`,
 * then renamed to its final name. A file that fails verification stays as `.part` (never deleted) and the save
 * fails.
 *
 * Without auth the Maintenance/Snapshot stream is read directly (grpc-stream.ts: flat memory). With auth,
 * `etcdctl snapshot save` (the etcd3 client never sends its token on that stream: ETCD-NOTES), one endpoint through
 * ETCDCTL_ENDPOINTS, TLS and credentials through ETCDCTL_* variables of the child only (never on a command line,
 * never logged).
 */
import { open, readFile } from 'node:fs/promises';
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { EtcdPool } from '../etcd/pool.ts';
import { utcStamp } from '../drivers/safe-fs.ts';
import { fsyncPath, localHost, runArgv } from '../hosts/local.ts';
import type { Inventory } from '../inventory/types.ts';
import { StepError, UserError } from '../util/errors.ts';
import { binPath, chooseSnapshotTool, snapshotStatus, toolDirs } from './etcd-tools.ts';
import { checkSnapshotFile } from './file-check.ts';
import { streamSnapshot } from './grpc-stream.ts';
import { manifestPath, writeManifest, type SnapshotManifest } from './manifest.ts';

/** No data for this long from the member: the stream is given up. */
const IDLE_MS = 60_000;

export interface SaveOptions {
  pool: EtcdPool;
  inventory: Inventory;
  /** Client URL of the member to stream from. */
  endpoint: string;
  dir: string;
  verify?: boolean;
  /** The version the member streamed from reports (Status): kept in the manifest, and chooses the checking tool. */
  etcdVersion?: string;
  signal?: AbortSignal;
  log?: (message: string) => void;
  now?: Date;
  /**
   * Called once the snapshot's point in time is fixed (the member's first bytes arrived), with the file it is
   * being written to: what comes after no longer changes its content. Not called when etcdctl takes it (auth).
   */
  onStreaming?: (info: { path: string; revision?: number }) => void;
  /** Hold the stream after its first bytes until this settles (grpc-stream.ts); etcdctl (auth) is not held. */
  hold?: Promise<void>;
}

export interface SaveResult extends SnapshotManifest {
  path: string;
}

/** `<dir>/<cluster>-<stamp>.db` where neither the file, its manifest nor its `.part` exists. */
export function snapshotFileName(dir: string, cluster: string, at: Date): string {
  for (let i = 1; i <= 100; i++) {
    const candidate = join(dir, `${cluster}-${utcStamp(at)}${i > 1 ? `-${i}` : ''}.db`);
    if (![candidate, manifestPath(candidate), `${candidate}.part`].some((p) => existsSync(p))) return candidate;
  }
  throw new StepError('failed', `no free snapshot file name in ${dir}`);
}

/** Stream the member's snapshot into `part` (created, never overwritten), fsync'd. */
async function streamToFile(inventory: Inventory, endpoint: string, part: string, signal?: AbortSignal, onFirstMessage?: (revision: number | undefined) => void, hold?: Promise<void>): Promise<number | undefined> {
  const fh = await open(part, 'wx', 0o600);
  try {
    const r = await streamSnapshot(fh, { endpoint, ...(inventory.tls ? { tls: inventory.tls } : {}), idleMs: IDLE_MS, ...(signal ? { signal } : {}), ...(onFirstMessage ? { onFirstMessage } : {}), ...(hold ? { hold } : {}) });
    await fh.sync();
    return r.revision;
  } finally {
    await fh.close();
  }
}

function readPassword(auth: NonNullable<Inventory['auth']>): Promise<string> {
  if (auth.passwordEnv) {
    const v = process.env[auth.passwordEnv];
    if (!v) throw new UserError(`inventory auth: environment variable ${auth.passwordEnv} (passwordEnv) is not set`);
    return Promise.resolve(v);
  }
  if (auth.passwordFile) return readFile(auth.passwordFile, 'utf8').then((t) => t.replace(/\r?\n$/, ''));
  throw new UserError(`inventory auth: user ${auth.username} needs passwordEnv or passwordFile`);
}

/** `etcdctl snapshot save part` against one endpoint, configured through the child's environment only. */
async function etcdctlSave(inventory: Inventory, endpoint: string, part: string, signal?: AbortSignal): Promise<void> {
  const env: Record<string, string> = { ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: endpoint };
  if (inventory.tls?.cacert) env.ETCDCTL_CACERT = inventory.tls.cacert;
  if (inventory.tls?.cert) env.ETCDCTL_CERT = inventory.tls.cert;
  if (inventory.tls?.key) env.ETCDCTL_KEY = inventory.tls.key;
  if (inventory.auth) {
    env.ETCDCTL_USER = inventory.auth.username;
    env.ETCDCTL_PASSWORD = await readPassword(inventory.auth);
  }
  const r = await runArgv([binPath(inventory.etcdBinDir, 'etcdctl'), 'snapshot', 'save', part], { env, dropEnvPrefix: 'ETCDCTL_', timeoutMs: 60 * 60_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) {
    throw new StepError('transient', `etcdctl snapshot save from ${endpoint} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').at(-1)?.slice(0, 300) ?? ''}`);
  }
}

/** Save, verify, write the manifest, rename to the final name. Retention is separate (retention.ts). */
export async function saveSnapshot(o: SaveOptions): Promise<SaveResult> {
  const at = o.now ?? new Date();
  const log = o.log ?? (() => {});
  mkdirSync(o.dir, { recursive: true });
  const file = snapshotFileName(o.dir, o.inventory.name, at);
  const part = `${file}.part`;
  const via = o.inventory.auth ? 'etcdctl' : 'stream';
  const t0 = Date.now();
  let streamRevision: number | undefined;
  if (via === 'etcdctl') await etcdctlSave(o.inventory, o.endpoint, part, o.signal);
  else {
    const onFirst = o.onStreaming ? (revision: number | undefined) => o.onStreaming!({ path: file, ...(revision !== undefined ? { revision } : {}) }) : undefined;
    streamRevision = await streamToFile(o.inventory, o.endpoint, part, o.signal, onFirst, o.hold);
  }
  fsyncPath(part);
  fsyncPath(o.dir);

  const check = await checkSnapshotFile(part, o.signal);
  log(`saved ${basename(part)} from ${o.pool.nameOf(o.endpoint)}: ${check.size} bytes in ${Date.now() - t0} ms`);
  let revision: number | undefined;
  if (o.verify !== false) {
    if (!check.trailerOk) {
      throw new StepError('failed', `the snapshot just saved fails verification: ${check.problem}; it is left at ${part}`, { hint: 'look at the member and the disk, then save again' });
    }
    const { tool } = await chooseSnapshotTool(localHost, toolDirs(undefined, o.inventory), {
      purpose: 'check',
      ...(o.etcdVersion ? { clusterVersion: o.etcdVersion } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const st = await snapshotStatus(localHost, tool, part, o.signal);
    if (!st.ok) throw new StepError('failed', `the snapshot just saved fails verification: ${st.problem}; it is left at ${part}`);
    revision = st.status.revision;
  }
  const manifest: SnapshotManifest = {
    version: 1,
    file: basename(file),
    cluster: o.inventory.name,
    sha256: check.sha256,
    revision: revision ?? streamRevision ?? 0,
    size: check.size,
    createdAt: at.toISOString(),
    endpoint: o.endpoint,
    via,
    ...(o.etcdVersion ? { etcdVersion: o.etcdVersion } : {}),
    verified: o.verify !== false,
  };
  writeManifest(file, manifest);
  await localHost.rename(part, file);
  return { ...manifest, path: file };
}
