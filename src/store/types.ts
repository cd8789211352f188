/**
 * Where runs are kept. Two implementations: the local state dir (src/store/file.ts, the default, exactly what
 * `runbook` always did) and a management etcd (src/store/etcd.ts, `--store etcd://…`) shared by several
 * runners. Everything is async so a remote store fits; the file store wraps the synchronous functions of
 * src/execute/run-store.ts, journal.ts and lock.ts unchanged.
 */
import type { JournalRecord } from '../events/types.ts';
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

export interface RunSummary {
  runId: string;
  meta: RunMeta;
  records: JournalRecord[];
}

export interface StateStore {
  readonly kind: 'file' | 'etcd';
  /** How messages name the store (no secrets). */
  readonly description: string;
  /** Refuse to keep state in the cluster being recovered (etcd store). The file store has nothing to check. */
  checkNotTarget(inventory: Inventory): Promise<void>;
  /**
   * Take the lock of a cluster identity (every key of lockKeys(identity), all or none). `label` names the cluster in
   * messages. The file store's is the machine-wide lock of src/store/machine-lock.ts.
   */
  acquireLock(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts?: { breakLock?: boolean; owner?: string; label?: string }): Promise<StoreLock>;
  /** Who holds the lock of the cluster at these inventory addresses, if anyone (reads no cluster). */
  lockHolder(inventory: Pick<Inventory, 'name' | 'members'>): Promise<LockHolderInfo | undefined>;
  createRun(meta: RunMeta, runbookText: string): Promise<void>;
  readRunMeta(runId: string): Promise<RunMeta>;
  readRunbookCopy(runId: string): Promise<string>;
  listRunIds(): Promise<string[]>;
  readJournal(runId: string): Promise<JournalRead>;
  /**
   * Open a run's journal for appending. With a lock, every append is fenced by it (etcd): once the lock is
   * lost, `flush()` rejects and nothing more reaches the store.
   */
  openJournal(runId: string, lock: StoreLock | undefined): Promise<StoreJournalWriter & { torn?: TornTail }>;
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

/** A journal writer that also keeps the run's machine snapshot (written in order with the records, fenced alike). */
export interface StoreJournalWriter extends JournalWriter {
  saveSnapshot?(data: string): void;
}
