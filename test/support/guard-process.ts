/**
 * `runbook guard --json` as a child process (the real CLI), its events collected as they are printed, and steady
 * client load (a paced writer, a reader per member) with their own etcd3 clients: library retries and circuit
 * breaker off and an explicit deadline on every call, so a failure is the cluster's, not the client library's.
 */
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { GRPCResourceExhastedError, type Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/etcd/client.ts';

const root = path.resolve(import.meta.dirname, '../..');
export const bin = path.join(root, 'bin/runbook.js');

export interface GuardEventLine {
  type: string;
  decision?: string;
  runId?: string;
  message?: string;
  status?: string;
  record?: { type: string; stepId?: string; item?: string; runId: string };
  finding?: { code: string; severity: string; member: string; message: string };
  state?: string;
  [k: string]: unknown;
}

export interface GuardProcess {
  events: GuardEventLine[];
  stderr(): string;
  /** Poll the events until one matches (never a fixed sleep). */
  waitFor(match: (e: GuardEventLine) => boolean, what: string, timeoutMs?: number): Promise<GuardEventLine>;
  /** SIGTERM (or `signal`), then wait for the process to end; its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | undefined>;
  child: ResultPromise;
}

export function startGuard(args: string[], env: Record<string, string> = {}): GuardProcess {
  const child = execa(process.execPath, [bin, 'guard', '--json', ...args], { reject: false, env: { NO_COLOR: '1', ...env }, buffer: false, stdin: 'ignore' });
  const events: GuardEventLine[] = [];
  let err = '';
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (!l.trim()) continue;
      try {
        events.push(JSON.parse(l) as GuardEventLine);
      } catch {
        err += `(stdout, not JSON) ${l}\n`;
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => { err += c; });
  let exited = false;
  void child.then(() => { exited = true; });
  return {
    events,
    child,
    stderr: () => err,
    async waitFor(match, what, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.find(match);
        if (hit) return hit;
        if (exited) throw new Error(`guard exited before ${what}; stderr:\n${err.slice(-2000)}`);
        if (Date.now() > until) throw new Error(`no ${what} within ${timeoutMs} ms; last events: ${events.slice(-5).map((e) => JSON.stringify(e).slice(0, 300)).join('\n')}\nstderr:\n${err.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (!exited) child.kill(signal);
      const r = await child;
      return r.exitCode;
    },
  };
}

function client(endpoint: string): Etcd3 {
  return createEtcdClient({ hosts: endpoint, deadline: 10_000 });
}

export interface WriterResult {
  puts: number;
  /** When the first NOSPACE came (ms after the start), if it did. */
  nospaceAfterMs?: number;
  errors: string[];
}

/**
 * Overwrite `keys` keys with `valueBytes` values every `everyMs`, through one member, until `stop()` or NOSPACE:
 * history grows by valueBytes per put and nothing compacts it (the test clusters run without auto-compaction).
 */
export function startWriter(endpoint: string, opts: { valueBytes: number; everyMs: number; keys: number; prefix: string }) {
  const c = client(endpoint);
  const value = Buffer.alloc(opts.valueBytes, 0x77);
  const result: WriterResult = { puts: 0, errors: [] };
  const t0 = Date.now();
  let stopped = false;
  const done = (async () => {
    let next = Date.now();
    while (!stopped) {
      try {
        await c.put(`${opts.prefix}${result.puts % opts.keys}`).value(value).exec();
        result.puts++;
      } catch (err) {
        if (err instanceof GRPCResourceExhastedError) {
          result.nospaceAfterMs = Date.now() - t0;
          break;
        }
        result.errors.push((err as Error).message);
      }
      next += opts.everyMs;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    c.close();
    return result;
  })();
  return {
    result,
    done,
    async stop(): Promise<WriterResult> {
      stopped = true;
      return done;
    },
  };
}

/** A linearizable read through each member, every `everyMs`; every failure is kept. */
export function startReaders(endpoints: string[], key: string, everyMs = 50) {
  let stopped = false;
  const failures: string[] = [];
  let reads = 0;
  const loops = endpoints.map(async (e) => {
    const c = client(e);
    while (!stopped) {
      try {
        await c.get(key).string();
        reads++;
      } catch (err) {
        failures.push(`${e}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    c.close();
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { reads, failures };
    },
  };
}
