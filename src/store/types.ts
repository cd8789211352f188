/**
 * Where runs are kept: one interface, two implementations. The local state dir (src/store/file.ts, the default) and
 * a management etcd (src/store/etcd.ts, `--store etcd://…`) shared by several runners. The engine, the CLI and
 * chat-ops see only this interface: a run's meta, journal, persisted machine snapshot, approvals and lock go through
 * it whichever store keeps them. Everything is async so a remote store fits.
 */
import type { JournalRead, JournalWriter, TornTail } from './journal.ts';
import type { ApprovalDecision, RunMeta } from './run-dir.ts';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import type { Inventory } from '../inventory/types.ts';

/** A held per-cluster lock. `lost` is set when the store knows the lock is no longer ours (etcd lease expired). */
export interface StoreLock {
  /** The cluster's lock keys, joined (see lockKeys in src/store/machine-lock.ts). */
  key: string;
  /** Why the lock is no longer held, once it is not. */
  lost?: string;
  /** Called once when the lock is lost (etcd: the lease expired or was revoked). */
  onLost(listener: (why: string) => void): void;
  release(): Promise<void> | void;
}

export interface LockHolderInfo {
  runId: string;
  pid: number;
  host: string;
  since: string;
  command: string;
  /** etcd store: the replica that holds it (e.g. a `runbook serve` id). */
  owner?: string;
}

export interface StateStore {
  readonly kind: 'file' | 'etcd';
  /** How messages name the store (no secrets). */
  readonly description: string;
  /** Refuse to keep state in the cluster being recovered (etcd store). The file store has nothing to check. */
  checkNotTarget(inventory: Inventory): Promise<void>;
  /**
   * Take the store's lock of a cluster identity (every key of lockKeys(identity), all or none). `label` names the
   * cluster in messages. The file store's is the machine-wide lock of src/store/machine-lock.ts.
   */
  acquireLock(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts?: { breakLock?: boolean; owner?: string; label?: string }): Promise<StoreLock>;
  /**
   * Everything a run must hold to recover a cluster: the store's lock, and the machine-wide one (the same lock in
   * the file store; a management etcd keeps runners on other machines off, the machine-wide lock this runner's
   * neighbours). `takeover`: the run exists and is being resumed, perhaps from a runner that lost its lock.
   */
  lockRun(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts: RunLockOptions): Promise<RunLock>;
  /** Who holds the lock of the cluster at these inventory addresses, if anyone (reads no cluster). */
  lockHolder(inventory: Pick<Inventory, 'name' | 'members'>): Promise<LockHolderInfo | undefined>;
  createRun(meta: RunMeta, runbookText: string): Promise<void>;
  readRunMeta(runId: string): Promise<RunMeta>;
  readRunbookCopy(runId: string): Promise<string>;
  /** How messages (file:line:col of a bad saved runbook) name the run's copy of its runbook. */
  runbookCopyName(runId: string): string;
  listRunIds(): Promise<string[]>;
  readJournal(runId: string): Promise<JournalRead>;
  /**
   * Open a run's journal for appending. With a lock, every append is fenced by it (etcd): once the lock is
   * lost, `flush()` rejects and nothing more reaches the store.
   */
  openJournal(runId: string, lock: StoreLock | undefined): Promise<StoreJournalWriter>;
  /** The persisted machine snapshot (JSON text), if any. */
  loadSnapshot(runId: string): Promise<string | undefined>;
  /** First decision wins; returns the decision in force. */
  decideApproval(runId: string, stepId: string, d: Omit<ApprovalDecision, 'at'>): Promise<{ decision: ApprovalDecision; first: boolean }>;
  readApproval(runId: string, stepId: string): Promise<ApprovalDecision | undefined>;
  appendAudit(entry: Record<string, unknown>): Promise<void>;
  /**
   * Stop every journal opened here from writing (a replica handing its runs over when it stops): later appends
   * are not written and `flush()` rejects. The file store has no one to hand over to and leaves it out.
   */
  fenceAll?(why: string): void;
  close(): Promise<void>;
}

/** A run's journal as a store opened it: it also keeps the run's machine snapshot, and says where it is. */
export interface StoreJournalWriter extends JournalWriter {
  /**
   * Keep the persisted machine snapshot (JSON text) beside the journal, in order with the records (fenced alike in
   * etcd). Best effort: the journal is the source of truth, a lost snapshot only costs a replay.
   */
  saveSnapshot(data: string): void;
  /** How messages name where the journal is (the run dir; the store). */
  readonly location: string;
  /** The run's directory, when the store keeps runs in one (the file store). */
  readonly dir?: string;
  /** The journal ended with a torn record (a crash mid-write), cut off and saved aside on open. */
  readonly torn?: TornTail;
}

export interface RunLockOptions {
  breakLock?: boolean;
  /** The replica that runs it (a `runbook serve` id), shown to whoever is refused. */
  owner?: string;
  /** How messages name the cluster (an inventory name). */
  label?: string;
  /** Resuming an existing run: a runner of this same run on this machine that lost the store's lock is displaced. */
  takeover?: boolean;
}

/** What a run holds while it runs (see StateStore.lockRun). */
export interface RunLock extends StoreLock {
  /**
   * Let go of the machine-wide lock, just before the run's last record: a kill right after `run.finished` then
   * leaves no lock behind. `release()` lets go of the rest once the last record is durable.
   */
  releaseMachineWide(): void;
}
