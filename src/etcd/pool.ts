/**
 * One etcd3 client per endpoint, created on first use and reused for the whole run (a connection costs
 * ~70 ms, a call 2–4 ms). Per ETCD-NOTES: a multi-host client sends each call to a random member and its
 * retries can move a defragment elsewhere, so every client here has exactly one host; createEtcdClient
 * (client.ts) turns the library's fault handling off and puts a deadline on every unary call.
 */
import { authPassword } from '../inventory/endpoints.ts';
import { readFileSync } from 'node:fs';
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';
import { http, https } from '../util/node-http.ts';
import { normalizeURL } from './ids.ts';
import { tlsFileOptions } from './tls-files.ts';
import { createEtcdClient, type EtcdClient, type EtcdClientTls } from './client.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

interface Credentials {
  tls?: EtcdClientTls;
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
      client = this.#newClient(endpoint);
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

  #newClient(endpoint: string): EtcdClient {
    const creds = this.#loadCredentials();
    const timeout = this.requestTimeoutMs;
    // The first request also connects (and authenticates): it gets the dial timeout on top (etcdctl --dial-timeout).
    let dial = this.inventory.dialTimeoutMs ?? 0;
    const deadline = () => {
      const d = Date.now() + timeout + dial;
      dial = 0;
      return d;
    };
    const tls = endpoint.startsWith('https:') ? creds.tls : undefined;
    return createEtcdClient({
      hosts: endpoint,
      deadline,
      ...(tls ? { tls: { ...tls, insecureSkipVerify: this.inventory.tls?.insecureSkipVerify ?? false } } : {}),
      ...(creds.auth ? { auth: creds.auth } : {}),
    });
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
        rootCertificate: tls.cacert ? read('cacert', tls.cacert) : null,
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
