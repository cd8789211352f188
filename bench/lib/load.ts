/**
 * Client load during a recovery, the way a control plane sees it: per endpoint a read loop and a write loop, paced,
 * each with its own etcd3 client (library retries and circuit breaker off, an explicit deadline on every call).
 * Own clients, because etcd3 closes a host's channel after any "recoverable" error, NOSPACE included: a write
 * refused with NOSPACE would fail a read queued on the same channel with "Channel closed before call started",
 * a failure of this client library that kube-apiserver's Go client does not have, not of the cluster.
 * Every request is recorded; afterwards: failures, slow requests (> 1 s), the longest request, and the longest
 * time in which no request of a kind completed through any endpoint (what a client that fails over would see).
 * Writes answered NOSPACE count as answered (the cluster is up and says no, as it must until the alarm is gone).
 */
import { noop } from 'cockatiel';
import { readFileSync } from 'node:fs';
import { Etcd3, GRPCResourceExhastedError, GRPCUnavailableError } from 'etcd3';
import { nowMs } from './runbook-cli.ts';

export interface Sample {
  endpoint: string;
  kind: 'read' | 'write';
  start: number;
  end: number;
  outcome: 'ok' | 'nospace' | 'error';
  error?: string;
  /** A read retried once at once after an Unavailable error, as etcd's Go client does for reads. */
  retryOf?: true;
}

export interface LoadSummary {
  reads: number;
  readFailures: number;
  /** Reads that failed even after one immediate retry (what a clientv3 user would see). */
  readFailuresAfterRetry: number;
  slowReads: number;
  maxReadMs: number;
  /** Longest interval without a completed read on any endpoint. */
  readGapMs: number;
  writes: number;
  writesNospace: number;
  writeFailures: number;
  slowWrites: number;
  maxWriteMs: number;
  /** Longest interval without an answered write (ok or NOSPACE) on any endpoint. */
  writeGapMs: number;
  /** Per endpoint: longest read and write. */
  perEndpoint: { endpoint: string; maxReadMs: number; maxWriteMs: number }[];
  errors: string[];
}

export interface Load {
  stop(): Promise<LoadSummary & { samples: Sample[] }>;
}

const SLOW_MS = 1000;

export function startLoad(endpoints: string[], opts: { readKey: string; readEveryMs?: number; writeEveryMs?: number; deadlineMs?: number; tls?: { cacert: string; cert: string; key: string } }): Load {
  const deadlineMs = opts.deadlineMs ?? 60_000;
  const samples: Sample[] = [];
  let stopping = false;
  const client = (hosts: string) =>
    new Etcd3({
      hosts,
      ...(opts.tls ? { credentials: { rootCertificate: readFileSync(opts.tls.cacert), certChain: readFileSync(opts.tls.cert), privateKey: readFileSync(opts.tls.key) } } : {}),
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: () => ({ deadline: Date.now() + deadlineMs }),
    });
  const clients = endpoints.map((e) => ({ read: client(e), write: client(e) }));
  const once = async (endpoint: string, client: Etcd3, kind: 'read' | 'write', n: number, retryOf: boolean): Promise<Sample & { unavailable: boolean }> => {
    const start = nowMs();
    let outcome: Sample['outcome'] = 'ok';
    let error: string | undefined;
    let unavailable = false;
    try {
      if (kind === 'read') await client.get(opts.readKey).string();
      else await client.put(`bench/load/${endpoint.replace(/\W/g, '_')}`).value(String(n)).exec();
    } catch (err) {
      if (err instanceof GRPCResourceExhastedError) outcome = 'nospace';
      else {
        outcome = 'error';
        unavailable = err instanceof GRPCUnavailableError;
        error = `${endpoint} ${kind}: ${(err as Error).constructor.name}: ${(err as Error).message}`;
      }
    }
    const s: Sample = { endpoint, kind, start, end: nowMs(), outcome, ...(error ? { error } : {}), ...(retryOf ? { retryOf: true as const } : {}) };
    samples.push(s);
    return { ...s, unavailable };
  };
  const loop = async (endpoint: string, client: Etcd3, kind: 'read' | 'write', everyMs: number) => {
    let n = 0;
    while (!stopping) {
      const start = nowMs();
      const first = await once(endpoint, client, kind, n++, false);
      if (kind === 'read' && first.unavailable) await once(endpoint, client, kind, n, true);
      const end = nowMs();
      const wait = everyMs - (end - start);
      if (wait > 0 && !stopping) await new Promise((r) => setTimeout(r, wait));
    }
  };
  const loops = endpoints.flatMap((e, i) => [loop(e, clients[i]!.read, 'read', opts.readEveryMs ?? 20), loop(e, clients[i]!.write, 'write', opts.writeEveryMs ?? 100)]);
  const startedAt = nowMs();
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      const stoppedAt = nowMs();
      for (const c of clients) {
        c.read.close();
        c.write.close();
      }
      return { ...summarize(samples, endpoints, startedAt, stoppedAt), samples };
    },
  };
}

/** Longest interval in [from, to] containing no completion time of these samples. */
function longestGap(ends: number[], from: number, to: number): number {
  const sorted = [...ends].sort((a, b) => a - b);
  let prev = from;
  let gap = 0;
  for (const t of sorted) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}

export function summarize(samples: Sample[], endpoints: string[], from: number, to: number): LoadSummary {
  const reads = samples.filter((s) => s.kind === 'read' && !s.retryOf);
  const retries = samples.filter((s) => s.kind === 'read' && s.retryOf);
  const writes = samples.filter((s) => s.kind === 'write');
  const ms = (s: Sample) => s.end - s.start;
  const max = (xs: Sample[]) => xs.reduce((m, s) => Math.max(m, ms(s)), 0);
  const answeredWrites = writes.filter((s) => s.outcome !== 'error');
  return {
    reads: reads.length,
    readFailures: reads.filter((s) => s.outcome !== 'ok').length,
    readFailuresAfterRetry: reads.filter((s) => s.outcome !== 'ok').length - retries.filter((s) => s.outcome === 'ok').length,
    slowReads: reads.filter((s) => ms(s) > SLOW_MS).length,
    maxReadMs: max(reads),
    readGapMs: longestGap([...reads, ...retries].filter((s) => s.outcome === 'ok').map((s) => s.end), from, to),
    writes: writes.length,
    writesNospace: writes.filter((s) => s.outcome === 'nospace').length,
    writeFailures: writes.filter((s) => s.outcome === 'error').length,
    slowWrites: writes.filter((s) => ms(s) > SLOW_MS).length,
    maxWriteMs: max(writes),
    writeGapMs: longestGap(answeredWrites.map((s) => s.end), from, to),
    perEndpoint: endpoints.map((endpoint) => ({
      endpoint,
      maxReadMs: max(reads.filter((s) => s.endpoint === endpoint)),
      maxWriteMs: max(writes.filter((s) => s.endpoint === endpoint)),
    })),
    errors: [...new Set(samples.flatMap((s) => (s.error ? [s.error] : [])))].slice(0, 10),
  };
}
