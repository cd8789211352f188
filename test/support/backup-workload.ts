/**
 * A concurrent writer for backup tests: puts, deletes, multi-key transactions and keys attached to leases, sent
 * to whichever member answers (a killed leader only moves it to the next), each acknowledged write recorded with
 * its revision and the time it was acknowledged. And the ground truth to compare restores with: the whole
 * keyspace as the cluster itself serves it at a revision (`get --rev`), read before any compaction.
 */
import type { Etcd3 } from 'etcd3';
import type { TestCluster } from './etcd-cluster.ts';

/** What a write did: key → new value, or null for a delete. */
export type Effects = [string, string | null][];

export interface Ack {
  revision: number;
  at: number;
  what: string;
  effects: Effects;
}

export type Keyspace = Record<string, string>;

export class Workload {
  readonly acks: Ack[] = [];
  #stop = false;
  #done: Promise<void> | undefined;
  #clients: Etcd3[];
  #i = 0;
  #n = 0;
  /** The write sent but not (yet) acknowledged: at most one, the writer is sequential. */
  inFlight: { what: string; effects: Effects } | undefined;

  readonly prefix: string;

  constructor(cluster: TestCluster, prefix = '/app/') {
    this.prefix = prefix;
    this.#clients = cluster.members.map((m) => cluster.client(m.name));
  }

  /** Start (or restart after stop) writing, one write every `pauseMs`. */
  start(pauseMs = 5): void {
    this.#stop = false;
    this.#done = (async () => {
      while (!this.#stop) {
        try {
          await this.step();
        } catch {
          this.#i++; // that member is down: the next write goes to the next one
        }
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    })();
  }

  /** Stop writing; resolves once the write in flight is acknowledged (or failed). */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }

  get lastRevision(): number {
    return Math.max(0, ...this.acks.map((a) => a.revision));
  }

  get client(): Etcd3 {
    return this.#clients[this.#i % this.#clients.length]!;
  }

  /** One write of a rotating kind. */
  async step(): Promise<void> {
    const c = this.client;
    const n = this.#n++;
    const p = this.prefix;
    let revision: number;
    let what: string;
    let effects: Effects;
    switch (n % 5) {
      case 0:
      case 1: {
        effects = [[`${p}k${n % 40}`, `v${n}`]];
        this.inFlight = { what: 'put', effects };
        const r = await c.put(`${p}k${n % 40}`).value(`v${n}`).exec();
        revision = Number(r.header.revision);
        what = 'put';
        break;
      }
      case 2: {
        effects = [[`${p}k${(n * 7) % 40}`, null]];
        this.inFlight = { what: 'delete', effects };
        const r = await c.delete().key(`${p}k${(n * 7) % 40}`).exec();
        revision = Number(r.header.revision);
        what = 'delete';
        break;
      }
      case 3: {
        effects = [[`${p}t${n % 10}/a`, `a${n}`], [`${p}t${n % 10}/b`, `b${n}`], [`${p}k${(n * 3) % 40}`, null]];
        this.inFlight = { what: 'txn', effects };
        const r = await c.kv.txn({
          compare: [],
          success: [
            { request_put: { key: Buffer.from(`${p}t${n % 10}/a`), value: Buffer.from(`a${n}`) } },
            { request_put: { key: Buffer.from(`${p}t${n % 10}/b`), value: Buffer.from(`b${n}`) } },
            { request_delete_range: { key: Buffer.from(`${p}k${(n * 3) % 40}`) } },
          ],
          failure: [],
        });
        revision = Number(r.header.revision);
        what = 'txn';
        break;
      }
      default: {
        effects = [[`${p}lease/${n}`, `l${n}`]];
        const g = await c.leaseClient.leaseGrant({ TTL: 600 });
        this.inFlight = { what: 'lease-put', effects };
        const r = await c.put(`${p}lease/${n}`).value(`l${n}`).lease(g.ID).exec();
        revision = Number(r.header.revision);
        what = 'lease-put';
      }
    }
    this.inFlight = undefined;
    this.acks.push({ revision, at: Date.now(), what, effects });
  }

  /**
   * The writer's own model of its keys at `revision`: every acknowledged write up to it applied in order (plus the
   * write in flight, when the revision is past every acknowledged one: it was applied but its answer was lost).
   */
  modelAt(revision: number, start: Keyspace = {}): Keyspace {
    const state = { ...start };
    const apply = (effects: Effects) => {
      for (const [k, v] of effects) {
        if (v === null) delete state[k];
        else state[k] = v;
      }
    };
    for (const a of [...this.acks].sort((x, y) => x.revision - y.revision)) if (a.revision <= revision) apply(a.effects);
    if (this.inFlight && revision > this.lastRevision) apply(this.inFlight.effects);
    return state;
  }
}

/** The whole keyspace at a revision, as the cluster serves it (`get --rev`); key → value (utf8). */
export async function keyspaceAt(client: Etcd3, revision?: number): Promise<Keyspace> {
  const r = await client.kv.range({ key: Buffer.from([0]), range_end: Buffer.from([0]), ...(revision ? { revision } : {}) });
  return Object.fromEntries(r.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
}

/** The whole keyspace with lease ids (to check leases survive a restore). */
export async function leasesAt(client: Etcd3, revision?: number): Promise<Record<string, string>> {
  const r = await client.kv.range({ key: Buffer.from([0]), range_end: Buffer.from([0]), ...(revision ? { revision } : {}) });
  return Object.fromEntries(r.kvs.filter((kv) => kv.lease !== '0').map((kv) => [kv.key.toString(), kv.lease]));
}

export async function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
