/**
 * The one way this code base makes an etcd3 client. Per ETCD-NOTES, the library's defaults are wrong for a recovery
 * tool: its retries move a call (a defragment!) to another member and re-send a NOSPACE put until the circuit
 * breaker shuts every call out for 5 s, and no call has a deadline (a call to a frozen member hangs forever). So
 * every client made here has the library's fault handling off (each call runs exactly once; retries belong to the
 * engine, where they are journaled), a deadline on every unary call, and a fast reconnect.
 */
import * as grpc from '@grpc/grpc-js';
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';

/** TLS material (file contents, not paths) for an https endpoint. */
export interface EtcdClientTls {
  /** The CA to trust; null: the system's roots. */
  rootCertificate: Buffer | null;
  /** Client certificate and key (etcdctl --cert/--key), given together. */
  certChain?: Buffer;
  privateKey?: Buffer;
  /** etcdctl --insecure-skip-tls-verify: still encrypted, the client certificate still presented. */
  insecureSkipVerify?: boolean;
}

export interface EtcdClientOptions {
  /**
   * One endpoint for anything per member (status, defragment, alarm, move-leader, hash: the library sends a call to
   * a random host); several only where any member may answer.
   */
  hosts: string | string[];
  /** Deadline of every unary call: ms from the call, or a function that returns the absolute deadline. Streams get none. */
  deadline: number | (() => number);
  tls?: EtcdClientTls;
  auth?: { username: string; password: string };
}

/** An Etcd3 client with the calls the library gets wrong fixed. */
export class EtcdClient extends Etcd3 {
  /** The endpoint(s) as given. */
  readonly endpoint: string;

  constructor(options: IOptions, skipVerify?: EtcdClientTls) {
    super(options);
    this.endpoint = Array.isArray(options.hosts) ? options.hosts.join(',') : options.hosts;
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

/**
 * A client with the library's retries and circuit breaker off and a deadline on every unary call.
 *
 * @example
 *   const c = createEtcdClient({ hosts: 'http://127.0.0.1:2379', deadline: 5_000 });
 *   try { await c.maintenance.status(); } finally { c.close(); }
 */
export function createEtcdClient(options: EtcdClientOptions): EtcdClient {
  const given = options.deadline;
  const deadline = typeof given === 'number' ? () => Date.now() + given : given;
  const { tls, auth } = options;
  return new EtcdClient(
    {
      hosts: options.hosts,
      // grpc-js accepts null for "the system's roots"; etcd3's type says Buffer.
      ...(tls ? { credentials: { rootCertificate: tls.rootCertificate as Buffer, ...(tls.privateKey ? { privateKey: tls.privateKey } : {}), ...(tls.certChain ? { certChain: tls.certChain } : {}) } } : {}),
      ...(auth ? { auth: { ...auth, callOptions: () => ({ deadline: deadline() }) } } : {}),
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: deadline() }),
      // A dead member must fail fast rather than wait out the whole deadline reconnecting.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
    },
    tls?.insecureSkipVerify ? tls : undefined,
  );
}
