/**
 * Run state in a management etcd (`--store etcd://host:port,host:port`), shared by several runners. The key layout
 * is in etcd-keys.ts, the cluster lock in etcd-lock.ts, the fenced journal in etcd-journal.ts. Per ETCD-NOTES: the
 * library's fault handling is off and every unary call has a deadline.
 */
import fs from 'node:fs';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../etcd/client.ts';
import type { JournalRecord } from '../events/types.ts';
import type { JournalRead } from './journal.ts';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import { acquireLock as acquireMachineLock, lockKeys, type HeldLock } from './machine-lock.ts';
import { canonicalPeerURLs, inventoryAddresses } from '../etcd/addresses.ts';
import { storableInventory, type ApprovalDecision, type RunMeta } from './run-dir.ts';
import type { Inventory } from '../inventory/types.ts';
import { EtcdPool } from '../etcd/pool.ts';
import { memberStatus } from '../etcd/status.ts';
import { normalizeURL, toHexId } from '../etcd/ids.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { storeError } from './etcd-errors.ts';
import { fencedJournal } from './etcd-journal.ts';
import { keys } from './etcd-keys.ts';
import { takeEtcdLock, type EtcdLock } from './etcd-lock.ts';
import { isRunId } from './run-id.ts';
import type { LockHolderInfo, RunLock, RunLockOptions, StateStore, StoreJournalWriter, StoreLock } from './types.ts';

export interface EtcdStoreOptions {
  /** `etcd://host:port,host:port` (or a comma list of http(s) URLs). */
  url: string;
  cacert?: string;
  cert?: string;
  key?: string;
  /** Lease TTL of a run lock, seconds (default 10; tests use 3). */
  leaseTtlSeconds?: number;
  /** Deadline of each call (default 5 s). */
  requestTimeoutMs?: number;
}

/** Parse `etcd://a:2379,b:2379` into client URLs (https when a CA is given). */
export function parseStoreURL(url: string, secure: boolean): string[] {
  const m = /^etcd(s)?:\/\/(.+)$/.exec(url.trim());
  if (!m) throw new UserError(`--store: expected etcd://host:port[,host:port…], got ${JSON.stringify(url)}`);
  const scheme = m[1] || secure ? 'https' : 'http';
  const hosts = m[2]!.split(',').map((h) => h.trim().replace(/\/+$/, '')).filter(Boolean);
  if (!hosts.length) throw new UserError(`--store: no endpoints in ${JSON.stringify(url)}`);
  return hosts.map((h) => {
    if (!/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(h)) throw new UserError(`--store: expected host:port, got ${JSON.stringify(h)}`);
    return `${scheme}://${h}`;
  });
}

function readTls(what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UserError(`--store-${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

export class EtcdStore implements StateStore {
  readonly kind = 'etcd' as const;
  readonly description: string;
  readonly endpoints: string[];
  readonly leaseTtlSeconds: number;
  readonly client: Etcd3;
  readonly #timeout: number;
  /** Open journal writers, for fenceAll. */
  readonly writers = new Set<(why: string) => void>();

  constructor(opts: EtcdStoreOptions) {
    this.endpoints = parseStoreURL(opts.url, Boolean(opts.cacert));
    this.description = `management etcd ${this.endpoints.join(',')}`;
    this.leaseTtlSeconds = opts.leaseTtlSeconds ?? 10;
    if (!Number.isInteger(this.leaseTtlSeconds) || this.leaseTtlSeconds < 1) throw new UserError(`store lease TTL must be a whole number of seconds ≥ 1, got ${opts.leaseTtlSeconds}`);
    this.#timeout = opts.requestTimeoutMs ?? 5000;
    if ((opts.cert === undefined) !== (opts.key === undefined)) throw new UserError('--store-cert and --store-key go together (give both or neither)');
    this.client = createEtcdClient({
      hosts: this.endpoints,
      deadline: this.#timeout,
      ...(opts.cacert ? {
        tls: {
          rootCertificate: readTls('cacert', opts.cacert),
          ...(opts.key ? { privateKey: readTls('key', opts.key) } : {}),
          ...(opts.cert ? { certChain: readTls('cert', opts.cert) } : {}),
        },
      } : {}),
    });
  }

  /** Run a call, retrying transport failures a few times within about one lease TTL (reads and idempotent writes only). */
  async #retry<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const until = Date.now() + Math.max(this.#timeout, this.leaseTtlSeconds * 1000);
    let last: unknown;
    for (let i = 0; i < 20 && (i === 0 || Date.now() < until); i++) {
      try {
        return await fn();
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** i)));
      }
    }
    throw storeError(op, last);
  }

  async #get(key: string): Promise<string | null> {
    return this.#retry(`get ${key}`, () => this.client.get(key).string());
  }

  async checkNotTarget(inventory: Inventory): Promise<void> {
    const mine = new Set(this.endpoints.map(normalizeURL));
    const overlap = inventory.members.filter((m) => mine.has(normalizeURL(m.clientURL)));
    const refuse = (why: string) => new UserError(
      `--store ${this.endpoints.join(',')} is the cluster being recovered (${why}).\n` +
        `  Run state must live outside the cluster it repairs: point --store at a separate management etcd.`,
    );
    if (overlap.length) throw refuse(`member ${overlap[0]!.name} has the same client URL`);
    let storeId: string;
    try {
      const st = await this.client.maintenance.status();
      storeId = toHexId(st.header.cluster_id);
    } catch (err) {
      throw new UserError(`cannot reach the ${this.description}: ${shortGrpcMessage(err)}`, { exitCode: ExitCode.failed });
    }
    const pool = new EtcdPool(inventory, { requestTimeoutMs: 3000 });
    try {
      for (const m of inventory.members) {
        try {
          const st = await memberStatus(pool, m.name);
          if (st.clusterId === storeId) throw refuse(`both have cluster id ${storeId}`);
          return; // one answer is enough: a cluster has one id
        } catch (err) {
          if (err instanceof UserError) throw err;
          // member down: ask the next one; when none answers the target cannot be the store that just answered
        }
      }
    } finally {
      pool.close();
    }
  }

  async acquireLock(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts: { breakLock?: boolean; owner?: string; label?: string } = {}): Promise<StoreLock> {
    return takeEtcdLock(this, identity, runId, opts);
  }

  /**
   * The machine-wide lock keeps this runner's neighbours off; the store's keeps runners on other machines off.
   * A new run takes the machine-wide one first. A takeover takes the store's first: it decides who runs the run,
   * and a runner of this same run on this machine that lost it (frozen past its lease) is fenced off from the
   * store, so its machine-wide lock is taken over rather than waited for.
   */
  async lockRun(identity: Pick<ClusterIdentity, 'clusterId' | 'peerURLs'>, runId: string, opts: RunLockOptions): Promise<RunLock> {
    const machineWide = () => acquireMachineLock(identity, runId, {
      breakLock: opts.breakLock ?? false, ...(opts.label ? { label: opts.label } : {}), ...(opts.takeover ? { takeOverSameRun: true } : {}),
    });
    const storeLock = () => takeEtcdLock(this, identity, runId, {
      ...(opts.label ? { label: opts.label } : {}), breakLock: opts.breakLock ?? false, ...(opts.owner ? { owner: opts.owner } : {}),
    });
    let local: HeldLock | undefined;
    let held: EtcdLock | undefined;
    try {
      if (opts.takeover) {
        held = await storeLock();
        local = machineWide();
      } else {
        local = machineWide();
        held = await storeLock();
      }
    } catch (err) {
      local?.release();
      if (held) await Promise.resolve(held.release()).catch(() => {});
      throw err;
    }
    const machine = local;
    const releaseStoreLock = held.release.bind(held);
    return Object.assign(held, {
      releaseMachineWide: () => machine.release(),
      release: async () => {
        machine.release();
        await releaseStoreLock();
      },
    });
  }

  async lockHolder(inventory: Pick<Inventory, 'name' | 'members'>): Promise<LockHolderInfo | undefined> {
    // The peer keys of the inventory's addresses are among the keys any run of that cluster holds.
    for (const name of lockKeys({ clusterId: null, peerURLs: await canonicalPeerURLs(inventoryAddresses(inventory)) })) {
      const text = await this.#get(keys.lock(name));
      if (!text) continue;
      try { return JSON.parse(text) as LockHolderInfo; } catch { return undefined; }
    }
    return undefined;
  }

  async createRun(meta: RunMeta, runbookText: string): Promise<void> {
    const stored = { ...meta, inventory: storableInventory(meta.inventory) };
    const r = await this.client
      .if(keys.meta(meta.runId), 'Create', '==', 0)
      .then(
        this.client.put(keys.meta(meta.runId)).value(JSON.stringify(stored)),
        this.client.put(keys.runbook(meta.runId)).value(runbookText),
        this.client.put(keys.index(meta.runId)).value(meta.createdAt),
      )
      .commit()
      .catch((err: unknown) => { throw storeError('create run', err); });
    if (!r.succeeded) throw new UserError(`run ${meta.runId} already exists in the ${this.description}`);
  }

  async readRunMeta(runId: string): Promise<RunMeta> {
    const text = await this.#get(keys.meta(runId));
    if (!text) throw new UserError(`no run ${runId} in the ${this.description} (see \`runbook history --store …\`)`);
    return JSON.parse(text) as RunMeta;
  }

  async readRunbookCopy(runId: string): Promise<string> {
    const text = await this.#get(keys.runbook(runId));
    if (text === null) throw new UserError(`run ${runId} has no runbook copy in the ${this.description}`);
    return text;
  }

  runbookCopyName(runId: string): string {
    return `${this.description}: run ${runId}`;
  }

  async listRunIds(): Promise<string[]> {
    const all = await this.#retry('list runs', () => this.client.getAll().prefix(keys.indexPrefix).keys());
    return all.map((k) => k.slice(keys.indexPrefix.length)).filter(isRunId).sort();
  }

  async readJournal(runId: string): Promise<JournalRead> {
    const kvs = await this.#retry('read journal', () => this.client.getAll().prefix(keys.journal(runId)).sort('Key', 'Ascend').strings());
    const records = Object.keys(kvs).sort().map((k) => JSON.parse(kvs[k]!) as JournalRecord);
    return { records };
  }

  async openJournal(runId: string, lock: StoreLock | undefined): Promise<StoreJournalWriter> {
    const { records } = await this.readJournal(runId);
    return fencedJournal(this, runId, records, lock as EtcdLock | undefined);
  }

  async loadSnapshot(runId: string): Promise<string | undefined> {
    return (await this.#get(keys.snapshot(runId))) ?? undefined;
  }

  async decideApproval(runId: string, stepId: string, d: Omit<ApprovalDecision, 'at'>) {
    const key = keys.approval(runId, stepId);
    const rec: ApprovalDecision = { ...d, at: new Date().toISOString() };
    const r = await this.#retry('record decision', () => this.client
      .if(keys.meta(runId), 'Create', '>', 0)
      .and(key, 'Create', '==', 0)
      .then(this.client.put(key).value(JSON.stringify(rec)))
      .else(this.client.get(key), this.client.get(keys.meta(runId)))
      .commit());
    if (r.succeeded) return { decision: rec, first: true };
    const existing = r.responses[0]?.response_range?.kvs[0];
    if (!r.responses[1]?.response_range?.kvs.length) throw new UserError(`no run ${runId} in the ${this.description}`);
    if (!existing) throw storeError('record decision', new Error('decision neither written nor found'));
    const found = JSON.parse(existing.value.toString()) as ApprovalDecision;
    // a retried txn whose first attempt had landed finds its own decision: it was first
    const ours = found.at === rec.at && found.by === rec.by && found.decision === rec.decision && found.via === rec.via;
    return { decision: found, first: ours };
  }

  async readApproval(runId: string, stepId: string): Promise<ApprovalDecision | undefined> {
    const text = await this.#get(keys.approval(runId, stepId));
    return text ? (JSON.parse(text) as ApprovalDecision) : undefined;
  }

  async appendAudit(entry: Record<string, unknown>): Promise<void> {
    const key = keys.audit();
    await this.#retry('audit', () => this.client.put(key).value(JSON.stringify(entry)).exec());
  }

  fenceAll(why: string): void {
    for (const fence of this.writers) fence(why);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
