/**
 * Which cluster a command talks to: --inventory FILE, or --endpoints with etcdctl's own flags and ETCDCTL_*
 * variables (spelled as etcdctl spells them, so an operator's habits and environment carry over), plus kubectl's
 * --kubeconfig / --context for the Kubernetes checks.
 */
import type { Command } from 'commander';
import type { Inventory } from '../common.ts';
import { UserError } from '../common.ts';
import { parseDuration } from '../common.ts';
import type { Io } from './output.ts';
import { readSecret } from './secret-prompt.ts';

export interface TargetOpts {
  inventory?: string;
  endpoints?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  insecureSkipTlsVerify?: boolean;
  insecureTransport?: string | boolean;
  user?: string;
  password?: string;
  dialTimeout?: string;
  commandTimeout?: string;
  kubeconfig?: string;
  context?: string;
}

/** Flags that say how to reach and authenticate to the cluster, for commands that also resume stored runs. */
export function credentialOptions(c: Command): Command {
  return c
    .option('--user <user[:password]>', 'etcd user, with its password or asked for on a TTY (env ETCDCTL_USER)')
    .option('--password <password>', 'password of --user (env ETCDCTL_PASSWORD)')
    .option('--dial-timeout <duration>', 'time to connect to a member, added to the first request\'s deadline (env ETCDCTL_DIAL_TIMEOUT)')
    .option('--command-timeout <duration>', 'deadline of each request (default 5s, or the inventory\'s; env ETCDCTL_COMMAND_TIMEOUT)');
}

export function targetOptions(c: Command): Command {
  return credentialOptions(c
    .option('-i, --inventory <file>', 'cluster.yaml describing members, drivers, TLS, kubeconfig (env RUNBOOK_INVENTORY)')
    .option('--endpoints <urls>', 'comma-separated client URLs, like etcdctl (API-only steps; env ETCDCTL_ENDPOINTS)')
    .option('--cacert <file>', 'CA bundle to verify the members (env ETCDCTL_CACERT)')
    .option('--cert <file>', 'client certificate (env ETCDCTL_CERT)')
    .option('--key <file>', 'client key (env ETCDCTL_KEY)')
    .option('--insecure-skip-tls-verify', 'do not verify the members\' certificates (env ETCDCTL_INSECURE_SKIP_TLS_VERIFY)')
    .option('--insecure-transport [bool]', 'plain http when no TLS file is given (default true, as etcdctl; false: https with the system CAs; env ETCDCTL_INSECURE_TRANSPORT)'))
    .option('--kubeconfig <file>', 'kubeconfig for the Kubernetes checks (with --endpoints; default $KUBECONFIG, ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context for the Kubernetes checks');
}

function duration(flag: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0 || ms > 3_600_000) throw new UserError(`${flag}: not a duration between 1ms and 1h: ${JSON.stringify(v)} (e.g. 5s)`);
  return ms;
}

function bool(flag: string, v: string | boolean | undefined): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  if (/^(1|true|yes|on)$/i.test(v.trim())) return true;
  if (/^(0|false|no|off)$/i.test(v.trim())) return false;
  throw new UserError(`${flag}: expected true or false, got ${JSON.stringify(v)}`);
}

/** `--user NAME` alone on a TTY: ask for the password, as etcdctl does; elsewhere the password must come with it. */
async function userWithPassword(opts: TargetOpts, io: Io): Promise<string | undefined> {
  const user = opts.user ?? (io.env.ETCDCTL_USER?.trim() || undefined);
  if (user === undefined || user.includes(':') || opts.password !== undefined || io.env.ETCDCTL_PASSWORD) return user;
  if (!io.isTTY || !process.stdin.isTTY) return user; // the endpoints parser says what is missing
  const pw = await readSecret(`Password for etcd user ${user}: `);
  return `${user}:${pw}`;
}

/** Apply the command line's credentials, timeouts and Kubernetes flags to an inventory (a file's or a stored run's). */
export async function applyTargetFlags(inv: Inventory, opts: TargetOpts, io: Io): Promise<Inventory> {
  const out: Inventory = { ...inv };
  const command = duration('--command-timeout', opts.commandTimeout ?? io.env.ETCDCTL_COMMAND_TIMEOUT);
  if (command !== undefined) out.requestTimeoutMs = command;
  const dial = duration('--dial-timeout', opts.dialTimeout ?? io.env.ETCDCTL_DIAL_TIMEOUT);
  if (dial !== undefined) out.dialTimeoutMs = dial;
  if (opts.user !== undefined) {
    // Only an explicit flag overrides a file's auth; ETCDCTL_USER applies to --endpoints (below).
    const { authFrom } = await import('../authoring.ts');
    const user = await userWithPassword(opts, io);
    const auth = authFrom({ user: user!, ...(opts.password !== undefined ? { password: opts.password } : {}) }, io.env);
    if (auth) out.auth = auth;
  }
  if (opts.kubeconfig !== undefined || opts.context !== undefined) {
    const kubeconfig = opts.kubeconfig ?? inv.kubernetes?.kubeconfig ?? io.env.KUBECONFIG?.split(':')[0];
    out.kubernetes = {
      ...inv.kubernetes,
      ...(kubeconfig ? { kubeconfig } : {}),
      ...(opts.context !== undefined ? { context: opts.context } : {}),
    };
  }
  return out;
}

export async function resolveInventory(opts: TargetOpts, io: Io): Promise<Inventory> {
  const file = opts.inventory ?? io.env.RUNBOOK_INVENTORY;
  if (file && opts.endpoints) throw new UserError('give either --inventory or --endpoints, not both');
  if (file) return applyTargetFlags((await import('../authoring.ts')).loadInventory(file), opts, io);
  const endpoints = opts.endpoints ?? io.env.ETCDCTL_ENDPOINTS;
  if (!endpoints) throw new UserError('no cluster given: use --inventory cluster.yaml (see examples/) or --endpoints http://host:2379,...');
  const insecureTransport = bool('--insecure-transport', opts.insecureTransport ?? io.env.ETCDCTL_INSECURE_TRANSPORT);
  const { inventoryFromEndpoints } = await import('../authoring.ts');
  const user = await userWithPassword(opts, io);
  const inv = inventoryFromEndpoints(endpoints, {
    ...(opts.cacert ? { cacert: opts.cacert } : {}),
    ...(opts.cert ? { cert: opts.cert } : {}),
    ...(opts.key ? { key: opts.key } : {}),
    ...(opts.insecureSkipTlsVerify ? { insecureSkipVerify: true } : {}),
    ...(insecureTransport === false ? { secure: true } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
  }, io.env);
  // The credentials are in; the rest (timeouts, Kubernetes) as for a file.
  return applyTargetFlags(inv, { ...opts, user: undefined }, io);
}
