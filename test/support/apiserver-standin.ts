/**
 * A stand-in for kube-apiserver, for tests: there is no kube-apiserver (nor a whole control plane) on these
 * machines, and kubectl.verify only needs two kubectl calls to behave as they would against a real one whose
 * storage is the test's etcd.
 *
 * What it models (plain HTTP on 127.0.0.1, no auth):
 * - GET /version (kubectl's dispatcher build asks first, to pick a matching kubectl), discovery (/api, /apis,
 *   /api/v1: legacy discovery only, as JSON; kubectl falls back to it when aggregated discovery is not offered).
 * - GET /readyz: 200 "ok" only when etcd accepts a write (put + delete of a canary under /registry/, 1 s deadline
 *   for all endpoints together), else 500 with a body naming etcd, in the verbose format of the real one.
 *   Stricter than the real check (which reads): so a NOSPACE cluster, whose API server cannot write anything,
 *   shows as not ready.
 * - GET /api/v1/nodes: the configured nodes (Ready or not) when etcd answers a linearizable read, else 500.
 * Anything else is 404 and recorded in `unknownPaths` (tests assert it stays empty).
 *
 * Not modelled: TLS, authn/authz, watches, any other resource, aggregated discovery, protobuf, the real
 * apiserver's caching.
 *
 * Also runnable as its own process (for fencing tests through the process driver):
 *   node test/support/apiserver-standin.ts --port 6443 --etcd http://127.0.0.1:2379[,...] [--nodes cp-1,cp-2]
 * It prints `listening http://127.0.0.1:<port>` and runs until SIGTERM/SIGINT.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { EtcdPool } from '../../src/etcd/pool.ts';
import { currentRevision, putDeleteCanary } from '../../src/etcd/kv.ts';
import { shortGrpcMessage } from '../../src/etcd/errors.ts';
import type { Inventory } from '../../src/inventory/types.ts';

export interface StandinNode {
  name: string;
  ready: boolean;
}

export interface ApiServerStandinOptions {
  /** Client URLs of the etcd members (plain http; TLS via `tls`). */
  etcd: string[];
  tls?: { cacert: string; cert: string; key: string };
  nodes?: StandinNode[];
  /** 0 (default) = any free port. */
  port?: number;
}

export interface ApiServerStandin {
  url: string;
  port: number;
  /** Requests for paths it does not serve ("GET /apis/foo"). */
  unknownPaths: string[];
  /** Every request served, in order ("GET /readyz 500"). */
  requests: string[];
  nodes: StandinNode[];
  /** Write a kubeconfig for it (plain, no credentials) and return the path. */
  writeKubeconfig(file: string, context?: string): string;
  close(): Promise<void>;
}

const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.4', gitCommit: 'standin', gitTreeState: 'clean', buildDate: '2025-01-01T00:00:00Z', goVersion: 'go1.23.0', compiler: 'gc', platform: 'linux/amd64' };
const CANARY = '/registry/runbook-standin/readyz-canary';
const ETCD_DEADLINE_MS = 1000;

function etcdInventory(opts: ApiServerStandinOptions): Inventory {
  return {
    name: 'apiserver-standin',
    source: 'apiserver-standin',
    members: opts.etcd.map((url, i) => ({ name: `etcd-${i}`, clientURL: url, peerURL: url, driver: { type: 'none' as const } })),
    ...(opts.tls ? { tls: opts.tls } : {}),
    requestTimeoutMs: ETCD_DEADLINE_MS,
  };
}

/** Try each endpoint in turn until one succeeds, all within one deadline. */
async function withEtcd<T>(pool: EtcdPool, endpoints: string[], fn: (endpoint: string, deadline: number) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  const deadline = Date.now() + ETCD_DEADLINE_MS;
  const errors: string[] = [];
  for (const e of endpoints) {
    if (Date.now() >= deadline) break;
    try {
      return { ok: true, value: await fn(e, deadline) };
    } catch (err) {
      // "etcd-0: put /registry/…: mvcc: database space exceeded" → the part after the member and the operation.
      errors.push(shortGrpcMessage(err).replace(/^etcd-\d+: [^:]+: /, ''));
    }
  }
  return { ok: false, error: [...new Set(errors)].join('; ') || 'deadline exceeded' };
}

function node(n: StandinNode): unknown {
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: { name: n.name, labels: { 'node-role.kubernetes.io/control-plane': '' } },
    status: {
      conditions: [
        {
          type: 'Ready',
          status: n.ready ? 'True' : 'False',
          reason: n.ready ? 'KubeletReady' : 'KubeletNotReady',
          message: n.ready ? 'kubelet is posting ready status' : 'container runtime network not ready',
        },
      ],
    },
  };
}

/** A plain kubeconfig (no credentials) for a stand-in at `url`. Returns the path. */
export function writeKubeconfig(file: string, url: string, context = 'standin'): string {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'standin', cluster: { server: url } }],
    users: [{ name: 'standin', user: {} }],
    contexts: [{ name: context, context: { cluster: 'standin', user: 'standin' } }],
    'current-context': context,
  };
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}

export async function startApiServerStandin(opts: ApiServerStandinOptions): Promise<ApiServerStandin> {
  const pool = new EtcdPool(etcdInventory(opts));
  const endpoints = opts.etcd;
  const nodes = [...(opts.nodes ?? [{ name: 'cp-1', ready: true }])];
  const unknownPaths: string[] = [];
  const requests: string[] = [];
  let port = 0;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const statusFailure = (res: ServerResponse, message: string) =>
    json(res, 500, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method !== 'GET') {
      unknownPaths.push(`${req.method} ${path}`);
      json(res, 405, { kind: 'Status', status: 'Failure', code: 405 });
      return 405;
    }
    switch (path) {
      case '/version':
        json(res, 200, VERSION);
        return 200;
      case '/api':
        json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }] });
        return 200;
      case '/apis':
        json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
        return 200;
      case '/api/v1':
        json(res, 200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [{ name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['get', 'list', 'watch'], shortNames: ['no'] }],
        });
        return 200;
      case '/readyz': {
        const r = await withEtcd(pool, endpoints, (e, deadline) => putDeleteCanary(pool, e, CANARY, { deadline, tag: 'apiserver-standin' }));
        res.writeHead(r.ok ? 200 : 500, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
        res.end(r.ok ? 'ok' : `[+]ping ok\n[+]log ok\n[-]etcd failed: ${r.error}\n[+]etcd-readiness ok\nreadyz check failed\n`);
        return r.ok ? 200 : 500;
      }
      case '/api/v1/nodes': {
        const r = await withEtcd(pool, endpoints, (e, deadline) => currentRevision(pool, e, { deadline }));
        if (!r.ok) {
          statusFailure(res, `etcdserver: ${r.error}`);
          return 500;
        }
        json(res, 200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(r.value) }, items: nodes.map(node) });
        return 200;
      }
      default:
        unknownPaths.push(`GET ${path}`);
        json(res, 404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', code: 404 });
        return 404;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).then(
      (code) => requests.push(`${req.method} ${req.url} ${code}`),
      (err: unknown) => {
        requests.push(`${req.method} ${req.url} error ${(err as Error).message}`);
        if (!res.headersSent) statusFailure(res, (err as Error).message);
      },
    );
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    unknownPaths,
    requests,
    nodes,
    writeKubeconfig: (file, context = 'standin') => writeKubeconfig(file, url, context),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      pool.close();
    },
  };
}

// ---- as a process ------------------------------------------------------------------------------------------------

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const args = process.argv.slice(2);
  const etcd = flag(args, 'etcd')?.split(',').filter(Boolean) ?? [];
  if (etcd.length === 0) {
    console.error('usage: apiserver-standin.ts --etcd URL[,URL...] [--port N] [--nodes a,b]');
    process.exit(2);
  }
  const standin = await startApiServerStandin({
    etcd,
    port: Number(flag(args, 'port') ?? 0),
    ...(flag(args, 'nodes') ? { nodes: flag(args, 'nodes')!.split(',').map((name) => ({ name, ready: true })) } : {}),
  });
  console.log(`listening ${standin.url}`);
  const bye = () => {
    standin.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', bye);
  process.once('SIGINT', bye);
}
