/**
 * The etcd command-line tools a snapshot needs, run on a host (this machine or a member's): which one opens and
 * restores a snapshot of THIS cluster, whether it can move revisions forward, `snapshot status`, and a trial restore.
 *
 * The choice follows the cluster's version (versions.ts: the table of what differs) and what each tool found proves
 * it can do (`snapshot restore --help` lists --bump-revision), never whichever binary PATH finds first: every place
 * a tool may be (next to the member's etcd, the inventory's etcdBinDir, PATH) is probed and the best fit is taken.
 * Inherited ETCDCTL_* variables are dropped so they cannot clash with our flags.
 */
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { Host } from '../hosts/types.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { compareVersions, minorOf, parseEtcdVersion, toolFitsCluster, traitsOf, type EtcdVersion, type SnapshotToolKind } from '../etcd/versions.ts';

export interface RestoreTool {
  kind: SnapshotToolKind;
  path: string;
  /** The tool's own version, when it told. */
  toolVersion?: string;
  /** Its `snapshot restore --help` lists --bump-revision and --mark-compacted. */
  canBump?: boolean;
  /** The cluster version the choice was made for (else the tool's). */
  version?: string;
}

/**
 * How far a restore moves revisions forward when nothing better is known (what the Kubernetes docs use): watch
 * caches see them grow. A point-in-time restore computes its own (revisionBump below), so a second restore to an
 * earlier point still lands above the first one's revisions.
 */
export const BUMP_REVISION = 1_000_000_000;

/**
 * The bump that puts a restore of `target` above `current` (the cluster's revision now, or the newest revision the
 * backups hold when it is down) with `BUMP_REVISION` to spare: room for writes between the read and the stop, for
 * what a stream had not yet recorded, and for what watchers may have seen. Revisions only ever move forward.
 */
export function revisionBump(target: number, current: number): number {
  return Math.max(0, current - target) + BUMP_REVISION;
}

const TOOL_ENV = { ETCDCTL_API: '3' };

/** "etcd Version: 3.4.23", "etcdutl version: 3.5.9", "etcdctl version: 3.4.23" → the version. */
export function parseVersion(text: string): EtcdVersion | undefined {
  return parseEtcdVersion(text);
}

export function binPath(binDir: string | undefined, name: string): string {
  return binDir ? join(binDir, name) : name;
}

/** The dir of the etcd binary a member's process command names, when that is an absolute path. */
export function memberEtcdDir(member: Pick<MemberSpec, 'driver'>): string | undefined {
  const program = member.driver.type === 'process' ? member.driver.command[0] : undefined;
  return program && isAbsolute(program) && basename(program).startsWith('etcd') ? dirname(program) : undefined;
}

/**
 * Where the etcd tools are for a member: next to the etcd binary its process command names (when that is an
 * absolute path), else the inventory's etcdBinDir, else PATH.
 */
export function memberBinDir(member: Pick<MemberSpec, 'driver'>, inventory: Pick<Inventory, 'etcdBinDir'>): string | undefined {
  return memberEtcdDir(member) ?? inventory.etcdBinDir;
}

/** Every place a member's tools may be, best first (undefined = PATH). */
export function toolDirs(member: Pick<MemberSpec, 'driver'> | undefined, inventory: Pick<Inventory, 'etcdBinDir'>): (string | undefined)[] {
  const dirs = [member ? memberEtcdDir(member) : undefined, inventory.etcdBinDir, undefined];
  return dirs.filter((d, i) => dirs.indexOf(d) === i && (d !== undefined || i === dirs.length - 1));
}

async function runQuiet(host: Host, argv: string[], signal?: AbortSignal): Promise<{ exitCode: number; out: string } | undefined> {
  try {
    const r = await host.run(argv, { env: TOOL_ENV, dropEnvPrefix: 'ETCDCTL_', timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    return { exitCode: r.exitCode, out: `${r.stdout}\n${r.stderr}` };
  } catch (err) {
    if (err instanceof StepError && (err.kind === 'cancelled' || err.kind === 'transient')) throw err;
    return undefined; // not installed
  }
}

/**
 * What a binary says about itself, remembered briefly: one run asks the same binaries on the same host many times
 * (the cluster's version, the check tool, every member's restore tool, members restored at once), and each answer
 * is a process spawn (an ssh round trip on a remote host). A binary replaced meanwhile is seen after PROBE_TTL_MS;
 * a probe that failed (cancelled, host unreachable) is not remembered.
 */
const PROBE_TTL_MS = 60_000;
const probes = new Map<string, { at: number; answer: Promise<unknown> }>();

function remembered<T>(host: Host, argv: string[], probe: () => Promise<T>): Promise<T> {
  const key = `${host.label}\0${argv.join('\0')}`;
  const known = probes.get(key);
  if (known && Date.now() - known.at < PROBE_TTL_MS) return known.answer as Promise<T>;
  const answer = probe();
  probes.set(key, { at: Date.now(), answer });
  answer.catch(() => {
    if (probes.get(key)?.answer === answer) probes.delete(key);
  });
  return answer;
}

/** The version of the etcd binary at `path` on the host (`etcd --version`), if it runs. */
export async function etcdBinaryVersion(host: Host, path: string, signal?: AbortSignal): Promise<EtcdVersion | undefined> {
  return remembered(host, [path, '--version'], async () => {
    const r = await runQuiet(host, [path, '--version'], signal);
    return r && r.exitCode === 0 ? parseEtcdVersion(r.out) : undefined;
  });
}

/** One tool at `path`: its version and whether its restore can bump revisions (capability probe: `--help`). */
export async function probeTool(host: Host, kind: SnapshotToolKind, path: string, signal?: AbortSignal): Promise<RestoreTool | undefined> {
  return remembered(host, [path, 'version', kind], async () => {
    const v = await runQuiet(host, [path, 'version'], signal);
    const version = v && v.exitCode === 0 ? parseEtcdVersion(v.out) : undefined;
    if (!version) return undefined;
    const help = await runQuiet(host, [path, 'snapshot', 'restore', '--help'], signal);
    const canBump = help !== undefined && help.out.includes('--bump-revision') && help.out.includes('--mark-compacted');
    return { kind, path, toolVersion: version.text, canBump };
  });
}

/** Every etcdutl and etcdctl found in these dirs (undefined = PATH) on the host, in dir order (probed at once). */
export async function findTools(host: Host, dirs: (string | undefined)[], signal?: AbortSignal): Promise<RestoreTool[]> {
  const probed = await Promise.all(dirs.flatMap((dir) => (['etcdutl', 'etcdctl'] as const).map((kind) => probeTool(host, kind, binPath(dir, kind), signal))));
  return probed.filter((t): t is RestoreTool => t !== undefined);
}

export interface ToolChoice {
  tool: RestoreTool;
  /** The restore moves revisions forward (--bump-revision --mark-compacted). */
  bump: boolean;
  /** Tools found and passed over, with the reason (for the log and the refusal). */
  passedOver: string[];
}

function describeTool(t: RestoreTool): string {
  return `${t.kind} ${t.toolVersion ?? '?'} (${t.path})`;
}

export interface ChooseOptions {
  /** The cluster's version (preflight, snapshot manifest, the members' etcd); undefined when nothing told. */
  clusterVersion?: string;
  /** What the tool is for: a restore must be of the cluster's own minor (etcd starts on what it writes); a check may be newer. */
  purpose: 'restore' | 'check';
  /** Accept a restore that cannot move revisions forward. */
  allowRevisionRewind?: boolean;
  signal?: AbortSignal;
}

/** What to install, said in a refusal. */
export function installHint(clusterVersion: string | undefined): string {
  const minor = clusterVersion ? minorOf(clusterVersion) : undefined;
  return minor
    ? `install the etcd ${minor}.x release tools (etcdutl, or etcdctl on 3.4) from a patch release whose \`snapshot restore --help\` lists --bump-revision, next to the member's etcd or in the inventory's etcdBinDir`
    : `install etcdutl of the cluster's etcd release (one whose \`snapshot restore --help\` lists --bump-revision) next to the member's etcd or in the inventory's etcdBinDir`;
}

/**
 * Choose among tools found: only ones that fit the cluster's version (never an older minor; etcdutl only from 3.6;
 * for a restore the same minor), then for a restore those that can bump revisions, then the version's preferred kind
 * (etcdutl from 3.5), then the closest version. Refuses (precondition) when none fits, or when a restore could
 * only rewind revisions and that was not accepted.
 */
export function chooseTool(found: RestoreTool[], where: string, o: Omit<ChooseOptions, 'signal'>): ToolChoice {
  const cv = o.clusterVersion;
  const passedOver: string[] = [];
  const fits: RestoreTool[] = [];
  for (const t of found) {
    const fit = toolFitsCluster(t.kind, t.toolVersion ?? '0.0.0', cv);
    if (!fit.ok) passedOver.push(`${describeTool(t)}: ${fit.why}`);
    else if (o.purpose === 'restore' && cv && minorOf(t.toolVersion ?? '0.0.0') !== minorOf(cv)) {
      passedOver.push(`${describeTool(t)}: a restore for etcd ${cv} is written by a ${minorOf(cv)} tool (etcd ${minorOf(cv)} must start on what it writes)`);
    } else fits.push(t);
  }
  const order: readonly SnapshotToolKind[] = cv ? traitsOf(cv).snapshotTools : ['etcdutl', 'etcdctl'];
  const key = (t: RestoreTool): number[] => [
    o.purpose === 'restore' && !t.canBump ? 1 : 0,
    order.includes(t.kind) ? order.indexOf(t.kind) : 9,
    cv && minorOf(t.toolVersion ?? '0.0.0') === minorOf(cv) ? 0 : 1,
  ];
  // Ties: the newest tool (dir order otherwise kept: the member's own dir first).
  const sorted = [...fits].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
    return compareVersions(b.toolVersion ?? '0.0.0', a.toolVersion ?? '0.0.0');
  });
  const best = sorted[0];
  const foundText = found.length ? found.map(describeTool).join(', ') : 'no etcdutl or etcdctl at all';
  if (!best) {
    throw new StepError('precondition', `${where}: no tool here can open a snapshot of etcd ${cv ?? '(version unknown)'}: found ${foundText}${passedOver.length ? ` (${passedOver.join('; ')})` : ''}`, {
      hint: installHint(cv),
    });
  }
  const tool = { ...best, ...(cv ? { version: cv } : best.toolVersion ? { version: best.toolVersion } : {}) };
  for (const t of sorted.slice(1)) passedOver.push(`${describeTool(t)}: ${best.canBump && !t.canBump && o.purpose === 'restore' ? 'cannot move revisions forward' : `${describeTool(best)} preferred`}`);
  if (o.purpose === 'check') return { tool, bump: false, passedOver };
  if (!best.canBump && !o.allowRevisionRewind) {
    const fitting = sorted.map(describeTool).join(', ');
    const others = passedOver.filter((p) => !sorted.some((t) => p.startsWith(describeTool(t))));
    throw new StepError('precondition', `${where}: no tool here can restore etcd ${cv ?? '(version unknown)'} so that revisions move forward (${fitting} ${sorted.length > 1 ? 'have' : 'has'} no --bump-revision/--mark-compacted in \`snapshot restore --help\`${others.length ? `; passed over: ${others.join('; ')}` : ''}): revisions would go BACK to the snapshot's, which breaks every Kubernetes watch cache`, {
      hint: `${installHint(cv)}; or accept it with -p allowRevisionRewind=true (the API servers are then fenced and restarted so their watch caches rebuild; restart any other client that watches etcd)`,
    });
  }
  return { tool, bump: best.canBump === true, passedOver };
}

/** Find and choose the tool on a host (see chooseTool). */
export async function chooseSnapshotTool(host: Host, dirs: (string | undefined)[], o: ChooseOptions): Promise<ToolChoice> {
  const found = await findTools(host, dirs, o.signal);
  const { signal: _s, ...rest } = o;
  return chooseTool(found, host.label, rest);
}

export interface RestoreArgs {
  snapshot: string;
  dataDir: string;
  name: string;
  peerURLs: string;
  initialCluster: string;
  token: string;
}

/** argv of the restore; with `bump` (the tool can: see chooseTool) revisions move forward by `bumpBy` and the old ones read as compacted. */
export function restoreArgv(tool: RestoreTool, a: RestoreArgs, bump = tool.canBump === true, bumpBy = BUMP_REVISION): string[] {
  return [
    tool.path, 'snapshot', 'restore', a.snapshot,
    '--data-dir', a.dataDir,
    '--name', a.name,
    '--initial-advertise-peer-urls', a.peerURLs,
    '--initial-cluster', a.initialCluster,
    '--initial-cluster-token', a.token,
    ...(bump ? ['--bump-revision', String(bumpBy), '--mark-compacted'] : []),
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
  // Bumping is not what a trial checks (the snapshot opens and its hash holds): left out.
  const argv = restoreArgv(tool, {
    snapshot: file,
    dataDir,
    name: 'trial',
    peerURLs: 'http://127.0.0.1:2380',
    initialCluster: 'trial=http://127.0.0.1:2380',
    token: 'runbook-trial',
  }, false);
  const r = await host.run(argv, { env: TOOL_ENV, dropEnvPrefix: 'ETCDCTL_', timeoutMs: 30 * 60_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) return { ok: false, problem: `a trial restore failed (exit ${r.exitCode}): ${tail(r.stderr) || tail(r.stdout)}` };
  const db = await host.stat(join(dataDir, 'member', 'snap', 'db'));
  if (db?.type !== 'file') return { ok: false, problem: 'a trial restore exited 0 but wrote no member/snap/db' };
  return { ok: true };
}

/**
 * The tool this machine would restore a snapshot with when the cluster's version is not at hand (the backup
 * stream's scratch member, its checks): the best fit of what is found next to `binDir` and on PATH, a rewind
 * accepted; callers that care whether revisions move forward read `canBump`.
 */
export async function localRestoreTool(host: Host, binDir: string | undefined, signal?: AbortSignal, clusterVersion?: string): Promise<RestoreTool> {
  const { tool } = await chooseSnapshotTool(host, toolDirs(undefined, binDir ? { etcdBinDir: binDir } : {}), {
    purpose: 'restore', allowRevisionRewind: true, ...(clusterVersion ? { clusterVersion } : {}), ...(signal ? { signal } : {}),
  });
  return tool;
}
