/**
 * The executor: runs a compiled runbook as an xstate actor with a durable journal. Start, resume, cancel,
 * approvals, dry-run. It never imports etcd3 or execa: the outside world is reached only through the action
 * registry it is given.
 */
import fs from 'node:fs';
import os from 'node:os';
import { assign, createActor, fromPromise, setup, type AnyActorRef } from 'xstate';
import type { ActionContext, ActionRegistry, StepItem } from '../actions/types.ts';
import { bindFunctions, compileRunbook, FINAL, type MachineContext, type StepInput } from '../compile/machine.ts';
import { evalBool, evalExpr, renderTemplate } from '../compile/expr.ts';
import type { ErrorInfo, JournalRecord, RunEvent, RunStatus } from '../events/types.ts';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import type { Runbook, Step } from '../runbook/model.ts';
import { ExitCode, StepError, UserError } from '../util/errors.ts';
import { openJournal, memoryJournal, readJournal, writeFileAtomic, type JournalWriter } from '../store/journal.ts';
import type { ClusterIdentity, IdentityReason } from '../events/cluster-identity.ts';
import { compareIdentity, identityMismatchError, pinnedIdentity } from './identity.ts';
import { acquireLock, type HeldLock } from '../store/machine-lock.ts';
import { normalizeURL } from '../etcd/ids.ts';
import { buildReport, type RunReport } from './report.ts';
import { createResourceScope } from './resources.ts';
import { sleep } from './retry.ts';
import {
  createRunDir, decideApproval, files, newRunId, readApproval, readRunMeta, runDir, storableInventory, type RunMeta,
} from '../store/run-dir.ts';
import { applyRecord, foldJournal, newRunState, stepState, type RunState } from './state.ts';
import { runStep, toErrorInfo, type StepEnv } from './step-runner.ts';
import type { StateStore, StoreJournalWriter, StoreLock } from '../store/types.ts';

export interface RunOptions {
  runbook: Runbook;
  /** The runbook's exact text (stored with the run; its sha256 is runbook.source.hash). */
  runbookText: string;
  inventory: Inventory;
  params: Record<string, unknown>;
  registry: ActionRegistry;
  stateDir: string;
  dryRun?: boolean;
  /** Approve every approval up front (`--yes`), recorded as given by this name. */
  autoApprove?: string;
  /** Steps that need approval besides those marked `approval: required` (chat-ops: destructive runbooks). */
  extraApprovals?: string[];
  approvalTimeoutMs?: number;
  /**
   * What to do when a step needs an approval that is not given yet: wait for a decision (chat-ops, a prompt, another
   * terminal), or 'pause': journal the request and end the run as awaiting-approval (exit 3), resumable once decided.
   */
  onApproval?: 'wait' | 'pause';
  requestedBy?: string;
  breakLock?: boolean;
  signal?: AbortSignal;
  onEvent?: (rec: JournalRecord) => void;
  runId?: string;
}

export interface ResumeOptions {
  stateDir: string;
  runId: string;
  registry: ActionRegistry;
  /** The runbook as it is now; its hash must equal the run's. */
  runbook: Runbook;
  runbookText: string;
  inventory?: Inventory;
  autoApprove?: string;
  onApproval?: 'wait' | 'pause';
  breakLock?: boolean;
  signal?: AbortSignal;
  onEvent?: (rec: JournalRecord) => void;
  resolutions?: Record<string, 'done' | 'rerun'>;
}

export interface RunResult {
  runId: string;
  /** 'awaiting-approval': paused at an approval (onApproval: 'pause'); resumable once decided. */
  status: Exclude<RunStatus, 'running'>;
  error?: ErrorInfo & { stepId?: string };
  report: RunReport;
  records: readonly JournalRecord[];
  exitCode: number;
}

export interface RunHandle {
  runId: string;
  dir?: string;
  done: Promise<RunResult>;
  /**
   * Record a decision; resolves once it is durable (in the run dir, or written to the store), true when it was
   * the first one. Rejects when it could not be recorded: a caller must never report an approval that did not land.
   */
  approve(stepId: string, by: string, via: string): Promise<boolean>;
  deny(stepId: string, by: string, via: string, reason?: string): Promise<boolean>;
  /** Steps currently waiting for a decision. */
  pendingApprovals(): string[];
}

const DEFAULT_APPROVAL_TIMEOUT_MS = 24 * 3600_000;
const APPROVAL_POLL_MS = 200;

/**
 * Start a new run (or a dry-run). Reads who the cluster is, takes its machine-wide lock (throws UserError, exit 4,
 * when another run holds it) and journals the identity the run is pinned to before any step.
 */
export async function startRun(opts: RunOptions): Promise<RunHandle> {
  const runId = opts.runId ?? newRunId(opts.runbook.name);
  if (opts.dryRun) {
    const journal = memoryJournal(runId);
    return execute({ ...opts, runId, journal, fold: newRunState(), resolutions: {}, dir: undefined, lock: undefined, resumed: false });
  }
  const identity = await liveIdentity(opts.registry, opts.inventory, opts.signal);
  const journalFile = files.journal(runDir(opts.stateDir, runId));
  const lock = acquireLock(identity, runId, { breakLock: opts.breakLock ?? false, journal: journalFile, label: opts.inventory.name });
  try {
    const dir = createRunDir(opts.stateDir, runMeta(opts, runId), opts.runbookText);
    const journal = openJournal(files.journal(dir), runId);
    return execute({ ...opts, runId, journal, fold: newRunState(), resolutions: {}, dir, lock, resumed: false, pin: { reason: 'start', identity } });
  } catch (err) {
    lock.release();
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

interface Pin {
  reason: IdentityReason;
  identity: ClusterIdentity;
  previousClusterId?: string | null;
}

/** What a resumed run takes from the run's stored meta and the resume options (local and stored runs alike). */
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

/**
 * Continue a run that crashed, was interrupted, or failed. Refuses when the runbook changed, and when the cluster
 * the inventory reaches is not the one the run is pinned to (nothing is touched then).
 */
export async function resumeRun(opts: ResumeOptions): Promise<RunHandle> {
  const meta = readRunMeta(opts.stateDir, opts.runId);
  const dir = runDir(opts.stateDir, opts.runId);
  if (opts.runbook.source.hash !== meta.hash) {
    throw new UserError(
      `runbook "${meta.runbook}" changed since run ${opts.runId} started (hash ${meta.hash.slice(0, 12)} then, ${opts.runbook.source.hash.slice(0, 12)} now): ` +
        `resuming with different steps could repeat or skip work.\n  Resume with the run's own copy: runbook resume ${opts.runId} --saved-runbook`,
    );
  }
  const inventory = opts.inventory ?? meta.inventory;
  const read = readJournal(files.journal(dir));
  const fold = foldJournal(read.records);
  if (fold.status === 'succeeded' || fold.status === 'denied') {
    throw new UserError(`run ${opts.runId} already ended (${fold.status}); nothing to resume`);
  }
  const { identity, pin } = await checkResumeIdentity(opts, inventory, read.records);
  const lock = acquireLock(identity, opts.runId, { breakLock: opts.breakLock ?? false, journal: files.journal(dir), label: inventory.name });
  try {
    const journal = openJournal(files.journal(dir), opts.runId);
    const note = journal.torn
      ? `the journal's last record was torn (line ${journal.torn.line}, ${journal.torn.bytes} bytes, saved to ${journal.torn.savedTo}); resuming from the last complete record`
      : undefined;
    const fold2 = foldJournal(journal.records);
    return execute({
      ...resumedRunOptions(opts, meta, inventory),
      journal,
      fold: fold2,
      resolutions: opts.resolutions ?? {},
      dir,
      lock,
      resumed: true,
      ...(note ? { resumeNote: note } : {}),
      ...(pin ? { pin } : {}),
    });
  } catch (err) {
    lock.release();
    throw err;
  }
}

/**
 * Start a run whose state lives in a StateStore. The file store (or none) is exactly `startRun`; another store
 * (a management etcd) is checked not to be the target cluster, then holds the lock, the run and its journal.
 */
export async function startStoredRun(opts: RunOptions & { store?: StateStore; owner?: string }): Promise<RunHandle> {
  const store = opts.store;
  if (!store || store.kind === 'file' || opts.dryRun) return startRun(opts);
  const runId = opts.runId ?? newRunId(opts.runbook.name);
  await store.checkNotTarget(opts.inventory);
  const identity = await liveIdentity(opts.registry, opts.inventory, opts.signal);
  // The machine-wide lock keeps this runner's neighbours off; the store's keeps runners on other machines off.
  const local = acquireLock(identity, runId, { breakLock: opts.breakLock ?? false, label: opts.inventory.name });
  let lock: StoreLock | undefined;
  try {
    lock = await store.acquireLock(identity, runId, { label: opts.inventory.name, breakLock: opts.breakLock ?? false, ...(opts.owner ? { owner: opts.owner } : {}) });
    await store.createRun(runMeta(opts, runId), opts.runbookText);
    const journal = await store.openJournal(runId, lock);
    return execute({ ...opts, runId, journal, fold: newRunState(), resolutions: {}, dir: undefined, lock, localLock: local, resumed: false, store, pin: { reason: 'start', identity } });
  } catch (err) {
    local.release();
    if (lock) await Promise.resolve(lock.release()).catch(() => {});
    throw err;
  }
}

/** Resume a run kept in a StateStore (a takeover after its runner died, or `runbook resume --store`). */
export async function resumeStoredRun(opts: ResumeOptions & { store?: StateStore; owner?: string }): Promise<RunHandle> {
  const store = opts.store;
  if (!store || store.kind === 'file') return resumeRun(opts);
  const meta = await store.readRunMeta(opts.runId);
  if (opts.runbook.source.hash !== meta.hash) {
    throw new UserError(
      `runbook "${meta.runbook}" changed since run ${opts.runId} started (hash ${meta.hash.slice(0, 12)} then, ${opts.runbook.source.hash.slice(0, 12)} now): ` +
        `resuming with different steps could repeat or skip work.\n  Resume with the run's own copy: runbook resume ${opts.runId} --saved-runbook`,
    );
  }
  const inventory = opts.inventory ?? meta.inventory;
  const before = foldJournal((await store.readJournal(opts.runId)).records);
  if (before.status === 'succeeded' || before.status === 'denied') {
    throw new UserError(`run ${opts.runId} already ended (${before.status}); nothing to resume`);
  }
  await store.checkNotTarget(inventory);
  const checked = await checkResumeIdentity(opts, inventory, (await store.readJournal(opts.runId)).records);
  const lock = await store.acquireLock(checked.identity, opts.runId, { label: inventory.name, breakLock: opts.breakLock ?? false, ...(opts.owner ? { owner: opts.owner } : {}) });
  let local: HeldLock | undefined;
  try {
    // The store's lock decided who runs it; a runner of this same run on this machine that lost it (frozen past
    // its lease) is fenced off from the store, so its machine-wide lock is taken over rather than waited for.
    local = acquireLock(checked.identity, opts.runId, { breakLock: opts.breakLock ?? false, label: inventory.name, takeOverSameRun: true });
    // Read the journal again under the lock: the previous holder may have appended until its lease ran out.
    const journal = await store.openJournal(opts.runId, lock);
    const fold = foldJournal(journal.records);
    if (fold.status === 'succeeded' || fold.status === 'denied') {
      throw new UserError(`run ${opts.runId} already ended (${fold.status}); nothing to resume`);
    }
    // The previous holder may have pinned a new identity (a restore) until it stopped: compare with the last one.
    const { pin } = await checkResumeIdentity(opts, inventory, journal.records);
    const snapshotText = await store.loadSnapshot(opts.runId);
    return execute({
      ...resumedRunOptions(opts, meta, inventory),
      journal,
      fold,
      resolutions: opts.resolutions ?? {},
      dir: undefined,
      lock,
      localLock: local,
      resumed: true,
      store,
      ...(snapshotText ? { snapshotText } : {}),
      ...(pin ? { pin } : {}),
    });
  } catch (err) {
    local?.release();
    await Promise.resolve(lock.release()).catch(() => {});
    throw err;
  }
}

/** Record an approval decision from another process (CLI `runbook approve`, chat-ops). First decision wins. */
export function recordDecision(stateDir: string, runId: string, stepId: string, d: { decision: 'granted' | 'denied'; by: string; via: string; reason?: string }) {
  const dir = runDir(stateDir, runId);
  if (!fs.existsSync(files.meta(dir))) throw new UserError(`no run ${runId} in ${stateDir}`);
  return decideApproval(dir, stepId, d);
}

interface ExecInternals extends RunOptions {
  runId: string;
  journal: JournalWriter;
  fold: RunState;
  resolutions: Record<string, 'done' | 'rerun'>;
  dir: string | undefined;
  lock: HeldLock | StoreLock | undefined;
  /** With a remote store: the machine-wide lock taken besides the store's. */
  localLock?: HeldLock;
  /** The identity to journal before the first step (start; resume when the live cluster tells more). */
  pin?: Pin;
  resumed: boolean;
  resumeNote?: string;
  /** A non-file store (etcd): approvals and the machine snapshot go there instead of the run dir. */
  store?: StateStore;
  /** The persisted machine snapshot read from the store (resume). */
  snapshotText?: string;
}

function inventoryView(inv: Inventory): Record<string, unknown> {
  const s = storableInventory(inv) as unknown as Record<string, unknown>;
  for (const k of ['tls', 'auth', 'kubernetes', 'snapshots', 'etcdBinDir', 'quotaBytes', 'requestTimeoutMs']) s[k] ??= null;
  return s;
}

function findMember(inv: Inventory, name: string): MemberSpec | undefined {
  return inv.members.find((m) => m.name === name);
}

function execute(x: ExecInternals): RunHandle {
  const { runbook, registry, journal, fold, runId } = x;
  const compiled = compileRunbook(runbook);
  const stepsById = new Map(runbook.steps.map((s) => [s.id, s]));
  const step = (id: string): Step => stepsById.get(id)!;
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(x.signal!.reason);
  if (x.signal?.aborted) onOuterAbort();
  x.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const resources = createResourceScope();
  const invView = inventoryView(x.inventory);
  const extraApprovals = new Set(x.extraApprovals ?? []);
  const approvalWaiters = new Map<string, () => void>();
  const started = Date.now();

  // When the journal cannot be written (disk full, state dir read-only…) the run must not take another step whose
  // checkpoint it cannot record: the first failed append aborts the run and fails the step in hand before its side
  // effect; what follows is only displayed. The run stays resumable from its last durable record.
  const resumeCommand = `runbook resume ${runId}`;
  let journalError: StepError | undefined;
  let unjournaled = 0;
  const emit = (event: RunEvent): JournalRecord => {
    let rec: JournalRecord;
    let failedNow: StepError | undefined;
    if (journalError) {
      rec = { ...event, seq: -++unjournaled, ts: new Date().toISOString(), runId } as JournalRecord;
    } else {
      try {
        rec = journal.append(event);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        journalError = failedNow = new StepError('stuck', `cannot write the run journal (${x.dir ?? 'memory'}): ${code}; the run stopped before taking another step`, {
          hint: `once the state dir is writable again: ${resumeCommand}`,
        });
        if (!abort.signal.aborted) abort.abort('journal');
        rec = { ...event, seq: -++unjournaled, ts: new Date().toISOString(), runId } as JournalRecord;
      }
    }
    applyRecord(fold, rec);
    try {
      x.onEvent?.(rec);
    } catch {
      /* a display must never break a run */
    }
    if (failedNow) throw failedNow;
    return rec;
  };
  // the step runner appends through the same path so the fold and the listeners see everything
  const journalView: JournalWriter = {
    records: journal.records, append: emit, close: () => journal.close(),
    ...(journal.flush ? { flush: () => journal.flush!() } : {}),
  };

  const scope = (context: MachineContext, item?: StepItem) => ({
    params: context.params,
    inventory: invView,
    steps: context.steps,
    item: item ? { key: item.key, index: item.index, name: item.member?.name ?? item.key, value: item.value ?? null } : null,
  });

  const makeContext = (s: Step, attempt: number, item: StepItem | undefined, signal: AbortSignal, deadline: number | undefined): ActionContext => ({
    runId,
    stepId: s.id,
    attempt,
    firstStartedAt: stepState(fold, s.id).item.get(item?.key ?? '')?.firstStartedAt ?? Date.now(),
    ...(item ? { item } : {}),
    inventory: x.inventory,
    params: x.params,
    steps: Object.fromEntries([...fold.steps].map(([id, st]) => [id, {
      status: st.status === 'succeeded' ? 'succeeded' : st.status === 'skipped' ? 'skipped' : 'failed',
      output: st.output ?? st.item.get('')?.output,
      items: Object.fromEntries([...st.item].filter(([k]) => k !== '').map(([k, v]) => [k, v.output])),
    }])) as ActionContext['steps'],
    signal,
    ...(deadline ? { deadline } : {}),
    dryRun: x.dryRun ?? false,
    stateDir: x.stateDir,
    resources,
    log: (message, data) => {
      emit({ type: 'step.log', stepId: s.id, ...(item ? { item: item.key } : {}), message, ...(data ? { data } : {}) });
    },
  });

  const env: StepEnv = { runId, journal: journalView, fold, signal: abort.signal, dryRun: x.dryRun ?? false, resolutions: x.resolutions, resumeCommand, makeContext };

  const renderInput = (s: Step, context: MachineContext, item?: StepItem): unknown => {
    const meta = registry.meta(s.action);
    if (!meta) throw new StepError('invalid', `unknown action "${s.action}"`);
    let raw: unknown;
    try {
      raw = renderTemplate(s.with, scope(context, item));
    } catch (err) {
      throw new StepError('invalid', `step "${s.id}": ${(err as Error).message}`);
    }
    // A template that gives null means "not given": drop the key so the action's default applies.
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      raw = Object.fromEntries(Object.entries(raw as Record<string, unknown>).filter(([, v]) => v !== null));
    }
    const parsed = meta.input.safeParse(raw);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'with'}: ${i.message}`).join('; ');
      throw new StepError('invalid', `step "${s.id}": input for ${s.action} is invalid after substitution: ${msg}`);
    }
    return parsed.data;
  };

  const itemFor = (s: Step, context: MachineContext, index: number): StepItem => {
    const keys = context.items[s.id] ?? [];
    const key = keys[index]!;
    const member = findMember(x.inventory, key);
    const st = stepState(fold, s.id);
    const done = keys.filter((k) => st.item.get(k)?.status === 'succeeded');
    return {
      key, index, total: keys.length, value: key, done,
      ...(member ? { member } : {}),
      ...(s.forEach?.kind === 'members' ? { moveLeaderFirst: s.forEach.moveLeaderFirst } : {}),
    };
  };

  // ---- actors ---------------------------------------------------------------------------------
  type In = StepInput & { context: MachineContext };
  const stepActor = fromPromise<unknown, In>(async ({ input }) => {
    const s = step(input.stepId);
    const meta = registry.meta(s.action)!;
    const item = input.index === undefined ? undefined : itemFor(s, input.context, input.index);
    const st = stepState(fold, s.id).item.get(item?.key ?? '');
    if (st?.status === 'succeeded') return st.output;
    const value = renderInput(s, input.context, item);
    if (meta.perMember === 'required' && !item?.member) throw new StepError('invalid', `step "${s.id}": ${s.action} needs a forEach over members`);
    await registry.load?.([s.action]);
    if (meta.mutates && !x.dryRun) {
      await checkIdentity(s, item);
      // A restore gives the cluster new ids: say so before the first member is restored, so that the new identity
      // the restored members answer with is taken as this run's (and nothing else's) from here on.
      const pinned = pinnedIdentity(journal.records);
      if (meta.resetsIdentity && pinned && pinned.reason !== 'restore') {
        emit({ type: 'cluster.identity', reason: 'restore', identity: { clusterId: null, members: [], peerURLs: pinned.peerURLs }, previousClusterId: pinned.clusterId });
      }
    }
    const output = await runStep(env, s, meta, registry.impl(s.action), value, item);
    if (!x.dryRun && pinnedIdentity(journal.records)?.clusterId === null) await repinIfAnswering();
    return output;
  });

  /** The live cluster against the pinned identity, before a mutating step: a mismatch stops the run, nothing touched. */
  const checkIdentity = async (s: Step, item: StepItem | undefined): Promise<void> => {
    if (!registry.clusterIdentity) return;
    const pinned = pinnedIdentity(journal.records);
    const live = await registry.clusterIdentity(x.inventory, abort.signal);
    if (abort.signal.aborted) throw new StepError('cancelled', 'run interrupted');
    if (!pinned) {
      emit({ type: 'cluster.identity', reason: 'resume', identity: live });
      return;
    }
    const verdict = compareIdentity(pinned, live);
    if (!verdict.same) {
      throw new StepError('precondition', `${item ? `${s.id}[${item.key}]` : s.id} not run: ${verdict.why}`, {
        hint: `the inventory (${x.inventory.source}) reaches another cluster than this run's: check it, then ${resumeCommand} --inventory <the run's cluster>`,
      });
    }
    if (verdict.repin) emit({ type: 'cluster.identity', reason: verdict.repin, identity: live, previousClusterId: pinned.previousClusterId ?? pinned.clusterId });
  };

  /** While no member has answered yet (a start on a cluster that was down, or after a restore): pin the first answer. */
  const repinIfAnswering = async (): Promise<void> => {
    if (!registry.clusterIdentity || abort.signal.aborted) return;
    const pinned = pinnedIdentity(journal.records);
    if (!pinned || pinned.clusterId !== null) return;
    let live: ClusterIdentity;
    try {
      live = await registry.clusterIdentity(x.inventory, abort.signal);
    } catch {
      return; // the next mutating step reads again, and refuses on a mismatch
    }
    if (!live.clusterId) return;
    const verdict = compareIdentity(pinned, live);
    if (verdict.same && verdict.repin) emit({ type: 'cluster.identity', reason: verdict.repin, identity: live, previousClusterId: pinned.previousClusterId ?? pinned.clusterId });
  };

  const decide = fromPromise<{ skip: boolean; approval: boolean; reason?: string }, In>(async ({ input }) => {
    const s = step(input.stepId);
    const st = stepState(fold, s.id);
    if (st.status === 'skipped') return { skip: true, approval: false };
    let skip = false;
    let reason = '';
    if (s.when) {
      try {
        skip = !evalBool(s.when, scope(input.context));
      } catch (err) {
        throw new StepError('invalid', `step "${s.id}": when: ${(err as Error).message}`);
      }
      reason = `when: ${s.when} is false`;
    }
    if (skip) {
      emit({ type: 'step.skipped', stepId: s.id, reason });
      return { skip, approval: false, reason };
    }
    const needs = (s.approval === 'required' || s.action === 'approve' || extraApprovals.has(s.id)) && st.approval?.status !== 'granted' && !x.dryRun;
    if (x.dryRun && (s.approval === 'required' || extraApprovals.has(s.id))) {
      emit({ type: 'step.log', stepId: s.id, message: 'would wait for approval here' });
    }
    return { skip: false, approval: needs };
  });

  const approval = fromPromise<void, In>(async ({ input }) => {
    const s = step(input.stepId);
    const st = stepState(fold, s.id);
    if (st.approval?.status === 'granted') return;
    if (st.approval?.status === 'denied') throw new StepError('denied', `step "${s.id}" was denied by ${st.approval.by}`);
    const timeout = x.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
    const existing = x.store ? await x.store.readApproval(runId, s.id) : x.dir ? readApproval(x.dir, s.id) : undefined;
    let decision = existing;
    if (!decision && x.autoApprove && x.store) {
      decision = (await x.store.decideApproval(runId, s.id, { decision: 'granted', by: x.autoApprove, via: 'cli --yes' })).decision;
    }
    if (!decision && x.autoApprove) {
      decision = x.dir ? decideApproval(x.dir, s.id, { decision: 'granted', by: x.autoApprove, via: 'cli --yes' }).decision : { decision: 'granted', by: x.autoApprove, via: 'cli --yes', at: '' };
    }
    if (!decision) {
      const expiresAt = st.approval?.expiresAt ?? Date.now() + timeout;
      // Requested again by every process that waits (a resume too), with the first request's expiry: whoever
      // watches this process (a prompt, chat) learns that it waits, and the journal says since when.
      if (Date.now() < expiresAt) {
        emit({ type: 'approval.requested', stepId: s.id, ...(s.description ? { message: s.description } : {}), expiresAt });
        if (x.onApproval === 'pause') {
          throw new StepError('paused', `step "${s.id}" is waiting for approval`, { hint: `runbook approve ${runId} ${s.id}, then ${resumeCommand}` });
        }
      }
      // Wait for a decision file (written by this process, the CLI in another terminal, or chat-ops). Bounded by expiry.
      while (!decision) {
        if (abort.signal.aborted) throw new StepError('cancelled', 'run interrupted while waiting for approval');
        if (Date.now() >= expiresAt) {
          if (x.store) decision = (await x.store.decideApproval(runId, s.id, { decision: 'denied', by: 'runbook', via: 'expiry', reason: 'approval expired' })).decision;
          decision ??= x.dir ? decideApproval(x.dir, s.id, { decision: 'denied', by: 'runbook', via: 'expiry', reason: 'approval expired' }).decision : undefined;
          decision ??= { decision: 'denied', by: 'runbook', via: 'expiry', reason: 'approval expired', at: '' };
          break;
        }
        decision = x.store ? await x.store.readApproval(runId, s.id).catch(() => undefined) : x.dir ? readApproval(x.dir, s.id) : undefined;
        if (decision) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(APPROVAL_POLL_MS, Math.max(0, expiresAt - Date.now())));
          approvalWaiters.set(s.id, () => { clearTimeout(t); resolve(); });
          abort.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        approvalWaiters.delete(s.id);
      }
    }
    if (decision.decision === 'granted') {
      emit({ type: 'approval.granted', stepId: s.id, by: decision.by, via: decision.via });
      return;
    }
    emit({ type: 'approval.denied', stepId: s.id, by: decision.by, via: decision.via, ...(decision.reason ? { reason: decision.reason } : {}) });
    throw new StepError('denied', `step "${s.id}" was denied by ${decision.by}${decision.reason ? ` (${decision.reason})` : ''}`);
  });

  const items = fromPromise<string[], In>(async ({ input }) => {
    const s = step(input.stepId);
    const st = stepState(fold, s.id);
    if (st.items) return st.items; // pinned on first resolution: a resume walks the same list
    const fe = s.forEach!;
    let keys: string[];
    if (fe.kind === 'members') {
      const ctx = makeContext(s, 1, undefined, abort.signal, Date.now() + 30_000);
      const members = registry.resolveMembers
        ? await registry.resolveMembers(ctx, fe.members, fe.order)
        : x.inventory.members;
      keys = members.map((m) => m.name);
    } else {
      const list = evalExpr(fe.items, scope(input.context));
      if (!Array.isArray(list)) throw new StepError('invalid', `step "${s.id}": forEach.items did not give a list`);
      keys = list.map((v) => (v && typeof v === 'object' && 'name' in v ? String((v as { name: unknown }).name) : String(v)));
      if (new Set(keys).size !== keys.length) throw new StepError('invalid', `step "${s.id}": forEach.items has duplicate entries`);
    }
    emit({ type: 'step.items', stepId: s.id, items: keys });
    return keys;
  });

  const gate = fromPromise<void, In>(async ({ input }) => {
    const s = step(input.stepId);
    const meta = registry.meta(s.gate!);
    await registry.load?.([s.gate!]);
    const impl = registry.impl(s.gate!);
    if (!meta || !impl) throw new StepError('unimplemented', `gate "${s.gate}" has no implementation`);
    const item = input.index === undefined ? undefined : itemFor(s, input.context, input.index);
    if (x.dryRun) {
      emit({ type: 'step.log', stepId: s.id, ...(item ? { item: item.key } : {}), message: `would check gate ${s.gate} here` });
      return;
    }
    const value = meta.input.parse({});
    const ctx = makeContext(s, 1, item, abort.signal, undefined);
    await impl.run(ctx, value);
    emit({ type: 'step.log', stepId: s.id, ...(item ? { item: item.key } : {}), message: `gate ${s.gate} passed` });
  });

  const actors: Record<string, typeof stepActor> = {};
  for (const name of new Set(runbook.steps.map((s) => s.action))) actors[name] = stepActor;

  const machine = setup({
    types: {} as { context: MachineContext; input: { params: Record<string, unknown> } },
    actors: { ...actors, decide, approval, items, gate } as Record<string, any>,
    guards: {
      decidedSkip: ({ event }) => (event as any).output?.skip === true,
      decidedApproval: ({ event }) => (event as any).output?.approval === true,
      hasMoreItems: ({ context }, p: { stepId: string }) => (context.index[p.stepId] ?? 0) < (context.items[p.stepId]?.length ?? 0),
    },
    actions: {
      recordSkip: assign(({ context }, p: { stepId: string }) => ({ steps: { ...context.steps, [p.stepId]: { status: 'skipped' as const } } })),
      setItems: assign(({ context, event }, p: { stepId: string }) => ({
        items: { ...context.items, [p.stepId]: (event as any).output as string[] },
        index: { ...context.index, [p.stepId]: 0 },
        steps: { ...context.steps, [p.stepId]: { status: 'succeeded' as const, items: {} } },
      })),
      recordItem: assign(({ context, event }, p: { stepId: string }) => {
        const s = step(p.stepId);
        const i = context.index[p.stepId] ?? 0;
        const key = context.items[p.stepId]![i]!;
        const prev = context.steps[p.stepId] ?? { status: 'succeeded' as const, items: {} };
        return {
          steps: { ...context.steps, [p.stepId]: { ...prev, items: { ...prev.items, [key]: (event as any).output ?? null } } },
          index: s.gate ? context.index : { ...context.index, [p.stepId]: i + 1 },
        };
      }),
      advanceItem: assign(({ context }, p: { stepId: string }) => ({ index: { ...context.index, [p.stepId]: (context.index[p.stepId] ?? 0) + 1 } })),
      finishItems: ({ context }, p: { stepId: string }) => {
        const st = stepState(fold, p.stepId);
        if (st.status !== 'succeeded') emit({ type: 'step.finished', stepId: p.stepId, status: 'succeeded', durationMs: Date.now() - (st.startedAt ?? Date.now()), output: context.steps[p.stepId]?.items ?? {} });
      },
      recordOutput: assign(({ context, event }, p: { stepId: string }) => {
        const st = stepState(fold, p.stepId);
        const output = (event as any).output ?? null;
        if (st.status !== 'succeeded') emit({ type: 'step.finished', stepId: p.stepId, status: 'succeeded', durationMs: Date.now() - (st.startedAt ?? Date.now()), output });
        return { steps: { ...context.steps, [p.stepId]: { status: 'succeeded' as const, output } } };
      }),
      recordFailure: assign(({ context, event }, p: { stepId: string; optional: boolean }) => {
        const info = toErrorInfo((event as any).error);
        const st = stepState(fold, p.stepId);
        if (info.kind === 'paused') return { error: { stepId: p.stepId, ...info } }; // still waiting: not a failure of the step
        if (st.status !== 'failed' || p.optional) emit({ type: 'step.finished', stepId: p.stepId, status: 'failed', durationMs: Date.now() - (st.startedAt ?? Date.now()) });
        const steps = { ...context.steps, [p.stepId]: { status: 'failed' as const } };
        if (p.optional) {
          emit({ type: 'step.log', stepId: p.stepId, message: `optional step failed, continuing: ${info.message}` });
          return { steps };
        }
        return { steps, error: { stepId: p.stepId, ...info } };
      }),
    },
  }).createMachine(
    bindFunctions(compiled.config, {
      initialContext: () => ({ input }: { input: { params: Record<string, unknown> } }) => ({ params: input.params, steps: {}, items: {}, index: {} }),
      ctxInput: ({ stepId }) => ({ context }: { context: MachineContext }) => ({ stepId, context }),
      itemInput: ({ stepId }) => ({ context }: { context: MachineContext }) => ({ stepId, index: context.index[stepId as string] ?? 0, context }),
      gateInput: ({ stepId }) => ({ context }: { context: MachineContext }) => ({ stepId, index: context.index[stepId as string] ?? 0, context }),
    }) as any,
  );

  // ---- start or restore ------------------------------------------------------------------------
  const snapshotFile = x.dir ? files.snapshot(x.dir) : undefined;
  let restored: unknown;
  if (x.resumed && snapshotFile && fold.status !== 'failed' && fold.status !== 'cancelled') {
    try {
      const saved = JSON.parse(fs.readFileSync(snapshotFile, 'utf8')) as { hash: string; snapshot: { status: string } };
      if (saved.hash === runbook.source.hash && saved.snapshot?.status === 'active') restored = saved.snapshot;
    } catch {
      restored = undefined; // missing or damaged: rebuild from the journal (journaled steps return at once)
    }
  }
  const remoteSnapshots = x.store ? (journal as StoreJournalWriter).saveSnapshot?.bind(journal) : undefined;
  if (x.resumed && x.snapshotText && fold.status !== 'failed' && fold.status !== 'cancelled') {
    try {
      const saved = JSON.parse(x.snapshotText) as { hash: string; snapshot: { status: string } };
      if (saved.hash === runbook.source.hash && saved.snapshot?.status === 'active') restored = saved.snapshot;
    } catch {
      restored = undefined;
    }
  }

  if (x.resumed) {
    emit({ type: 'run.resumed', runId, pid: process.pid, ...(x.resumeNote ? { note: x.resumeNote } : restored ? { note: 'restored from the persisted machine snapshot' } : { note: 'replaying from the journal' }) });
  } else {
    emit({
      type: 'run.started', runId, runbook: runbook.name, runbookFile: runbook.source.file, hash: runbook.source.hash,
      params: x.params,
      inventory: { name: x.inventory.name, source: x.inventory.source, members: x.inventory.members.map((m) => m.name) },
      dryRun: x.dryRun ?? false, pid: process.pid, host: os.hostname(),
      ...(x.requestedBy ? { requestedBy: x.requestedBy } : {}),
    });
  }

  if (x.pin) emit({ type: 'cluster.identity', reason: x.pin.reason, identity: x.pin.identity, ...(x.pin.previousClusterId !== undefined ? { previousClusterId: x.pin.previousClusterId } : {}) });

  const actor = restored
    ? createActor(machine, { snapshot: restored as any, input: { params: x.params } })
    : createActor(machine, { input: { params: x.params } });

  let lastGood = '';
  actor.subscribe({
    next: (snap) => {
      if ((!snapshotFile && !remoteSnapshots) || snap.status === 'error') return; // never overwrite a good snapshot with an error one
      try {
        const data = JSON.stringify({ hash: runbook.source.hash, snapshot: actor.getPersistedSnapshot() });
        if (data !== lastGood) {
          if (snapshotFile) writeFileAtomic(snapshotFile, data);
          else remoteSnapshots!(data);
          lastGood = data;
        }
      } catch {
        /* the journal is the source of truth; a failed snapshot write only costs a replay */
      }
    },
    error: () => {},
  });

  const done = new Promise<RunResult>((resolve) => {
    const finish = async (status: RunResult['status'], error?: ErrorInfo & { stepId?: string }) => {
      await resources.dispose();
      if (journalError) {
        status = 'failed';
        error = { ...toErrorInfo(journalError), ...(error?.stepId ? { stepId: error.stepId } : {}) };
      }
      const report = buildReport(runbook, fold, started);
      // The machine-wide lock goes before the run's last record: a kill right after `run.finished` then leaves no
      // lock behind (and one left anyway is cleared by the next run, since the journal says this one ended).
      if (x.dir) (x.lock as HeldLock | undefined)?.release();
      x.localLock?.release();
      const rec = emit({ type: 'run.finished', status, ...(error ? { error } : {}), durationMs: Date.now() - (fold.startedAt ?? started), report });
      void rec;
      try {
        await journal.flush?.(); // a remote store: everything durable, or this runner was fenced off
      } catch (err) {
        status = 'failed';
        error = { ...toErrorInfo(err), ...(error?.stepId ? { stepId: error.stepId } : {}) };
      }
      try {
        journal.close();
      } catch {
        /* nothing more can be written anyway */
      }
      const released = x.lock?.release();
      if (released) await released.catch(() => {});
      x.signal?.removeEventListener('abort', onOuterAbort);
      const exitCode = status === 'succeeded' ? ExitCode.ok
        : status === 'denied' ? ExitCode.denied
        : status === 'awaiting-approval' ? ExitCode.awaitingApproval
        : status === 'cancelled' ? (abort.signal.reason === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted)
        : ExitCode.failed;
      resolve({ runId, status, ...(error ? { error } : {}), report, records: journal.records, exitCode });
    };
    actor.subscribe({
      complete: () => {
        const snap = actor.getSnapshot();
        const value = snap.value as string;
        const ctxErr = snap.context.error;
        if (value === FINAL.succeeded) void finish('succeeded');
        else if (value === FINAL.denied && ctxErr?.kind === 'paused') void finish('awaiting-approval', ctxErr);
        // Ctrl-C while waiting for an approval leaves through the approval's error edge: that is an interrupt,
        // not a denial, and the run must stay resumable.
        else if (value === FINAL.denied && ctxErr?.kind !== 'cancelled') void finish('denied', ctxErr);
        else if (abort.signal.aborted) {
          emit({ type: 'run.interrupted', signal: String(abort.signal.reason ?? 'abort') });
          void finish('cancelled', ctxErr ?? { kind: 'cancelled', message: 'run interrupted' });
        } else void finish('failed', ctxErr);
      },
      error: (err) => {
        void finish('failed', { kind: 'engine', message: `engine error: ${(err as Error).message}` });
      },
    });
  });

  const decideLocal = async (stepId: string, d: { decision: 'granted' | 'denied'; by: string; via: string; reason?: string }): Promise<boolean> => {
    if (!stepsById.has(stepId)) throw new UserError(`run ${runId} has no step "${stepId}"`);
    let first: boolean;
    if (x.store) {
      // Shared store: first decision wins there (another replica may decide too); the waiter polls it.
      first = (await x.store.decideApproval(runId, stepId, d)).first;
    } else {
      if (!x.dir) return false;
      first = decideApproval(x.dir, stepId, d).first;
    }
    approvalWaiters.get(stepId)?.();
    return first;
  };

  actor.start();

  return {
    runId,
    ...(x.dir ? { dir: x.dir } : {}),
    done,
    approve: (stepId, by, via) => decideLocal(stepId, { decision: 'granted', by, via }),
    deny: (stepId, by, via, reason) => decideLocal(stepId, { decision: 'denied', by, via, ...(reason ? { reason } : {}) }),
    pendingApprovals: () => [...fold.steps].filter(([, s]) => s.status === 'awaiting-approval').map(([id]) => id),
  };
}

export { sleep };
export type { AnyActorRef };
