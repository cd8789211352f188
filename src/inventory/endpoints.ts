/**
 * An API-only inventory from `--endpoints`, the way etcdctl takes its target: flags first, then ETCDCTL_*
 * environment variables. Members have no driver, no data dir and an unknown peer URL (""), so only steps that
 * talk to the etcd API can run against it.
 */
import path from 'node:path';
import { UserError } from '../util/errors.ts';
import type { Inventory, MemberSpec } from './types.ts';

export interface EndpointFlags {
  cacert?: string;
  cert?: string;
  key?: string;
  insecureSkipVerify?: boolean;
  /** `user` or `user:password` (like etcdctl --user). */
  user?: string;
  password?: string;
  /** https even without TLS files (etcdctl --insecure-transport=false): the system's CAs verify the members. */
  secure?: boolean;
}

type Auth = NonNullable<Inventory['auth']>;

/**
 * @example
 * inventoryFromEndpoints('127.0.0.1:2379,127.0.0.1:22379', {}, process.env).members.map((m) => m.name)
 * // ['127.0.0.1:2379', '127.0.0.1:22379']
 */
export function inventoryFromEndpoints(endpoints: string | undefined, flags: EndpointFlags = {}, env: Record<string, string | undefined> = process.env): Inventory {
  const list = (endpoints ?? env.ETCDCTL_ENDPOINTS ?? '127.0.0.1:2379')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new UserError('--endpoints is empty: give client URLs like https://10.0.0.1:2379,https://10.0.0.2:2379');
  if (list.length > 64) throw new UserError(`--endpoints lists ${list.length} endpoints (limit 64)`);

  const cacert = flags.cacert ?? nonEmpty(env.ETCDCTL_CACERT);
  const cert = flags.cert ?? nonEmpty(env.ETCDCTL_CERT);
  const key = flags.key ?? nonEmpty(env.ETCDCTL_KEY);
  const insecureSkipVerify = flags.insecureSkipVerify ?? truthy(env.ETCDCTL_INSECURE_SKIP_TLS_VERIFY);
  if ((cert === undefined) !== (key === undefined)) throw new UserError('--cert and --key go together (or ETCDCTL_CERT and ETCDCTL_KEY): give both or neither');
  const secure = cacert !== undefined || cert !== undefined || insecureSkipVerify === true || flags.secure === true;

  const members: MemberSpec[] = [];
  const names = new Set<string>();
  for (const e of list) {
    const url = parseEndpoint(e, secure);
    const name = url.host;
    if (names.has(name)) throw new UserError(`--endpoints lists ${name} twice`);
    names.add(name);
    members.push({ name, clientURL: url.origin, peerURL: '', driver: { type: 'none' } });
  }

  const inv: Inventory = { name: [...names].join(','), source: '--endpoints', members };
  if (secure && (cacert !== undefined || cert !== undefined || insecureSkipVerify)) {
    inv.tls = {};
    if (cacert !== undefined) inv.tls.cacert = path.resolve(cacert);
    if (cert !== undefined) inv.tls.cert = path.resolve(cert);
    if (key !== undefined) inv.tls.key = path.resolve(key);
    if (insecureSkipVerify) inv.tls.insecureSkipVerify = true;
  }
  const auth = authFrom(flags, env);
  if (auth) inv.auth = auth;
  return inv;
}

/**
 * The password for an inventory's auth: given in memory (from `user:password`), from passwordEnv, or from
 * passwordFile. Never log what this returns.
 */
export function authPassword(auth: Auth, env: Record<string, string | undefined> = process.env, readFile?: (file: string) => string): string {
  const inMemory = (auth as { password?: unknown }).password;
  if (typeof inMemory === 'string') return inMemory;
  if (auth.passwordEnv) {
    const v = env[auth.passwordEnv];
    if (v === undefined || v === '') throw new UserError(`auth: environment variable ${auth.passwordEnv} (passwordEnv) is not set`);
    return v;
  }
  if (auth.passwordFile && readFile) return readFile(auth.passwordFile).replace(/\r?\n$/, '');
  throw new UserError(`auth: user ${auth.username} has no password (use passwordEnv or passwordFile)`);
}

/** etcd auth from `--user user[:password]` / `--password`, else ETCDCTL_USER / ETCDCTL_PASSWORD. */
export function authFrom(flags: Pick<EndpointFlags, 'user' | 'password'>, env: Record<string, string | undefined>): Auth | undefined {
  const user = flags.user ?? nonEmpty(env.ETCDCTL_USER);
  if (user === undefined) return undefined;
  const colon = user.indexOf(':');
  const username = colon < 0 ? user : user.slice(0, colon);
  if (!username) throw new UserError('the etcd user name is empty (--user / ETCDCTL_USER is "user" or "user:password")');
  const auth: Auth = { username };
  const password = colon >= 0 ? user.slice(colon + 1) : flags.password;
  if (password !== undefined) {
    // Kept in memory only: not enumerable, so it never reaches JSON (journals, run records, events).
    Object.defineProperty(auth, 'password', { value: password, enumerable: false, writable: false });
  } else if (nonEmpty(env.ETCDCTL_PASSWORD) !== undefined) {
    auth.passwordEnv = 'ETCDCTL_PASSWORD';
  } else {
    throw new UserError(`no password for etcd user ${username}: use ETCDCTL_USER=user:password or set ETCDCTL_PASSWORD`);
  }
  return auth;
}

function parseEndpoint(e: string, secure: boolean): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `${secure ? 'https' : 'http'}://${e}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UserError(`--endpoints: ${JSON.stringify(e)} is not an endpoint (e.g. https://10.0.0.1:2379 or 10.0.0.1:2379)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`--endpoints: ${JSON.stringify(e)}: the scheme must be http or https`);
  if (!url.hostname) throw new UserError(`--endpoints: ${JSON.stringify(e)} has no host`);
  if (url.username || url.password) throw new UserError(`--endpoints: credentials do not belong in an endpoint URL (use --user / ETCDCTL_USER)`);
  if (url.pathname !== '/' || url.search || url.hash) throw new UserError(`--endpoints: ${JSON.stringify(e)}: an endpoint has no path`);
  // etcdctl's default port, unless one was written (an explicit :80/:443 is dropped by URL as the default).
  if (!url.port && !/:\d+\/?$/.test(e)) url.port = '2379';
  return url;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

function truthy(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  return /^(1|true|yes|on)$/i.test(v.trim());
}
