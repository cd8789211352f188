/**
 * Starting and resuming runs: the entry points of the engine. A run is kept in a StateStore (the state dir by
 * default, or a management etcd); starting one reads who the cluster is, takes its lock and journals the identity
 * the run is pinned to before any step; resuming checks the runbook and the cluster are still the run's. The run
 * itself is src/execute/run.ts. The engine never imports etcd3 or execa: the outside world is reached only through
 * the action registry it is given (and the store).
 */
import fs from 'node:fs';
import type { ActionRegistry } from '../actions/types.ts';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import type { JournalRecord } from '../events/types.ts';
import type { Inventory } from '../inventory/types.ts';
import { normalizeURL } from '../etcd/ids.ts';
import { FileStore } from '../store/file.ts';
import { memoryJournal } from '../store/journal.ts';
import { decideApproval, files, runDir, storableInventory, type ApprovalDecision, type RunMeta } from '../store/run-dir.ts';
import { newRunId } from '../store/run-id.ts';
import type { StateStore } from '../store/types.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { compareIdentity, identityMismatchError, pinnedIdentity } from './identity.ts';
import { noDecisions, type Pin } from './run-context.ts';
import { execute } from './run.ts';
import type { ResumeOptions, RunHandle, RunOptions } from './run-types.ts';
import { foldJournal, newRunState } from './state.ts';

/** The run's store: the one given, else the state dir. */
function storeOf(opts: { store?: StateStore; stateDir: string }): StateStore {
  return opts.store ?? new FileStore(opts.stateDir);
}

/**
 * Start a new run (or a dry-run). Reads who the cluster is, takes its lock (throws UserError, exit 4, when another
 * run holds it) and journals the identity the run is pinned to before any step. A store other than the state dir
 * (a management etcd) is first checked not to be the cluster being recovered.
 */
export async function startRun(opts: RunOptions): Promise<RunHandle> {
  const runId = opts.runId ?? newRunId(opts.runbook.name);
  if (opts.dryRun) {
    return execute({ ...opts, runId, journal: memoryJournal(runId), fold: newRunState(), resolutions: {}, lock: undefined, decisions: noDecisions, resumed: false });
  }
  const store = storeOf(opts);
  await store.checkNotTarget(opts.inventory);
  const identity = await liveIdentity(opts.registry, opts.inventory, opts.signal);
  const lock = await store.lockRun(identity, runId, { label: opts.inventory.name, breakLock: opts.breakLock ?? false, ...(opts.owner ? { owner: opts.owner } : {}) });
  try {
    await store.createRun(runMeta(opts, runId), opts.runbookText);
    const journal = await store.openJournal(runId, lock);
    return execute({ ...opts, runId, journal, fold: newRunState(), resolutions: {}, lock, decisions: store, resumed: false, pin: { reason: 'start', identity } });
  } catch (err) {
    await Promise.resolve(lock.release()).catch(() => {});
    throw err;
  }
}

function runMeta(opts: RunOptions, runId: string): RunMeta {
  return {
    runId,
    runbook: opts.runbook.name,
    runbookFile: opts.runbook.source.file,
    hash: opts.runbook.source.hash,
    params: opts.params,
    inventory: storableInventory(opts.inventory),
    createdAt: new Date().toISOString(),
    ...(opts.requestedBy ? { requestedBy: opts.requestedBy } : {}),
    ...(opts.approvalTimeoutMs ? { approvalTimeoutMs: opts.approvalTimeoutMs } : {}),
    ...(opts.extraApprovals?.length ? { extraApprovals: opts.extraApprovals } : {}),
  };
}

/** The inventory's addresses as an identity: what a registry that cannot read the cluster (tests) pins to. */
function inventoryIdentity(inv: Inventory): ClusterIdentity {
  const urls = inv.members.map((m) => m.peerURL || m.clientURL).filter(Boolean).map(normalizeURL);
  return { clusterId: null, members: [], peerURLs: [...new Set(urls)].sort() };
}

/** Who the cluster the inventory reaches is, as the registry reads it (cancellable). */
async function liveIdentity(registry: ActionRegistry, inv: Inventory, signal?: AbortSignal): Promise<ClusterIdentity> {
  if (!registry.clusterIdentity) return inventoryIdentity(inv);
  const id = await registry.clusterIdentity(inv, signal);
  if (signal?.aborted) throw new UserError('interrupted while reading who the cluster is; nothing was started', { exitCode: ExitCode.interrupted });
  return id;
}

/**
 * Before a resume or a takeover: the live cluster must be the one the run is pinned to (else UserError naming
 * both). Returns the identity to lock, and the record to journal when the live cluster tells more than the pin.
 */
async function checkResumeIdentity(opts: ResumeOptions, inventory: Inventory, records: readonly JournalRecord[]): Promise<{ identity: ClusterIdentity; pin?: Pin }> {
  const live = await liveIdentity(opts.registry, inventory, opts.signal);
  const pinned = pinnedIdentity(records);
  if (!pinned) return { identity: live, pin: { reason: 'resume', identity: live } }; // a run from before identities were journaled
  const verdict = compareIdentity(pinned, live);
  if (!verdict.same) throw identityMismatchError(opts.runId, verdict.why, inventory.source);
  // Lock what the run has touched too: after a restore the pinned peer URLs are the ones to keep others off.
  const identity = { ...live, peerURLs: [...new Set([...live.peerURLs, ...pinned.peerURLs])].sort() };
  return {
    identity,
    ...(verdict.repin ? { pin: { reason: verdict.repin, identity: live, previousClusterId: pinned.previousClusterId ?? pinned.clusterId } } : {}),
  };
}

/** What a resumed run takes from the run's stored meta and the resume options. */
function resumedRunOptions(opts: ResumeOptions, meta: RunMeta, inventory: Inventory): RunOptions & { runId: string } {
  return {
    runbook: opts.runbook,
    runbookText: opts.runbookText,
    inventory,
    params: meta.params,
    registry: opts.registry,
    stateDir: opts.stateDir,
    ...(opts.autoApprove ? { autoApprove: opts.autoApprove } : {}),
    ...(opts.onApproval ? { onApproval: opts.onApproval } : {}),
    ...(meta.extraApprovals ? { extraApprovals: meta.extraApprovals } : {}),
    ...(meta.approvalTimeoutMs ? { approvalTimeoutMs: meta.approvalTimeoutMs } : {}),
    ...(meta.requestedBy ? { requestedBy: meta.requestedBy } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    runId: opts.runId,
  };
}

function refuseEnded(runId: string, status: string): void {
  if (status === 'succeeded' || status === 'denied') throw new UserError(`run ${runId} already ended (${status}); nothing to resume`);
}

/**
 * Continue a run that crashed, was interrupted, or failed (`runbook resume`, or a takeover after its runner died).
 * Refuses when the runbook changed, and when the cluster the inventory reaches is not the one the run is pinned to
 * (nothing is touched then).
 */
export async function resumeRun(opts: ResumeOptions): Promise<RunHandle> {
  const store = storeOf(opts);
  const meta = await store.readRunMeta(opts.runId);
  if (opts.runbook.source.hash !== meta.hash) {
    throw new UserError(
      `runbook "${meta.runbook}" changed since run ${opts.runId} started (hash ${meta.hash.slice(0, 12)} then, ${opts.runbook.source.hash.slice(0, 12)} now): ` +
        `resuming with different steps could repeat or skip work.\n  Resume with the run's own copy: runbook resume ${opts.runId} --saved-runbook`,
    );
  }
  const inventory = opts.inventory ?? meta.inventory;
  const before = (await store.readJournal(opts.runId)).records;
  refuseEnded(opts.runId, foldJournal(before).status);
  await store.checkNotTarget(inventory);
  const checked = await checkResumeIdentity(opts, inventory, before);
  const lock = await store.lockRun(checked.identity, opts.runId, {
    label: inventory.name, breakLock: opts.breakLock ?? false, takeover: true, ...(opts.owner ? { owner: opts.owner } : {}),
  });
  try {
    // Open the journal under the lock: a previous holder (a runner whose lease ran out) may have appended since.
    const journal = await store.openJournal(opts.runId, lock);
    const fold = foldJournal(journal.records);
    refuseEnded(opts.runId, fold.status);
    // It may have pinned a new identity (a restore) until it stopped: then compare with the last one.
    const changed = journal.records.at(-1)?.seq !== before.at(-1)?.seq;
    const { pin } = changed ? await checkResumeIdentity(opts, inventory, journal.records) : checked;
    const note = journal.torn
      ? `the journal's last record was torn (line ${journal.torn.line}, ${journal.torn.bytes} bytes, saved to ${journal.torn.savedTo}); resuming from the last complete record`
      : undefined;
    const snapshotText = await store.loadSnapshot(opts.runId);
    return execute({
      ...resumedRunOptions(opts, meta, inventory),
      journal,
      fold,
      resolutions: opts.resolutions ?? {},
      lock,
      decisions: store,
      resumed: true,
      ...(note ? { resumeNote: note } : {}),
      ...(snapshotText ? { snapshotText } : {}),
      ...(pin ? { pin } : {}),
    });
  } catch (err) {
    await Promise.resolve(lock.release()).catch(() => {});
    throw err;
  }
}

/**
 * Record an approval decision for a run in a state dir from another process (a program embedding runbook; the CLI
 * and chat-ops use their store's decideApproval). First decision wins.
 */
export function recordDecision(stateDir: string, runId: string, stepId: string, d: Omit<ApprovalDecision, 'at'>) {
  const dir = runDir(stateDir, runId);
  if (!fs.existsSync(files.meta(dir))) throw new UserError(`no run ${runId} in ${stateDir}`);
  return decideApproval(dir, stepId, d);
}
