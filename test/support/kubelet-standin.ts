/**
 * A stand-in for the kubelet's static-pod handling, for tests: there is no kubelet (nor container runtime) on
 * these machines, and the static-pod driver only ever changes files and watches processes, so this is what it
 * needs on the other side.
 *
 * What it models: it polls one manifests dir (every 200 ms by default) and, like the kubelet's file source,
 * ignores dot files. A manifest that appears → its container's command (+ args) is started as a local process
 * (through src/drivers/process.ts: detached, pid file, log file); a manifest whose content changes → the process
 * is stopped (SIGTERM, then SIGKILL) and started with the new command; a manifest that disappears → the process
 * is stopped. A process that dies while its manifest is there is restarted with a capped backoff (1 s … 10 s),
 * like restartPolicy: Always.
 *
 * What it does not model: containers, images, volumes, mounts, probes, the API server mirror pod, pod UIDs,
 * terminationGracePeriodSeconds (it uses 10 s), the kubelet's 20 s re-list (it reacts within one poll).
 * Processes run on the host with the manifest's argv as is, so the test's manifests must use host paths.
 *
 * Bounded: the loop stops itself after `maxLifetimeMs` (default 10 min); `stop()` stops the loop and every
 * process it started (by pid), and a process exit hook SIGKILLs whatever is left.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, startProcess, stopProcess, type ProcessSpec } from '../../src/drivers/process.ts';
import { manifestArgv } from '../../src/drivers/pod-manifest.ts';
import { killIfStill } from './child-processes.ts';

export interface KubeletStandinOptions {
  manifestsDir: string;
  /** Where pid and log files go (default: `<manifestsDir>/../kubelet-standin`). */
  stateDir?: string;
  /** Pid and log file of the pod of a manifest (default: `<stateDir>/<manifest file>.pid|.log`). */
  files?: (manifestFile: string) => { pidFile: string; logFile: string };
  pollMs?: number;
  maxLifetimeMs?: number;
}

interface Pod {
  file: string;
  hash: string;
  spec: ProcessSpec;
  pid?: number;
  restarts: number;
  nextStartAt: number;
}

export interface KubeletStandin {
  /** What happened, in order ("start etcd.yaml pid 123", "restart etcd.yaml (manifest changed)", …). */
  readonly events: string[];
  /** Every pid it started. */
  readonly pids: number[];
  pods(): { file: string; pid?: number; command: string[] }[];
  /** Resolves after one full pass over the manifests dir that started after this call. */
  synced(): Promise<void>;
  /** The stand-in's own failures (a pod it could not start, a pass that threw): stop() fails the test with them. */
  readonly failures: string[];
  /** Stop watching, then stop every process it runs; rejects, listing them, when there were failures. */
  stop(): Promise<void>;
}

const running = new Set<Map<string, Pod>>();
let hookInstalled = false;
function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => {
    for (const pods of running) {
      for (const pod of pods.values()) {
        // Only while the pid still runs the pod's command: a recycled pid may name another test's process.
        if (pod.pid !== undefined) killIfStill(pod.pid, pod.spec.command.join(' '));
      }
    }
  });
}

export function startKubeletStandin(opts: KubeletStandinOptions): KubeletStandin {
  installExitHook();
  const pollMs = opts.pollMs ?? 200;
  const until = Date.now() + (opts.maxLifetimeMs ?? 10 * 60_000);
  const stateDir = opts.stateDir ?? join(opts.manifestsDir, '..', 'kubelet-standin');
  mkdirSync(stateDir, { recursive: true });
  const files = opts.files ?? ((f: string) => ({ pidFile: join(stateDir, `${basename(f)}.pid`), logFile: join(stateDir, `${basename(f)}.log`) }));
  const pods = new Map<string, Pod>();
  /** Manifests that did not parse, by content hash (reported once). */
  const bad = new Map<string, string>();
  running.add(pods);
  const events: string[] = [];
  const failures: string[] = [];
  const pids: number[] = [];
  let stopped = false;
  let passes = 0;
  const waiters: { after: number; resolve: () => void }[] = [];

  const launch = async (pod: Pod, why: string): Promise<void> => {
    try {
      const { pid } = await startProcess(pod.spec);
      pod.pid = pid;
      pids.push(pid);
      events.push(`${why} ${pod.file} pid ${pid}`);
    } catch (err) {
      events.push(`cannot start ${pod.file}: ${(err as Error).message}`);
      failures.push(`cannot start ${pod.file}: ${(err as Error).message}`);
    }
  };

  const halt = async (pod: Pod, why: string): Promise<void> => {
    const r = await stopProcess(pod.spec, { timeoutMs: 10_000 });
    events.push(`stop ${pod.file} (${why})${r.pid ? ` pid ${r.pid}` : ''}`);
    pod.pid = undefined;
  };

  const pass = async (): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(opts.manifestsDir).filter((n) => !n.startsWith('.'));
    } catch {
      names = [];
    }
    for (const name of names) {
      const path = join(opts.manifestsDir, name);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        continue; // renamed away between the listing and the read
      }
      const hash = createHash('sha256').update(text).digest('hex');
      const known = pods.get(name);
      if (known && known.hash === hash) {
        if (known.pid !== undefined && !isAlive(known.pid)) {
          known.pid = undefined;
          known.restarts++;
          known.nextStartAt = Date.now() + Math.min(10_000, 1000 * 2 ** Math.min(known.restarts - 1, 4));
          events.push(`${name} exited (restart ${known.restarts} in ${known.nextStartAt - Date.now()} ms)`);
        }
        if (known.pid === undefined && Date.now() >= known.nextStartAt) await launch(known, 'restart');
        continue;
      }
      let argv: string[];
      try {
        argv = manifestArgv(text, path);
      } catch (err) {
        if (bad.get(name) !== hash) events.push(`bad manifest ${name}: ${(err as Error).message}`);
        bad.set(name, hash);
        continue;
      }
      if (known) await halt(known, 'manifest changed');
      const pod: Pod = { file: name, hash, spec: { type: 'process', command: argv, ...files(path) }, restarts: 0, nextStartAt: 0 };
      pods.set(name, pod);
      await launch(pod, known ? 'restart (manifest changed)' : 'start');
    }
    for (const [name, pod] of [...pods]) {
      if (names.includes(name)) continue;
      await halt(pod, 'manifest removed');
      pods.delete(name);
    }
  };

  const loop = (async () => {
    while (!stopped && Date.now() < until) {
      await pass().catch((err: unknown) => {
        events.push(`pass failed: ${(err as Error).message}`);
        failures.push(`pass failed: ${(err as Error).message}`);
      });
      passes++;
      for (const w of waiters.splice(0)) {
        if (passes > w.after) w.resolve();
        else waiters.push(w);
      }
      await sleep(pollMs);
    }
  })();

  return {
    events,
    failures,
    pids,
    pods: () => [...pods.values()].map((p) => ({ file: p.file, ...(p.pid !== undefined ? { pid: p.pid } : {}), command: p.spec.command })),
    synced: () => new Promise<void>((resolve) => waiters.push({ after: passes + 1, resolve })),
    async stop() {
      stopped = true;
      await loop;
      for (const pod of pods.values()) await halt(pod, 'kubelet stand-in stopped');
      pods.clear();
      running.delete(pods);
      for (const w of waiters.splice(0)) w.resolve();
      // Nothing asserted these when they happened: a kubelet that failed silently must not let a test pass.
      if (failures.length > 0) throw new Error(`kubelet stand-in (${opts.manifestsDir}) failed ${failures.length} time(s):\n${failures.slice(0, 10).map((f) => `  ${f}`).join('\n')}`);
    },
  };
}
