/**
 * Run state in a management etcd (`--store etcd://host:port,host:port`), shared by several runners.
 *
 * Keys (all under /runbook/v1/):
 *   index/<id>                      one small key per run (listing runs does not read their journals)
 *   runs/<id>/meta · runs/<id>/runbook · runs/<id>/snapshot · runs/<id>/journal/<seq, 12 digits>
 *   runs/<id>/approvals/<step>      first decision wins (txn: createRevision == 0)
 *   locks/<key>                     holder JSON, one key per lockKeys() of the cluster's identity, all taken in one
 *                                   txn and attached to a lease kept alive while the run goes on
 *   audit/<ts>-<random>
 *
 * Fencing: every journal record (and snapshot) is written by a txn that compares the lock key's create revision
 * with the one this runner got when it took the lock. A runner whose lease expired (frozen, partitioned) and
 * whose lock was taken over cannot write any more: its `flush()` rejects and the step it was about to run is not
 * run. Per ETCD-NOTES: the library's fault handling is off and every unary call has a deadline.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { noop } from 'cockatiel';
import { Etcd3, type IOptions, type Lease } from 'etcd3';
import type { JournalRecord, RunEvent } from '../events/types.ts';
import { failpointHook, parseFailpoint, type JournalRead, type TornTail } from './journal.ts';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import { lockKeys } from './machine-lock.ts';
import { canonicalPeerURLs, inventoryAddresses } from '../etcd/identity.ts';
import { storableInventory, type ApprovalDecision, type RunMeta } from './run-dir.ts';
import type { Inventory } from '../inventory/types.ts';
import { EtcdPool } from '../etcd/pool.ts';
import { memberStatus } from '../etcd/status.ts';
import { normalizeURL, toHexId } from '../etcd/ids.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { ExitCode, StepError, UserError, messageOf } from '../util/errors.ts';
import type { LockHolderInfo, StateStore, StoreJournalWriter, StoreLock } from './types.ts';

export const PREFIX = '/runbook/v1/';
const RUN_ID = /^[0-9]{8}-[0-9]{6}-[a-z0-9-]{1,40}-[0-9a-f]{6}$/;
const STEP_ID = /^[a-z][a-z0-9-]*$/;

export const keys = {
  run: (id: string) => `${PREFIX}runs/${checkRunId(id)}/`,
  meta: (id: string) => `${keys.run(id)}meta`,
  runbook: (id: string) => `${keys.run(id)}runbook`,
  snapshot: (id: string) => `${keys.run(id)}snapshot`,
  journal: (id: string) => `${keys.run(id)}journal/`,
  record: (id: string, seq: number) => `${keys.journal(id)}${String(seq).padStart(12, '0')}`,
  approval: (id: string, step: string) => {
    if (!STEP_ID.test(step)) throw new UserError(`not a step id: ${JSON.stringify(step)}`);
    return `${keys.run(id)}approvals/${step}`;
  },
  lock: (clusterKeyText: string) => `${PREFIX}locks/${clusterKeyText}`,
  index: (id: string) => `${PREFIX}index/${checkRunId(id)}`,
  audit: () => `${PREFIX}audit/${new Date().toISOString()}-${crypto.randomBytes(4).toString('hex')}`,
};

function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw new UserError(`not a run id: ${JSON.stringify(id)} (see \`runbook history\`)`);
  return id;
}

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

/**
 * Errors from the management etcd name the store and what was being done, never the TLS material. They are not
 * the user's mistake, but they are not bugs either: printed as they are, exit 1.
 */
function storeError(op: string, err: unknown): Error {
  if (err instanceof StepError || err instanceof UserError) return err;
  return new UserError(`the management etcd did not answer (${op}): ${shortGrpcMessage(err)}`, { exitCode: ExitCode.failed });
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
    const timeout = this.#timeout;
    const options: IOptions = {
      hosts: this.endpoints,
      ...(opts.cacert ? {
        credentials: {
          rootCertificate: readTls('cacert', opts.cacert),
          ...(opts.key ? { privateKey: readTls('key', opts.key) } : {}),
          ...(opts.cert ? { certChain: readTls('cert', opts.cert) } : {}),
        },
      } : {}),
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
    };
    this.client = new Etcd3(options);
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
    const lockNames = lockKeys(identity);
    if (!lockNames.length) throw new UserError('cannot lock a cluster with no member addresses');
    const etcdKeys = lockNames.map(keys.lock);
    const label = opts.label ? `cluster "${opts.label}"` : 'this cluster';
    const me: LockHolderInfo = {
      runId, pid: process.pid, host: os.hostname(), since: new Date().toISOString(),
      command: process.argv.slice(2).join(' ').slice(0, 300), ...(opts.owner ? { owner: opts.owner } : {}),
    };
    const lease: Lease = this.client.lease(this.leaseTtlSeconds, { autoKeepAlive: true });
    let leaseId: string;
    try {
      leaseId = await lease.grant();
    } catch (err) {
      lease.release();
      throw storeError('grant lease', err);
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        // Every key or none, in one txn: a run that reached the cluster under another spelling shares one of them.
        let txn = this.client.if(etcdKeys[0]!, 'Create', '==', 0);
        for (const k of etcdKeys.slice(1)) txn = txn.and(k, 'Create', '==', 0);
        const r = await txn
          .then(...etcdKeys.map((k) => this.client.put(k).value(JSON.stringify(me)).lease(leaseId)))
          .else(...etcdKeys.map((k) => this.client.get(k)))
          .commit();
        if (r.succeeded) return heldLock(this, etcdKeys[0]!, lockNames.join(','), r.header.revision, lease);
        const held = r.responses.map((x) => x.response_range?.kvs[0]).filter((kv) => kv !== undefined);
        if (!held.length) continue; // released between the compare and the read: try again
        let holder: LockHolderInfo | undefined;
        try { holder = JSON.parse(held[0]!.value.toString()) as LockHolderInfo; } catch { holder = undefined; }
        if (opts.breakLock) {
          for (const kv of held) await this.client.if(kv.key.toString(), 'Create', '==', kv.create_revision).then(this.client.delete().key(kv.key.toString())).commit();
          continue;
        }
        throw new UserError(
          `${label} is locked by run ${holder?.runId ?? '?'} (pid ${holder?.pid ?? '?'} on ${holder?.host ?? '?'}${holder?.owner ? `, ${holder.owner}` : ''}, since ${holder?.since ?? '?'}) in the ${this.description}.\n` +
            `  Only one run may recover a cluster at a time; the lock expires ${this.leaseTtlSeconds}s after its holder stops.`,
          { exitCode: ExitCode.locked },
        );
      }
      throw new UserError(`could not take the lock for ${label} in the ${this.description}: another runner keeps taking it`, { exitCode: ExitCode.locked });
    } catch (err) {
      await lease.revoke().catch(() => lease.release());
      throw err instanceof UserError ? err : storeError('take the cluster lock', err);
    }
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

  async listRunIds(): Promise<string[]> {
    const all = await this.#retry('list runs', () => this.client.getAll().prefix(`${PREFIX}index/`).keys());
    return all.map((k) => k.slice(`${PREFIX}index/`.length)).filter((id) => RUN_ID.test(id)).sort();
  }

  async readJournal(runId: string): Promise<JournalRead> {
    const kvs = await this.#retry('read journal', () => this.client.getAll().prefix(keys.journal(runId)).sort('Key', 'Ascend').strings());
    const records = Object.keys(kvs).sort().map((k) => JSON.parse(kvs[k]!) as JournalRecord);
    return { records };
  }

  async openJournal(runId: string, lock: StoreLock | undefined): Promise<StoreJournalWriter & { torn?: TornTail }> {
    const { records } = await this.readJournal(runId);
    return fencedWriter(this, runId, records, lock as EtcdLock | undefined);
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

interface EtcdLock extends StoreLock {
  lockKey: string;
  createRevision: string;
}

function heldLock(store: EtcdStore, lockKey: string, ck: string, createRevision: string, lease: Lease): EtcdLock {
  const listeners: ((why: string) => void)[] = [];
  let released = false;
  const lock: EtcdLock = {
    key: ck,
    lockKey,
    createRevision,
    onLost(listener) {
      if (lock.lost) listener(lock.lost);
      else listeners.push(listener);
    },
    async release() {
      if (released) return;
      released = true;
      // Revoking the lease deletes our key only: a lock taken over by another runner has its own lease.
      await lease.revoke().catch(() => lease.release());
    },
  };
  lease.on('lost', (err: unknown) => {
    if (released || lock.lost) return;
    lock.lost = `the lock's lease in the ${store.description} expired (${messageOf(err).split('\n')[0]})`;
    for (const l of listeners.splice(0)) l(lock.lost);
  });
  return lock;
}

/** The error that stops a runner that is no longer the lock holder. */
export function fencingError(why: string): StepError {
  return new StepError('precondition', `lost the run lock: another runner took over, or may take over, this run (${why}); this runner stops without running the next step`, {
    hint: 'see who runs it now: runbook status RUN --store …',
  });
}

/**
 * A journal writer whose appends are queued in order and written by fenced txns. `append` stays synchronous
 * (the engine's contract); `flush()` tells whether everything so far is durable.
 */
function fencedWriter(store: EtcdStore, runId: string, existing: JournalRecord[], lock: EtcdLock | undefined): StoreJournalWriter {
  const client = store.client;
  const records = [...existing];
  let seq = records.length ? records[records.length - 1]!.seq : 0;
  let chain: Promise<void> = Promise.resolve();
  let failure: StepError | undefined;
  let closed = false;
  lock?.onLost((why) => { failure ??= fencingError(why); });
  const fence = (why: string) => { failure ??= new StepError('cancelled', why); };
  store.writers.add(fence);
  // RUNBOOK_FAILPOINT (crash tests): SIGKILL just before / after a record is written to the store
  const failpoint = failpointHook(parseFailpoint(process.env.RUNBOOK_FAILPOINT));

  const put = async (key: string, value: string, mustBeNew: boolean, rec?: JournalRecord): Promise<void> => {
    if (failure) return;
    if (rec) failpoint('before', rec);
    if (!lock) {
      failure = fencingError('no lock is held for this run');
      return;
    }
    const until = Date.now() + store.leaseTtlSeconds * 1000;
    for (let attempt = 0; ; attempt++) {
      try {
        let txn = client.if(lock.lockKey, 'Create', '==', lock.createRevision);
        if (mustBeNew) txn = txn.and(key, 'Create', '==', 0);
        const r = await txn.then(client.put(key).value(value)).commit();
        if (r.succeeded) {
          if (rec) failpoint('after', rec);
          return;
        }
        // Why not? The lock changed hands (fenced), or a retried put had already landed.
        const [lockKv, cur] = await Promise.all([client.get(lock.lockKey).exec(), client.get(key).string()]);
        const now = lockKv.kvs[0];
        if (!now || now.create_revision !== lock.createRevision) {
          let holder = '';
          try {
            const h = now ? (JSON.parse(now.value.toString()) as LockHolderInfo) : undefined;
            holder = h ? `now held by run ${h.runId}, pid ${h.pid} on ${h.host}${h.owner ? ` (${h.owner})` : ''}` : 'now free';
          } catch { holder = 'now held by another runner'; }
          failure = fencingError(`the lock key is ${holder}`);
          return;
        }
        if (cur === value) return;
        failure = fencingError(`${key} was written by another runner`);
        return;
      } catch (err) {
        if (Date.now() >= until || attempt >= 10) {
          failure = fencingError(`cannot write to the ${store.description}: ${shortGrpcMessage(err)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
      }
    }
  };
  const enqueue = (key: string, value: string, mustBeNew: boolean, rec?: JournalRecord) => {
    chain = chain.then(() => put(key, value, mustBeNew, rec)).catch((err: unknown) => { failure ??= fencingError(messageOf(err)); });
  };

  return {
    records,
    append(event: RunEvent): JournalRecord {
      if (closed) throw new Error('journal is closed');
      const rec = { seq: ++seq, ts: new Date().toISOString(), runId, ...event } as JournalRecord;
      records.push(rec);
      enqueue(keys.record(runId, rec.seq), JSON.stringify(rec), true, rec);
      return rec;
    },
    saveSnapshot(data: string) {
      if (!closed) enqueue(keys.snapshot(runId), data, false);
    },
    flush(): Promise<void> {
      return chain.then(() => {
        if (failure) throw failure;
      });
    },
    close() {
      closed = true;
      store.writers.delete(fence);
    },
  };
}
