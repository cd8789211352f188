/**
 * A rehearsal: a throwaway local cluster, the fault the runbook recovers from, the runbook run by the normal engine
 * (journaled under the state dir like any run; approvals granted up front and recorded as "rehearsal"), the
 * rehearsal's own checks, a report, and a teardown that leaves no process and no temp dir (unless `keep`).
 *
 * @example
 * const report = await rehearse({ runbook: 'nospace-recovery', stateDir: defaultStateDir() });
 * report.passed; // true
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ActionRegistry } from '../actions/types.ts';
import type { JournalRecord } from '../events/types.ts';
import { recordDecision, startRun } from '../execute/executor.ts';
import type { RunResult } from '../execute/run-types.ts';
import { runDir } from '../store/run-dir.ts';
import { BUILTIN_DIR, findRunbook } from '../runbook/find.ts';
import { loadRunbook } from '../runbook/load.ts';
import { resolveParams } from '../runbook/params.ts';
import { UserError, messageOf } from '../util/errors.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import { FAULT_DESCRIPTIONS, faultFor, injectFault, seedData, type FaultName, type FaultResult } from './faults.ts';
import { DEFAULT_LOCAL_QUOTA, startLocalCluster, type LocalClusterHandle } from './local-cluster.ts';
import { fetchedEtcdBinDir } from './etcd-builds.ts';
import { chooseSnapshotTool } from '../snapshot/etcd-tools.ts';
import { localHost } from '../hosts/local.ts';
import type { RehearsalReport } from './report.ts';
import { countOtherKeys, verifyOutcome } from './verify.ts';
import { EtcdPool } from '../etcd/pool.ts';

export interface RehearseOptions {
  /** Built-in name, a name on RUNBOOK_PATH, or a file. */
  runbook: string;
  /** Required for a runbook that is not a built-in. */
  fault?: FaultName;
  /** Members of the throwaway cluster (default 3). */
  members?: number;
  /** --quota-backend-bytes of the throwaway cluster (default 16 MiB; with fromSnapshot 2 × its size + 16 MiB). */
  quotaBytes?: number;
  /** Restore this snapshot (e.g. from staging) into every member before the fault. Only read. */
  fromSnapshot?: string;
  /** Leave the cluster running and its dir in place. */
  keep?: boolean;
  /** Runbook parameters as `-p key=value` gives them. */
  params?: Record<string, unknown>;
  stateDir: string;
  signal?: AbortSignal;
  /** Every record of the run, as `runbook run` shows them. */
  onEvent?: (rec: JournalRecord) => void;
  /** Lines about the rehearsal's own phases (cluster up, fault injected…). */
  onPhase?: (line: string) => void;
  env?: Record<string, string | undefined>;
  /** Run the throwaway cluster on `.tools/etcd-<version>/bin` (scripts/fetch-etcd.sh); default $ETCD_BIN_DIR / PATH. */
  etcdVersion?: string;
}

const MiB = 1024 * 1024;
const WHO = 'rehearsal';

interface Prepared {
  runbook: ReturnType<typeof loadRunbook>;
  text: string;
  builtIn: boolean;
  fault: FaultName;
  params: Record<string, unknown>;
  quotaBytes: number;
  members: number;
  /** Set by etcdVersion: the fetched build's bin dir. */
  etcdBinDir?: string;
}

/** Everything that can be wrong with the request, checked before any process starts (UserError, exit 2). */
export function prepareRehearsal(opts: RehearseOptions): Prepared {
  const file = findRunbook(opts.runbook, opts.env ?? process.env);
  const bytes = readFileSync(file);
  const runbook = loadRunbook(file);
  if (createHash('sha256').update(bytes).digest('hex') !== runbook.source.hash) throw new UserError(`${file} changed while it was being read; try again`);
  const builtIn = path.resolve(path.dirname(file)) === path.resolve(BUILTIN_DIR);
  const fault = faultFor(runbook.name, builtIn, opts.fault);
  const params = resolveParams(runbook, opts.params ?? {});
  const members = opts.members ?? 3;
  if (!Number.isInteger(members) || members < 1 || members > 7) throw new UserError(`--members: expected 1 to 7, got ${members}`);
  if (fault === 'member-loss' && members < 3) throw new UserError('--fault member-loss needs at least 3 members (a 2-member cluster loses quorum with one)');
  let quotaBytes = opts.quotaBytes ?? DEFAULT_LOCAL_QUOTA;
  if (opts.fromSnapshot) {
    let size: number;
    try {
      const st = statSync(opts.fromSnapshot);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch (err) {
      throw new UserError(`--from-snapshot ${opts.fromSnapshot}: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`);
    }
    // Half the quota must hold the restored data plus the fill's live keys (4 MiB) once defragmented; filling
    // the rest to NOSPACE writes about size + 16 MiB.
    if (opts.quotaBytes === undefined) quotaBytes = Math.ceil((2 * size + DEFAULT_LOCAL_QUOTA) / MiB) * MiB;
  }
  if (quotaBytes < 4 * MiB) throw new UserError(`--quota: at least 4MiB, got ${formatBytes(quotaBytes)}`);
  const etcdBinDir = opts.etcdVersion !== undefined ? fetchedEtcdBinDir(opts.etcdVersion) : undefined;
  return { runbook, text: bytes.toString('utf8'), builtIn, fault, params, quotaBytes, members, ...(etcdBinDir ? { etcdBinDir } : {}) };
}

function approvalSteps(p: Prepared): string[] {
  return p.runbook.steps.filter((s) => s.approval === 'required' || s.action === 'approve').map((s) => s.id);
}

async function runIt(p: Prepared, cluster: LocalClusterHandle, registry: ActionRegistry, opts: RehearseOptions): Promise<RunResult> {
  const handle = await startRun({
    runbook: p.runbook,
    runbookText: p.text,
    inventory: cluster.inventory(),
    params: p.params,
    registry,
    stateDir: opts.stateDir,
    requestedBy: WHO,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
  });
  // Granted up front, through the same decision files `runbook approve` writes: journaled as given by "rehearsal".
  // startRun returns before any step runs, so every approval step finds its decision.
  for (const stepId of approvalSteps(p)) recordDecision(opts.stateDir, handle.runId, stepId, { decision: 'granted', by: WHO, via: WHO });
  return handle.done;
}

/**
 * A restore on a release whose tools cannot move revisions forward (3.4.23) is refused unless the operator accepts
 * it (allowRevisionRewind). A rehearsal of it accepts it, unless the operator set the parameter, and says so in the
 * report: the rehearsal shows the restore, and the operator learns what the real run will ask for.
 */
async function acceptRewindWhereItMustBe(p: Prepared, cluster: LocalClusterHandle, opts: RehearseOptions, report: RehearsalReport, say: (line: string) => void): Promise<void> {
  if (!p.runbook.params.some((x) => x.name === 'allowRevisionRewind') || (opts.params && 'allowRevisionRewind' in opts.params)) return;
  const version = cluster.expectedVersion(cluster.members[0]!.name);
  const c = await chooseSnapshotTool(localHost, [cluster.etcdBinDir], { purpose: 'restore', clusterVersion: version, allowRevisionRewind: true });
  if (c.bump) return;
  p.params = { ...p.params, allowRevisionRewind: true };
  const note = `etcd ${version}'s ${c.tool.kind} cannot move revisions forward on a restore (no --bump-revision): rehearsed with -p allowRevisionRewind=true; on a real cluster of this version ${p.runbook.name} refuses to restore without it`;
  (report.notes ??= []).push(note);
  say(`  note: ${note}`);
}

/**
 * Rehearse one runbook end to end. Never throws for a failure of the rehearsal itself (it is in the report);
 * throws UserError for bad input before anything starts.
 */
export async function rehearse(opts: RehearseOptions): Promise<RehearsalReport> {
  const p = prepareRehearsal(opts);
  // Loaded before any process starts: the action implementations (etcd client, drivers) must all be there.
  const { createRegistry } = await import('../actions/registry.ts');
  const registry = createRegistry();
  const say = opts.onPhase ?? (() => {});
  const t0 = Date.now();
  const phases: RehearsalReport['phases'] = [];
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      phases.push({ phase: name, durationMs: Date.now() - s });
    }
  };
  const report: RehearsalReport = {
    runbook: p.runbook.name,
    runbookFile: p.runbook.source.file,
    fault: p.fault,
    passed: false,
    cluster: { members: p.members, quotaBytes: p.quotaBytes, dir: '', ...(opts.fromSnapshot ? { fromSnapshot: path.resolve(opts.fromSnapshot) } : {}) },
    steps: [],
    checks: [],
    phases,
    totalMs: 0,
  };
  say(`▶ rehearsal of ${p.runbook.name} on a throwaway ${p.members}-member etcd cluster (127.0.0.1, quota ${formatBytes(p.quotaBytes)}${opts.fromSnapshot ? `, restored from ${opts.fromSnapshot}` : ''})`);
  say(`  fault: ${p.fault} — ${FAULT_DESCRIPTIONS[p.fault]}`);

  let cluster: LocalClusterHandle | undefined;
  try {
    cluster = await phase('start cluster', () =>
      startLocalCluster({
        members: p.members,
        quotaBytes: p.quotaBytes,
        name: 'rehearsal',
        source: 'rehearsal',
        dirPrefix: 'runbook-rehearsal-',
        fillPrefix: 'rehearsal/fill/',
        killOnSignals: false,
        ...(p.etcdBinDir ? { etcdBinDir: p.etcdBinDir, expectVersion: opts.etcdVersion! } : {}),
        ...(opts.fromSnapshot ? { fromSnapshot: path.resolve(opts.fromSnapshot) } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
    report.cluster.dir = cluster.dir;
    report.cluster.etcdVersion = cluster.expectedVersion(cluster.members[0]!.name);
    report.cluster.etcdBinDir = cluster.etcdBinDir;
    await acceptRewindWhereItMustBe(p, cluster, opts, report, say);
    cluster.writeInventory(); // <dir>/cluster.yaml: for `runbook diagnose -i` on a kept cluster
    say(`  cluster up in ${formatDuration(phases.at(-1)!.durationMs)} on etcd ${report.cluster.etcdVersion} (${cluster.etcdBinDir}): ${cluster.members.map((m) => `${m.name} ${m.clientURL}`).join(', ')} (${cluster.dir})`);

    // A cluster restored from a snapshot: how many of its keys there are, to find them all again afterwards.
    let baselineKeys: number | undefined;
    if (opts.fromSnapshot) {
      const pool = new EtcdPool(cluster.inventory());
      try {
        baselineKeys = await countOtherKeys(pool, cluster.members[0]!.name);
      } finally {
        pool.close();
      }
    }
    const seeds = seedData(cluster.dir);
    const c = cluster;
    const faultResult: FaultResult = await phase('inject fault', () =>
      injectFault(c, p.fault, { registry, seeds, signal: opts.signal ?? new AbortController().signal, log: say }),
    );
    report.faultSummary = faultResult.summary;
    say(`  fault injected in ${formatDuration(phases.at(-1)!.durationMs)}: ${faultResult.summary}`);

    const result = await phase('run', () => runIt(p, c, registry, opts));
    report.run = {
      runId: result.runId,
      dir: runDir(opts.stateDir, result.runId),
      status: result.status,
      durationMs: phases.at(-1)!.durationMs,
      ...(result.error ? { error: result.error } : {}),
    };
    report.steps = result.report.steps;
    if (result.report.space) report.space = result.report.space;
    if (result.status === 'cancelled' || opts.signal?.aborted) {
      report.interrupted = String(opts.signal?.reason ?? 'interrupted');
      return report;
    }

    const verified = await phase('verify', () =>
      verifyOutcome({
        inventory: c.inventory(),
        fault: p.fault,
        faultResult,
        quotaBytes: p.quotaBytes,
        seeds,
        expectNewSnapshot: p.fault === 'none' && p.runbook.steps.some((s) => s.action === 'etcd.snapshot-save'),
        settleMs: result.status === 'succeeded' ? 15_000 : 2_000,
        ...(baselineKeys !== undefined ? { baselineKeys } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
    report.checks = verified.checks;
    // What the defragmentations gave back, as measured by each right before and after (the run's space table);
    // without one, the difference between the db sizes after the fault and now.
    if (result.report.space?.length) {
      report.reclaimedBytes = result.report.space.reduce((a, m) => a + m.reclaimedBytes, 0);
    } else if (faultResult.dbSizes) {
      const before = Object.values(faultResult.dbSizes).reduce((a, b) => a + b, 0);
      const after = Object.keys(faultResult.dbSizes).reduce((a, n) => a + (verified.dbSizes[n] ?? NaN), 0);
      if (Number.isFinite(after)) report.reclaimedBytes = Math.max(0, before - after);
    }
    const writable = verified.checks.find((ch) => ch.name === 'writes accepted')?.ok === true;
    if (result.report.timeToWritableMs !== undefined) {
      report.timeToWritableMs = result.report.timeToWritableMs;
      report.timeToWritableFrom = 'write probe';
    } else if (writable && result.status === 'succeeded' && p.fault !== 'none') {
      report.timeToWritableMs = result.report.totalMs ?? report.run.durationMs;
      report.timeToWritableFrom = 'end of run';
    }
    report.passed = result.status === 'succeeded' && verified.checks.every((ch) => ch.ok);
    return report;
  } catch (err) {
    if (opts.signal?.aborted) report.interrupted = String(opts.signal.reason ?? 'interrupted');
    else report.error = messageOf(err);
    return report;
  } finally {
    if (cluster) {
      const c = cluster;
      if (opts.keep && !report.interrupted) {
        report.cluster.kept = { inventory: path.join(c.dir, 'cluster.yaml'), pids: c.detach() };
      } else {
        await phase('teardown', () => c.teardown()).catch((err: unknown) => {
          report.error = `${report.error ? `${report.error}; ` : ''}teardown: ${messageOf(err)}`;
          report.passed = false;
        });
      }
    }
    report.totalMs = Date.now() - t0;
  }
}
