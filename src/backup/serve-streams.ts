/**
 * The backup streams inside `runbook serve`: one per cluster whose chatops.yaml entry has `backup:` (opt-in), into
 * the inventory's first snapshots dir, exactly as `runbook backup stream` would.
 *
 * Several replicas may serve the same clusters (`--store etcd://…`), and only one may stream a cluster: a stream
 * runs only while its replica holds the cluster's STREAM lock, taken the way runs take the cluster's run lock (the
 * management etcd's leased keys with `--store`, else the machine-wide lock files of src/store/machine-lock.ts), under keys
 * of its own so a stream never blocks a run. A replica that does not hold it waits and tries again; when a held
 * lock is lost (its lease expired: this replica was frozen or cut off, another may stream now) the stream is fenced
 * at once: it writes nothing more, not even the seal of its open segment, and this replica goes back to waiting.
 *
 * Each stream's lag (how old the newest moment is up to which everything is on disk: the RPO right now) is a gauge
 * on the server's /metrics; `runbook diagnose` reads the same status file (src/backup/diagnose-findings.ts).
 */
import { Gauge, type Registry } from 'prom-client';
import type { AuditLog } from '../chatops/audit.ts';
import type { ChatopsConfig } from '../chatops/config.ts';
import { canonicalPeerURLs, inventoryAddresses } from '../etcd/addresses.ts';
import { acquireLock } from '../store/machine-lock.ts';
import { loadInventory } from '../inventory/load.ts';
import type { Inventory } from '../inventory/types.ts';
import type { StateStore } from '../store/types.ts';
import { ExitCode, UserError, messageOf } from '../util/errors.ts';
import type { BackupStreamConfig } from './serve-config.ts';
import { lagMs, readStatus } from './status.ts';
import { runStream } from './stream.ts';

export interface BackupStreamsOptions {
  cfg: ChatopsConfig;
  registry: Registry;
  audit: AuditLog;
  log: (line: string) => void;
  store?: StateStore;
  /** This replica's name in lock records. */
  owner: string;
}

interface Held {
  why?: string;
  release(): Promise<void> | void;
  onLost(listener: (why: string) => void): void;
}

/** The stream lock's identity: the run lock's peer keys of the cluster, in a namespace of their own (a stream never blocks a run). */
export async function streamIdentity(inv: Inventory): Promise<{ clusterId: null; peerURLs: string[] }> {
  return { clusterId: null, peerURLs: (await canonicalPeerURLs(inventoryAddresses(inv))).map((u) => `backup-stream+${u}`) };
}

async function takeStreamLock(o: BackupStreamsOptions, name: string, inv: Inventory): Promise<Held> {
  const identity = await streamIdentity(inv);
  const holder = `backup-stream:${name}`;
  const label = `the backup stream of ${name}`;
  if (o.store?.kind === 'etcd') return o.store.acquireLock(identity, holder, { owner: o.owner, label });
  const held = acquireLock(identity, holder, { label });
  return { release: () => held.release(), onLost: () => {} };
}

function isLocked(err: unknown): boolean {
  return err instanceof UserError && err.exitCode === ExitCode.locked;
}

/** One cluster's stream: wait for the lock, stream while it is held, wait again when it is lost or the stream ends. */
class ClusterStream {
  streaming = false;
  readonly #abort = new AbortController();
  #done: Promise<void> | undefined;

  readonly name: string;
  readonly inventory: Inventory;
  readonly backupDir: string;
  readonly config: BackupStreamConfig;
  readonly o: BackupStreamsOptions;

  constructor(name: string, inventory: Inventory, backupDir: string, config: BackupStreamConfig, o: BackupStreamsOptions) {
    this.name = name;
    this.inventory = inventory;
    this.backupDir = backupDir;
    this.config = config;
    this.o = o;
  }

  start(): void {
    this.#done = this.#loop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  async #wait(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#abort.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  async #loop(): Promise<void> {
    const { name, o } = this;
    let standbyLogged = false;
    let lastFailure: string | undefined;
    while (!this.#abort.signal.aborted) {
      let lock: Held;
      try {
        lock = await takeStreamLock(o, name, this.inventory);
      } catch (err) {
        if (!isLocked(err)) o.log(`backup [${name}]: cannot take the stream lock: ${messageOf(err).split('\n')[0]}`);
        else if (!standbyLogged) o.log(`backup [${name}]: standing by: ${messageOf(err).split('\n')[0]}`);
        standbyLogged = true;
        await this.#wait(this.config.standbyRetryMs);
        continue;
      }
      standbyLogged = false;
      const run = new AbortController();
      const stopRun = () => run.abort();
      this.#abort.signal.addEventListener('abort', stopRun, { once: true });
      let fenced: string | undefined;
      lock.onLost((why) => {
        fenced = why;
        run.abort();
        o.log(`backup [${name}]: lost the stream lock (${why}): stopped writing; standing by`);
        o.audit.record({ event: 'backup.lock-lost', source: 'backup', cluster: name, outcome: 'failed', reason: why });
      });
      this.streaming = true;
      o.audit.record({ event: 'backup.started', source: 'backup', cluster: name, outcome: 'ok', dir: this.backupDir });
      o.log(`backup [${name}]: streaming into ${this.backupDir}`);
      try {
        await runStream({
          inventory: this.inventory,
          backupDir: this.backupDir,
          ...(this.config.fsyncIntervalMs ? { fsyncIntervalMs: this.config.fsyncIntervalMs } : {}),
          rotation: this.config.rotation,
          ...(this.config.fullEveryMs ? { fullEveryMs: this.config.fullEveryMs } : {}),
          ...(this.config.fullAfterBytes ? { fullAfterBytes: this.config.fullAfterBytes } : {}),
          ...(this.config.retention ? { retention: this.config.retention } : {}),
          fenced: () => fenced,
          signal: run.signal,
          log: (m) => o.log(`backup [${name}]: ${m}`),
        });
      } catch (err) {
        // Said once per distinct failure: a cause that persists (every member down, the backup dir held by a
        // `runbook backup stream` process) is retried every standbyRetry without filling the log and audit.
        const why = messageOf(err).split('\n')[0]!;
        if (!fenced && !this.#abort.signal.aborted && why !== lastFailure) {
          o.log(`backup [${name}]: the stream stopped: ${why}; trying again every ${this.config.standbyRetryMs} ms`);
          o.audit.record({ event: 'backup.failed', source: 'backup', cluster: name, outcome: 'failed', reason: messageOf(err) });
        }
        lastFailure = why;
      } finally {
        this.streaming = false;
        this.#abort.signal.removeEventListener('abort', stopRun);
        await Promise.resolve(lock.release()).catch(() => {});
      }
      if (!this.#abort.signal.aborted) await this.#wait(this.config.standbyRetryMs);
    }
    o.audit.record({ event: 'backup.stopped', source: 'backup', cluster: name, outcome: 'ok' });
  }
}

export function startBackupStreams(o: BackupStreamsOptions): { streams: ClusterStream[]; stop(): Promise<void> } {
  const streams: ClusterStream[] = [];
  for (const [name, c] of Object.entries(o.cfg.clusters)) {
    if (!c.backup) continue;
    try {
      const inventory = loadInventory(c.inventory);
      const dir = inventory.snapshots?.dirs[0];
      if (!dir) throw new UserError(`inventory ${c.inventory} has no snapshots.dirs: the backup stream writes into the first one (restores and diagnose read it there)`);
      const s = new ClusterStream(name, inventory, dir, c.backup, o);
      s.start();
      streams.push(s);
    } catch (err) {
      // One cluster's broken inventory must not keep the server (or the other streams) from running.
      o.log(`backup [${name}]: not started: ${messageOf(err).split('\n')[0]}`);
      o.audit.record({ event: 'backup.stopped', source: 'backup', cluster: name, outcome: 'failed', reason: messageOf(err) });
    }
  }
  // Read at scrape time from each stream's status file: a series only for the clusters this replica streams.
  new Gauge({
    name: 'runbook_backup_lag_seconds',
    help: 'Age of the newest moment up to which every change of the cluster is on disk in the backup stream (the RPO if it were lost now); only for clusters this replica streams',
    labelNames: ['cluster'] as const,
    registers: [o.registry],
    collect() {
      this.reset();
      for (const s of streams) {
        if (!s.streaming) continue;
        const st = readStatus(s.backupDir);
        const lag = st && st.cluster === s.inventory.name ? lagMs(st) : undefined;
        if (lag !== undefined) this.set({ cluster: s.name }, lag / 1000);
      }
    },
  });
  new Gauge({
    name: 'runbook_backup_streaming',
    help: '1 when this replica holds the cluster\'s stream lock and streams its backup, 0 when it stands by',
    labelNames: ['cluster'] as const,
    registers: [o.registry],
    collect() {
      for (const s of streams) this.set({ cluster: s.name }, s.streaming ? 1 : 0);
    },
  });
  return {
    streams,
    async stop() {
      await Promise.all(streams.map((s) => s.stop()));
    },
  };
}
