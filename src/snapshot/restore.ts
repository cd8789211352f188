/**
 * Restore one member's data dir from a snapshot, on the member's host (this machine or over ssh).
 *
 * Never over live data: the member must be stopped and its data dir absent (moved aside first by
 * members.move-data-aside). The snapshot is copied to a remote host and its sha256 checked THERE. The restore
 * writes `<dataDir>.part` (a failed restore leaves a half-written dir behind, and etcd then refuses the same dir),
 * a marker `runbook-restore.json` {runId, token, sha256} goes inside, then one rename makes it the data dir. A
 * `.part` left by a crashed attempt is moved aside under a timestamped name, never reused or deleted.
 *
 * Starting the member afterwards: etcd ignores --initial-cluster, --initial-cluster-token and
 * --initial-cluster-state when the data dir already has a WAL (measured on 3.4.23: it logs "initial cluster = "
 * and keeps the restored membership), so the driver's unchanged command line starts a restored member correctly;
 * the new token only makes the restored cluster's id differ from the old one.
 */
import { dirname, join } from 'node:path';
import { utcStamp } from '../drivers/safe-fs.ts';
import { getFlag } from '../drivers/process.ts';
import type { MemberDriver } from '../drivers/types.ts';
import { sameURL } from '../etcd/ids.ts';
import { freshPathOn } from '../hosts/index.ts';
import { localHost } from '../hosts/local.ts';
import { snapshotSha256 } from './hash-memo.ts';
import type { Host } from '../hosts/types.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { sharedWhileRunning } from '../util/in-flight.ts';
import { describeLocalListener } from '../hosts/listener.ts';
import { BUMP_REVISION, binPath, chooseSnapshotTool, etcdBinaryVersion, memberEtcdDir, restoreArgv, toolDirs, toolEnv } from './etcd-tools.ts';

export const RESTORE_MARKER = 'runbook-restore.json';

export interface RestoreMarker {
  version: 1;
  runId: string;
  token: string;
  sha256: string;
  snapshot: string;
  member: string;
  initialCluster: string;
  tool: string;
  /** Absent in markers written before versions were tracked (those restores bumped on etcdutl only). */
  revisions?: 'forward' | 'rewind';
  restoredAt: string;
}

export interface RestoreMemberOptions {
  member: MemberSpec;
  inventory: Inventory;
  host: Host;
  /** Path of the snapshot on this machine. */
  snapshot: string;
  /** Expected sha256 of the whole snapshot file (from snapshot-select); computed when absent. */
  sha256?: string;
  token: string;
  runId: string;
  /** The cluster's etcd version (chooses the tool: same minor, bump-capable first). */
  clusterVersion?: string;
  /** Accept a restore that takes revisions back (no bump-capable tool on this host). */
  allowRevisionRewind?: boolean;
  /** How far revisions move forward (default BUMP_REVISION); the same for every member of one restore. */
  bumpRevision?: number;
  /** The member's driver, to refuse while it runs (absent for driver: none). */
  driver?: MemberDriver;
  /** Does anything listen at this URL? (an etcd waiting for quorum accepts connections without answering) */
  listening?: (url: string) => Promise<boolean>;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

export interface RestoreMemberResult {
  member: string;
  host: string;
  dataDir: string;
  snapshot: string;
  /** Where the restore read it: the snapshot itself on this machine, a verified copy on a remote host. */
  stagedSnapshot: string;
  sha256: string;
  token: string;
  initialCluster: string;
  tool: string;
  /** Revisions moved forward (--bump-revision --mark-compacted) or went back to the snapshot's (accepted). */
  revisions: 'forward' | 'rewind';
  /** A `.part` a crashed attempt left, moved here. */
  interruptedMovedTo?: string;
  durationMs: number;
}

/** The cluster token of a restore run: the same for every member, stable across resumes. */
export function tokenFromRunId(runId: string): string {
  return `runbook-${runId.replace(/[^A-Za-z0-9-]/g, '-')}`.slice(0, 100);
}

/** `name=peerURL,…` over the inventory members. */
export function initialClusterOf(inventory: Pick<Inventory, 'members'>): string {
  return inventory.members.map((m) => `${m.name}=${m.peerURL}`).join(',');
}

/** The member's data dir: the inventory's dataDir, else the --data-dir of its process command line. */
export function dataDirOf(member: MemberSpec): string {
  const dir = member.dataDir ?? (member.driver.type === 'process' ? getFlag(member.driver.command, 'data-dir') : undefined);
  if (!dir) throw new StepError('invalid', `${member.name} has no dataDir in the inventory: cannot restore it`, { member: member.name, hint: 'add dataDir to the member in the inventory' });
  return dir.replace(/\/+$/, '');
}

export async function readMarker(host: Host, dataDir: string): Promise<RestoreMarker | undefined> {
  const text = await host.readText(join(dataDir, RESTORE_MARKER), 64 * 1024);
  if (text === undefined) return undefined;
  try {
    const m = JSON.parse(text) as RestoreMarker;
    return m.version === 1 && typeof m.token === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Is this member's data dir already the restore of this run (same token, same snapshot)? */
export async function restoredAlready(o: Pick<RestoreMemberOptions, 'member' | 'host' | 'token' | 'sha256'>): Promise<{ done: true; marker: RestoreMarker } | { done: false; detail: string }> {
  const dataDir = dataDirOf(o.member);
  const st = await o.host.stat(dataDir);
  if (!st) return { done: false, detail: `${dataDir} does not exist yet` };
  const marker = await readMarker(o.host, dataDir);
  if (!marker) return { done: false, detail: `${dataDir} exists without a restore marker (not restored by this run)` };
  if (marker.token !== o.token) return { done: false, detail: `${dataDir} was restored by another run (token ${marker.token})` };
  if (o.sha256 && marker.sha256 !== o.sha256) return { done: false, detail: `${dataDir} was restored from another snapshot (${marker.sha256.slice(0, 12)}…)` };
  const db = await o.host.stat(join(dataDir, 'member', 'snap', 'db'));
  if (db?.type !== 'file') return { done: false, detail: `${dataDir} has a marker but no member/snap/db` };
  return { done: true, marker };
}

async function refuseWhileRunning(o: RestoreMemberOptions): Promise<void> {
  const m = o.member;
  if (o.driver) {
    const st = await o.driver.status();
    if (st.running) {
      throw new StepError('precondition', `not restoring ${m.name}: it runs (pid ${st.pid ?? '?'}); a restore never goes over a live member`, { member: m.name, hint: 'stop it first (members.stop)' });
    }
  }
  for (const url of o.listening ? [m.clientURL, m.peerURL] : []) {
    if (await o.listening!(url)) {
      const who = m.ssh ? '' : describeLocalListener(url);
      throw new StepError('precondition', `not restoring ${m.name}: something accepts connections on ${url}${who} (is the member still running?)`, { member: m.name, hint: 'stop the member first' });
    }
  }
}

/**
 * The restored membership names each member by its inventory name and peer URL; the member's own command line
 * must agree, or the started etcd would not find itself in it.
 */
async function checkIdentity(o: RestoreMemberOptions): Promise<void> {
  if (!o.driver) return;
  const m = o.member;
  const name = await o.driver.getFlag('name');
  if (name !== undefined && name !== m.name) {
    throw new StepError('invalid', `${m.name}: its etcd command line says --name ${name}, the inventory says ${m.name}; a restore must use the name etcd runs with`, {
      member: m.name,
      hint: 'make the inventory member name match --name',
    });
  }
  const peers = await o.driver.getFlag('initial-advertise-peer-urls');
  if (peers !== undefined && !sameURL(peers, m.peerURL)) {
    throw new StepError('invalid', `${m.name}: its etcd command line says --initial-advertise-peer-urls ${peers}, the inventory peerURL is ${m.peerURL}`, {
      member: m.name,
      hint: 'make the inventory peerURL match the member flag',
    });
  }
}

/** Copies in progress, by host and path: members of one host restored at once share one copy, not race on it. */
const staging = new Map<string, Promise<string>>();

/** Put the snapshot on the member's host and prove it arrived intact (sha256 computed there). */
async function stage(o: RestoreMemberOptions, sha256: string, dataDir: string): Promise<string> {
  if (!o.host.remote) return o.snapshot;
  const staged = join(dirname(dataDir), `.runbook-snapshot-${sha256.slice(0, 16)}.db`);
  return sharedWhileRunning(staging, `${o.host.label}\0${staged}`, () => stageOnce(o, sha256, staged));
}

async function stageOnce(o: RestoreMemberOptions, sha256: string, staged: string): Promise<string> {
  const existing = await o.host.stat(staged);
  if (existing) {
    if ((await o.host.sha256(staged)) === sha256) return staged;
    const aside = await freshPathOn(o.host, `${staged}.mismatch-${utcStamp()}`);
    await o.host.rename(staged, aside);
  }
  o.log?.(`copying ${o.snapshot} to ${o.host.label}:${staged}`);
  await o.host.putFile(o.snapshot, staged, o.signal ? { signal: o.signal } : {});
  const there = await o.host.sha256(staged);
  if (there !== sha256) {
    throw new StepError('failed', `${o.host.label}: the copy of the snapshot at ${staged} has sha256 ${there.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…`, {
      member: o.member.name,
      hint: 'the copy was damaged on the way or on that disk; check the disk and retry',
    });
  }
  return staged;
}

export async function restoreMember(o: RestoreMemberOptions): Promise<RestoreMemberResult> {
  const t0 = Date.now();
  const m = o.member;
  const dataDir = dataDirOf(m);
  const part = `${dataDir}.part`;
  const initialCluster = initialClusterOf(o.inventory);

  if (await o.host.stat(dataDir)) {
    throw new StepError('precondition', `not restoring ${m.name}: its data dir ${dataDir} exists on ${o.host.label}; a restore never goes over existing data`, {
      member: m.name,
      hint: 'move it aside first (members.move-data-aside), then resume',
    });
  }
  await refuseWhileRunning(o);
  await checkIdentity(o);

  const local = await localHost.stat(o.snapshot);
  if (local?.type !== 'file') {
    throw new StepError('invalid', `${m.name}: the snapshot ${o.snapshot} is not a file on this machine`, { member: m.name, hint: 'give the path of a snapshot chosen by etcd.snapshot-select' });
  }
  // Still the snapshot that was chosen? (read once per run: see hash-memo.ts)
  const sha256 = await snapshotSha256(o.snapshot, o.signal);
  if (o.sha256 && sha256 !== o.sha256) {
    throw new StepError('failed', `the snapshot ${o.snapshot} changed since it was chosen: sha256 ${sha256.slice(0, 12)}…, chosen ${o.sha256.slice(0, 12)}…`, {
      member: m.name,
      hint: 'choose again (re-run the snapshot selection in a new run)',
    });
  }
  const staged = await stage(o, sha256, dataDir);
  // Chosen again on the member's own host (snapshot-select checked it before anything was touched): the run may
  // have been resumed elsewhere, and the refusal must hold here too.
  // The cluster's version, when the caller did not say: the etcd this member is configured to run (never the first
  // tool PATH finds: a 3.5 etcdutl would write a data dir the member's 3.4 etcd cannot open).
  const etcdDir = memberEtcdDir(m) ?? o.inventory.etcdBinDir;
  const clusterVersion = o.clusterVersion ?? (etcdDir ? (await etcdBinaryVersion(o.host, binPath(etcdDir, 'etcd'), o.signal))?.text : undefined);
  const { tool, bump } = await chooseSnapshotTool(o.host, toolDirs(m, o.inventory), {
    purpose: 'restore',
    ...(clusterVersion ? { clusterVersion } : {}),
    ...(o.allowRevisionRewind ? { allowRevisionRewind: true } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });

  let interruptedMovedTo: string | undefined;
  if (await o.host.stat(part)) {
    interruptedMovedTo = await freshPathOn(o.host, `${dataDir}.restore-interrupted-${utcStamp()}`);
    await o.host.rename(part, interruptedMovedTo);
    o.log?.(`${m.name}: a restore attempt left ${part}; moved it to ${interruptedMovedTo}`);
  }
  await o.host.mkdir(dirname(dataDir));

  const argv = restoreArgv(tool, { snapshot: staged, dataDir: part, name: m.name, peerURLs: m.peerURL, initialCluster, token: o.token }, bump, o.bumpRevision);
  o.log?.(`${m.name}: ${tool.kind} ${tool.toolVersion ?? ''} snapshot restore into ${part} on ${o.host.label}${bump ? ` (revisions bumped forward by ${o.bumpRevision ?? BUMP_REVISION})` : ' WITHOUT a revision bump (allowRevisionRewind): revisions go back to the snapshot\'s'}`);
  const r = await o.host.run(argv, { env: toolEnv(), dropEnvPrefix: 'ETCDCTL_', timeoutMs: 60 * 60_000, ...(o.signal ? { signal: o.signal } : {}) });
  if (r.exitCode !== 0) {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 500);
    // The first member's restore is also the trial restore of the chosen snapshot (power-loss-restore selects
    // without a separate one): a snapshot the restore tool rejects is named as the cause.
    const badSnapshot = /sha256|missing hash|invalid database|snapshot file/i.test(why);
    throw new StepError('failed', `${m.name}: ${tool.kind} snapshot restore failed on ${o.host.label} (exit ${r.exitCode}): ${why}`, {
      member: m.name,
      hint: badSnapshot
        ? `the snapshot ${o.snapshot} itself looks bad: move it out of the snapshot dirs and start a new run (the selection then falls back to an older one); what the restore wrote is in ${part}`
        : `what it wrote is in ${part}; a retry moves that aside and restores afresh`,
    });
  }
  const db = await o.host.stat(join(part, 'member', 'snap', 'db'));
  if (db?.type !== 'file') throw new StepError('failed', `${m.name}: the restore exited 0 but ${part}/member/snap/db is missing`, { member: m.name });

  const marker: RestoreMarker = {
    version: 1,
    runId: o.runId,
    token: o.token,
    sha256,
    snapshot: o.snapshot,
    member: m.name,
    initialCluster,
    tool: `${tool.kind} ${tool.toolVersion ?? '?'}${tool.version ? ` (etcd ${tool.version})` : ''}${bump ? ' --bump-revision' : ' (no bump)'}`,
    revisions: bump ? 'forward' : 'rewind',
    restoredAt: new Date().toISOString(),
  };
  await o.host.writeTextAtomic(join(part, RESTORE_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  await o.host.fsync(part);
  await o.host.rename(part, dataDir);
  return {
    member: m.name,
    host: o.host.label,
    dataDir,
    snapshot: o.snapshot,
    stagedSnapshot: staged,
    sha256,
    token: o.token,
    initialCluster,
    tool: marker.tool,
    revisions: bump ? 'forward' : 'rewind',
    ...(interruptedMovedTo ? { interruptedMovedTo } : {}),
    durationMs: Date.now() - t0,
  };
}
