/**
 * One etcd3 client per endpoint, created on first use and reused for the whole run (a connection costs
 * ~70 ms, a call 2–4 ms). Per ETCD-NOTES: a multi-host client sends each call to a random member and its
 * retries can move a defragment elsewhere, so every client here has exactly one host, the library's fault
 * handling is off (each call runs once; retries belong to the engine, where they are journaled), and every
 * unary call carries a deadline.
 */
import { authPassword } from '../inventory/endpoints.ts';
import { readFileSync } from 'node:fs';
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import * as grpc from '@grpc/grpc-js';
import { Etcd3, type IOptions } from 'etcd3';
import { noop } from 'cockatiel';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';
import { http, https } from '../util/node-http.ts';
import { normalizeURL } from './ids.ts';
import { tlsFileOptions } from './tls-files.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** An Etcd3 client bound to one endpoint, with the calls the library gets wrong fixed. */
export class EtcdClient extends Etcd3 {
  readonly endpoint: string;
  constructor(endpoint: string, options: IOptions, skipVerify?: Credentials['tls']) {
    super(options);
    this.endpoint = endpoint;
    if (skipVerify) {
      // etcdctl --insecure-skip-tls-verify. etcd3 builds its TLS credentials without grpc-js's verify options, so
      // they are replaced (before any call: channels are made on first use) by ones that do not check the member's
      // certificate. The traffic is still encrypted, and the client certificate still presented.
      const creds = grpc.credentials.createSsl(skipVerify.rootCertificate ?? null, skipVerify.privateKey ?? null, skipVerify.certChain ?? null, {
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      });
      const pool = (this as unknown as { pool: { hosts: { channelCredentials: unknown }[]; authenticator: { credentials: unknown } } }).pool;
      for (const h of pool.hosts) h.channelCredentials = creds;
      pool.authenticator.credentials = creds;
    }
  }

  /**
   * HashKV. etcd3 1.1.2's `maintenance.hashKV` calls the gRPC method `hashKV`, which grpc-js names `hashKv`
   * (or `HashKV`), so it always fails with "client[method] is not a function".
   */
  hashKV(req: { revision?: string | number }, options?: { deadline?: number }): Promise<{ header: { revision: string; member_id: string; cluster_id: string }; hash: number | string; compact_revision: string }> {
    return this.pool.exec('Maintenance', 'HashKV', req, options);
  }

  /**
   * A raw Watch stream whose call carries the `hasleader: true` metadata (what etcd's Go client sets with
   * clientv3.WithRequireLeader). With it a member refuses the stream when it has no leader, and cancels it once it
   * has been without one for a few election timeouts ("etcdserver: no leader"). Without it a member cut off from
   * the leader keeps the stream open and answers progress requests from its own stale state: a watch that looks
   * caught up while the cluster moves on. etcd3 1.1.2 cannot set it (its Watcher and `watchClient.watch()` pass the
   * pool's shared auth metadata as is), so the call is made here on a copy of that metadata: only this stream asks.
   */
  watchRequiringLeader(): Promise<WatchStream> {
    const pool = this.pool as unknown as {
      withConnection<T>(service: string, fn: (c: { resource: unknown; client: { watch(md: grpc.Metadata, opts: grpc.CallOptions): WatchStream }; metadata: grpc.Metadata }) => T): Promise<T>;
      markFailed(resource: unknown, err: unknown): void;
    };
    return pool.withConnection('Watch', ({ resource, client, metadata }) => {
      const md = metadata.clone();
      md.set('hasleader', 'true');
      const stream = client.watch(md, {});
      // as etcd3's own watch(): a failed stream resets the host's channel so the next call reconnects
      stream.on('error', (err: unknown) => stream.writable && pool.markFailed(resource, err));
      return stream;
    });
  }
}

/** The Watch bidi stream as grpc-js hands it over (a Node Duplex of watch requests and responses). */
export type WatchStream = import('node:stream').Duplex;

interface Credentials {
  tls?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  auth?: { username: string; password: string };
}

export interface EtcdPoolOptions {
  /** Per-call deadline (default: inventory.requestTimeoutMs, else 5 s). */
  requestTimeoutMs?: number;
}

/**
 * @example
 *   const pool = new EtcdPool(inventory);
 *   try { const s = await memberStatus(pool, 'm1'); } finally { pool.close(); }
 */
export class EtcdPool {
  readonly inventory: Inventory;
  readonly requestTimeoutMs: number;
  readonly #clients = new Map<string, EtcdClient>();
  readonly #agents = new Map<string, HttpAgent | HttpsAgent>();
  #credentials: Credentials | undefined;
  #closed = false;

  constructor(inventory: Inventory, opts: EtcdPoolOptions = {}) {
    this.inventory = inventory;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? inventory.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** The inventory member with this name or client URL. */
  spec(endpointOrName: string): MemberSpec | undefined {
    const byName = this.inventory.members.find((m) => m.name === endpointOrName);
    if (byName) return byName;
    const url = normalizeURL(endpointOrName);
    return this.inventory.members.find((m) => normalizeURL(m.clientURL) === url);
  }

  /** The client URL for a member name, or the URL itself. */
  endpointOf(endpointOrName: string): string {
    const spec = this.spec(endpointOrName);
    if (spec) return spec.clientURL;
    if (/^https?:\/\//.test(endpointOrName)) return endpointOrName;
    throw new UserError(`unknown member ${JSON.stringify(endpointOrName)}: not a member name of inventory ${this.inventory.name} nor a URL`);
  }

  /** How messages name an endpoint: the inventory name when there is one. */
  nameOf(endpointOrName: string): string {
    return this.spec(endpointOrName)?.name ?? endpointOrName;
  }

  /** The cached single-host client of a member (by name or client URL). */
  member(endpointOrName: string): EtcdClient {
    if (this.#closed) throw new Error('EtcdPool is closed');
    const endpoint = this.endpointOf(endpointOrName);
    const key = normalizeURL(endpoint);
    let client = this.#clients.get(key);
    if (!client) {
      const skip = endpoint.startsWith('https:') && this.inventory.tls?.insecureSkipVerify ? this.#loadCredentials().tls : undefined;
      client = new EtcdClient(endpoint, this.#options(endpoint), skip);
      this.#clients.set(key, client);
    }
    return client;
  }

  /** Drop a member's client (e.g. after its process was restarted with new TLS files); the next call reconnects. */
  forget(endpointOrName: string): void {
    const key = normalizeURL(this.endpointOf(endpointOrName));
    this.#clients.get(key)?.close();
    this.#clients.delete(key);
  }

  /**
   * A keep-alive HTTP(S) agent for a member's client URL (its /metrics page), with the inventory's TLS files:
   * polling reuses one connection instead of a TLS handshake per request.
   */
  httpAgent(endpoint: string): HttpAgent | HttpsAgent {
    if (this.#closed) throw new Error('EtcdPool is closed');
    const key = normalizeURL(endpoint);
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = endpoint.startsWith('https:')
        ? new https.Agent({ keepAlive: true, maxSockets: 1, ...tlsFileOptions(endpoint, this.inventory.tls) })
        : new http.Agent({ keepAlive: true, maxSockets: 1 });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }

  get size(): number {
    return this.#clients.size;
  }

  #options(endpoint: string): IOptions {
    const creds = this.#loadCredentials();
    const timeout = this.requestTimeoutMs;
    // The first request also connects (and authenticates): it gets the dial timeout on top (etcdctl --dial-timeout).
    let dial = this.inventory.dialTimeoutMs ?? 0;
    const deadline = () => {
      const d = Date.now() + timeout + dial;
      dial = 0;
      return d;
    };
    const secure = endpoint.startsWith('https:');
    return {
      hosts: endpoint,
      ...(secure && creds.tls ? { credentials: creds.tls } : {}),
      ...(creds.auth ? { auth: { ...creds.auth, callOptions: () => ({ deadline: deadline() }) } } : {}),
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: deadline() }),
      // A dead member must fail fast rather than wait out the whole deadline reconnecting.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
    };
  }

  /** TLS files and the password are read once, lazily; their contents never leave this object. */
  #loadCredentials(): Credentials {
    if (this.#credentials) return this.#credentials;
    const creds: Credentials = {};
    const tls = this.inventory.tls;
    if (tls) {
      if ((tls.cert === undefined) !== (tls.key === undefined)) throw new UserError('inventory tls: cert and key go together (give both or neither)');
      const read = (what: string, path: string): Buffer => {
        try {
          return readFileSync(path);
        } catch (err) {
          throw new UserError(`inventory tls.${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
        }
      };
      creds.tls = {
        // grpc-js accepts null for "the system's roots"; etcd3's type says Buffer.
        rootCertificate: (tls.cacert ? read('cacert', tls.cacert) : null) as Buffer,
        ...(tls.key ? { privateKey: read('key', tls.key) } : {}),
        ...(tls.cert ? { certChain: read('cert', tls.cert) } : {}),
      };
    }
    const auth = this.inventory.auth;
    if (auth) creds.auth = { username: auth.username, password: readPassword(auth) };
    this.#credentials = creds;
    return creds;
  }
}

function readPassword(auth: NonNullable<Inventory['auth']>): string {
  return authPassword(auth, process.env, (file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(`inventory auth: cannot read passwordFile ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  });
}
