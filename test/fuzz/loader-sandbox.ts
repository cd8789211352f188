/**
 * The runbook loader in a worker thread with a watchdog: `check(input)` resolves with the worker's answer, or with
 * `hung` when the loader did not answer within `hangMs` (the worker is then terminated and replaced).
 */
import { Worker } from 'node:worker_threads';
import type { LoadReply, LoadRequest } from './loader-worker.ts';

export type CheckResult = LoadReply | { id: number; kind: 'hung'; ms: number };

export class LoaderSandbox {
  readonly hangMs: number;
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #next = 1;
  #pending: { id: number; resolve: (r: CheckResult) => void; timer: NodeJS.Timeout } | undefined;

  constructor(hangMs: number) {
    this.hangMs = hangMs;
  }

  #spawn(): Worker {
    const w = new Worker(new URL('./loader-worker.ts', import.meta.url), { execArgv: [], stdout: true, stderr: true });
    // Module loading is not part of any input's time: the watchdog starts once the worker says it is ready.
    this.#ready = new Promise((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
    w.on('message', (reply: LoadReply | { ready: true }) => {
      if (!('id' in reply)) return;
      const p = this.#pending;
      if (!p || p.id !== reply.id) return;
      clearTimeout(p.timer);
      this.#pending = undefined;
      p.resolve(reply);
    });
    w.on('error', (err) => {
      const p = this.#pending;
      this.#worker = undefined;
      this.#ready = undefined;
      if (!p) return;
      clearTimeout(p.timer);
      this.#pending = undefined;
      p.resolve({ id: p.id, ms: 0, kind: 'crash', name: 'WorkerError', message: err.message, stack: err.stack ?? '' });
    });
    return w;
  }

  /** Warm the worker up (module loading is not part of any input's time). */
  async start(): Promise<void> {
    await this.check({ text: 'a: 1', name: 'warmup.yaml' });
  }

  async check(input: Omit<LoadRequest, 'id'>, hangMs = this.hangMs): Promise<CheckResult> {
    if (this.#pending) {
      // A caller gave up on the previous input (its test timed out): drop that worker, start clean.
      const stale = this.#pending;
      this.#pending = undefined;
      clearTimeout(stale.timer);
      void this.#worker?.terminate();
      this.#worker = undefined;
      this.#ready = undefined;
      stale.resolve({ id: stale.id, kind: 'hung', ms: Number.NaN });
    }
    this.#worker ??= this.#spawn();
    await this.#ready;
    const id = this.#next++;
    const started = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        const w = this.#worker;
        this.#worker = undefined;
        this.#ready = undefined;
        void w?.terminate();
        resolve({ id, kind: 'hung', ms: performance.now() - started });
      }, hangMs);
      this.#pending = { id, resolve, timer };
      this.#worker!.postMessage({ id, ...input } satisfies LoadRequest);
    });
  }

  async close(): Promise<void> {
    await this.#worker?.terminate();
    this.#worker = undefined;
  }
}
