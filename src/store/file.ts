/**
 * The local state dir as a StateStore (the default): <stateDir>/runs/<runId>/ (src/store/run-dir.ts), its journal
 * (src/store/journal.ts) and the machine-wide lock (src/store/machine-lock.ts), behind the async interface.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openJournal, readJournal, writeFileAtomic } from './journal.ts';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import { acquireLock, lockHolder } from './machine-lock.ts';
import { canonicalPeerURLs, inventoryAddresses } from '../etcd/addresses.ts';
import {
  createRunDir, decideApproval, files, listRunIds, readApproval, readRunMeta, runDir, type ApprovalDecision, type RunMeta,
} from './run-dir.ts';
import type { Inventory } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';
import type { LockHolderInfo, RunLock, RunLockOptions, StateStore, StoreJournalWriter, StoreLock } from './types.ts';
import { mkdirp } from '../util/mkdirp.ts';

export class FileStore implements StateStore {
  readonly kind = 'file' as const;
  readonly stateDir: string;
  readonly description: string;
  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.description = `state dir ${stateDir}`;
  }

  async checkNotTarget(): Promise<void> {}

  async acquireLock(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts: { breakLock?: boolean; label?: string } = {}): Promise<StoreLock> {
    return this.lockRun(identity, runId, opts);
  }

  /** The machine-wide lock is the whole of it: it names the run's journal, so others can clear it once the run ended. */
  async lockRun(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts: RunLockOptions): Promise<RunLock> {
    const held = acquireLock(identity, runId, {
      breakLock: opts.breakLock ?? false, journal: files.journal(runDir(this.stateDir, runId)), ...(opts.label ? { label: opts.label } : {}),
    });
    return { key: held.key, onLost: () => {}, releaseMachineWide: () => held.release(), release: () => held.release() };
  }

  async lockHolder(inventory: Pick<Inventory, 'name' | 'members'>): Promise<LockHolderInfo | undefined> {
    return lockHolder({ clusterId: null, peerURLs: await canonicalPeerURLs(inventoryAddresses(inventory)) });
  }

  async createRun(meta: RunMeta, runbookText: string): Promise<void> {
    createRunDir(this.stateDir, meta, runbookText);
  }

  async readRunMeta(runId: string): Promise<RunMeta> {
    return readRunMeta(this.stateDir, runId);
  }

  async readRunbookCopy(runId: string): Promise<string> {
    const file = files.runbookCopy(runDir(this.stateDir, runId));
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }

  runbookCopyName(runId: string): string {
    return files.runbookCopy(runDir(this.stateDir, runId));
  }

  async listRunIds(): Promise<string[]> {
    return listRunIds(this.stateDir);
  }

  async readJournal(runId: string) {
    return readJournal(files.journal(runDir(this.stateDir, runId)));
  }

  async openJournal(runId: string, _lock?: StoreLock): Promise<StoreJournalWriter> {
    const dir = runDir(this.stateDir, runId);
    const journal = openJournal(files.journal(dir), runId);
    const snapshotFile = files.snapshot(dir);
    return Object.assign(journal, { location: dir, dir, saveSnapshot: (data: string) => writeFileAtomic(snapshotFile, data) });
  }

  async loadSnapshot(runId: string): Promise<string | undefined> {
    try {
      return fs.readFileSync(files.snapshot(runDir(this.stateDir, runId)), 'utf8');
    } catch {
      return undefined;
    }
  }

  async decideApproval(runId: string, stepId: string, d: Omit<ApprovalDecision, 'at'>) {
    const dir = runDir(this.stateDir, runId);
    if (!fs.existsSync(files.meta(dir))) throw new UserError(`no run ${runId} in ${this.stateDir}`);
    return decideApproval(dir, stepId, d);
  }

  async readApproval(runId: string, stepId: string): Promise<ApprovalDecision | undefined> {
    return readApproval(runDir(this.stateDir, runId), stepId);
  }

  async appendAudit(entry: Record<string, unknown>): Promise<void> {
    mkdirp(this.stateDir);
    fs.appendFileSync(path.join(this.stateDir, 'audit.jsonl'), `${JSON.stringify(entry)}\n`);
  }

  async close(): Promise<void> {}
}
