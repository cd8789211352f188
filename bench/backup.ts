/**
 * Continuous-backup benchmarks (BENCHMARKS.md "Continuous backup"), on a throwaway 3-member cluster:
 *   rpo      — `runbook backup stream` (a child process, fsync 1 s) under a steady write load: the lag it reports
 *              (how old the newest moment is up to which everything is on disk = what a loss now would lose),
 *              sampled 4× a second: its distribution;
 *   rss      — the stream's resident memory while as many writers as the machine sustains hammer the cluster
 *              (1 KiB values), sampled from /proc, with the write rate reached and the lag at the end;
 *   restore  — a point-in-time rebuild (base snapshot of `--mib` MiB restored on a scratch member, `--deltas`
 *              revisions replayed, result saved and verified) against a plain `etcdutl snapshot restore` of the
 *              same base.
 * Usage: node bench/backup.ts [--only rpo,rss,restore] [--seconds 20] [--mib 64] [--deltas 20000] [--out file.json]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { buildTarget } from '../src/backup/build-target.ts';
import { readStatus, lagMs } from '../src/backup/status.ts';
import { localHost } from '../src/hosts/local.ts';
import { startLocalCluster, type LocalClusterHandle } from '../src/rehearse/local-cluster.ts';
import { localRestoreTool } from '../src/snapshot/etcd-tools.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'rpo,rss,restore' },
    seconds: { type: 'string', default: '20' },
    mib: { type: 'string', default: '64' },
    deltas: { type: 'string', default: '20000' },
    out: { type: 'string' },
  },
});
const only = new Set(args.only!.split(','));
const seconds = Number(args.seconds);
const root = join(import.meta.dirname, '..');
const results: Record<string, unknown> = { at: new Date().toISOString(), etcd: process.env.ETCD_VERSION ?? '?', node: process.version };

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function startStream(inv: string) {
  return spawn(process.execPath, [join(root, 'bin/runbook.js'), 'backup', 'stream', '-i', inv, '--fsync-interval', '1s'], { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function until(what: string, fn: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

/** `n` concurrent writers for `ms`, each put as soon as the last one was acknowledged (or at `perSecond` in total). */
async function load(c: LocalClusterHandle, n: number, ms: number, valueBytes: number, perSecond?: number): Promise<number> {
  const clients = c.members.map((m) => c.client(m.name));
  const value = 'x'.repeat(valueBytes);
  let puts = 0;
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      const cl = clients[w % clients.length]!;
      let i = 0;
      while (Date.now() < end) {
        const t = Date.now();
        await cl.put(`/bench/${w}/${i++ % 500}`).value(value).exec();
        puts++;
        if (perSecond) await sleep(Math.max(0, (n * 1000) / perSecond - (Date.now() - t)));
      }
    }),
  );
  return puts / (ms / 1000);
}

async function rpo(): Promise<void> {
  const c = await startLocalCluster({ name: 'bench-rpo', quotaBytes: 2 * 1024 ** 3 });
  try {
    const dir = join(c.dir, 'snapshots');
    const child = startStream(c.writeInventory());
    try {
      await until('stream', () => readStatus(dir)?.state === 'streaming' && readStatus(dir)?.durableUpTo !== undefined);
      const lags: number[] = [];
      const sampler = (async () => {
        const end = Date.now() + seconds * 1000;
        while (Date.now() < end) {
          const s = readStatus(dir);
          const l = s && lagMs(s);
          if (l !== undefined) lags.push(l);
          await sleep(250);
        }
      })();
      const rate = await load(c, 4, seconds * 1000, 256, 200);
      await sampler;
      results.rpo = { writesPerSecond: Math.round(rate), samples: lags.length, p50: pct(lags, 50), p90: pct(lags, 90), p99: pct(lags, 99), max: Math.max(...lags), fsyncIntervalMs: 1000 };
      console.log('rpo', results.rpo);
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    await c.teardown();
  }
}

async function rss(): Promise<void> {
  const c = await startLocalCluster({ name: 'bench-rss', quotaBytes: 8 * 1024 ** 3 });
  try {
    const dir = join(c.dir, 'snapshots');
    const child = startStream(c.writeInventory());
    try {
      await until('stream', () => readStatus(dir)?.state === 'streaming');
      const idle = rssOf(child.pid!);
      let peak = idle;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, rssOf(child.pid!));
          await sleep(200);
        }
      })();
      const rate = await load(c, 32, seconds * 1000, 1024);
      const lastWrite = Number((await c.client(c.members[0]!.name).get('/bench/0/0').exec()).header.revision);
      const t0 = Date.now();
      await until('catch up', () => (readStatus(dir)?.durableRevision ?? 0) >= lastWrite, 120_000);
      sampling = false;
      await sampler;
      results.rss = { writesPerSecond: Math.round(rate), valueBytes: 1024, idleRssMiB: +(idle / 2 ** 20).toFixed(1), peakRssMiB: +(peak / 2 ** 20).toFixed(1), catchUpAfterLoadMs: Date.now() - t0 };
      console.log('rss', results.rss);
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    await c.teardown();
  }
}

async function restore(): Promise<void> {
  const mib = Number(args.mib);
  const deltas = Number(args.deltas);
  const c = await startLocalCluster({ name: 'bench-pitr', quotaBytes: 8 * 1024 ** 3 });
  const work = mkdtempSync(join(tmpdir(), 'runbook-bench-pitr-'));
  try {
    const dir = join(c.dir, 'snapshots');
    const cl = c.client(c.members[0]!.name);
    const big = 'b'.repeat(64 * 1024);
    for (let i = 0; i < mib * 16; i++) await cl.put(`/big/${i}`).value(big).exec();
    const child = startStream(c.writeInventory());
    try {
      await until('stream', () => readStatus(dir)?.state === 'streaming', 300_000);
      const clients = c.members.map((m) => c.client(m.name));
      let last = 0;
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async (_, w) => {
        while (next < deltas) {
          const i = next++;
          const r = await clients[w % 3]!.put(`/d/${i % 5000}`).value(`v${i}`).exec();
          last = Math.max(last, Number(r.header.revision));
        }
      }));
      await until('deltas on disk', () => (readStatus(dir)?.durableRevision ?? 0) >= last, 300_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    const inventory = c.inventory();
    const base = readStatus(dir)!.base;
    const tool = await localRestoreTool(localHost, inventory.etcdBinDir);
    const t0 = performance.now();
    const r0 = await localHost.run([tool.path, 'snapshot', 'restore', join(dir, base.file), '--data-dir', join(work, 'plain')], { timeoutMs: 3600_000 });
    const plainMs = performance.now() - t0;
    if (r0.exitCode !== 0) throw new Error(r0.stderr);
    const t1 = performance.now();
    const built = await buildTarget({ inventory, dirs: [dir], spec: { newest: true }, workDir: join(work, 'scratch'), outDir: join(work, 'out') });
    const buildMs = performance.now() - t1;
    const t2 = performance.now();
    const r1 = await localHost.run([tool.path, 'snapshot', 'restore', built.path, '--data-dir', join(work, 'pitr')], { timeoutMs: 3600_000 });
    const restoreBuiltMs = performance.now() - t2;
    if (r1.exitCode !== 0) throw new Error(r1.stderr);
    results.restore = { baseMiB: mib, baseRevision: base.revision, deltaRevisions: built.replayed.revisions, plainRestoreMs: Math.round(plainMs), rebuildMs: Math.round(buildMs), restoreRebuiltMs: Math.round(restoreBuiltMs), replayPerSecond: Math.round(built.replayed.revisions / (buildMs / 1000)) };
    console.log('restore', results.restore);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await c.teardown();
  }
}

if (only.has('rpo')) await rpo();
if (only.has('rss')) await rss();
if (only.has('restore')) await restore();
if (args.out) writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
process.exit(0);
