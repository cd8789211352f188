/**
 * What a guard costs by itself: CPU, resident memory and requests per minute per member, for one cluster and for
 * twenty watched from one process. Real 3-member etcd clusters on loopback (healthy, so no rule holds: the cost
 * measured is the watching), the guards in a child process (bench/lib/guard-host.ts) whose /proc/<pid>/stat and
 * /proc/<pid>/status are sampled every second; the first poll's connection setup is inside the window.
 *
 *   node bench/guard.ts [--clusters 1,20] [--interval 30s] [--duration 120s] [--out bench/results/x.json]
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/util/units.ts';
import { startCluster, type TestCluster } from '../test/support/etcd-cluster.ts';

const { values } = parseArgs({ options: { clusters: { type: 'string', default: '1,20' }, interval: { type: 'string', default: '30s' }, duration: { type: 'string', default: '120s' }, out: { type: 'string' } } });
const counts = values.clusters!.split(',').map(Number);
const durationMs = parseDuration(values.duration!)!;
const intervalMs = parseDuration(values.interval!)!;
const TICK = 100; // USER_HZ: the unit of utime/stime in /proc/<pid>/stat on Linux

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface Result { clusters: number; members: number; intervalMs: number; durationMs: number; cpuMs: number; cpuPercent: number; rssStartMiB: number; rssMaxMiB: number; rssEndMiB: number; requestsPerMinPerMember: { status: number; metrics: number }; failedRequests: number; polls: number[] }

async function measure(n: number): Promise<Result> {
  const clusters: TestCluster[] = [];
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-bench-guard-'));
  try {
    for (let i = 0; i < n; i += 4) {
      clusters.push(...(await Promise.all(Array.from({ length: Math.min(4, n - i) }, (_, j) => startCluster({ members: 3, name: `bench-${i + j}` })))));
    }
    const invs = clusters.map((c) => c.writeInventory());
    const child = execa(process.execPath, [path.join(import.meta.dirname, 'lib/guard-host.ts'), ...invs], {
      env: { GUARD_INTERVAL: String(intervalMs), GUARD_DURATION: String(durationMs), GUARD_STATE_DIR: stateDir }, buffer: true, lines: false, stdin: 'ignore',
    });
    // wait until the modules are loaded, then start counting
    await new Promise<void>((resolve) => child.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('ready')) resolve(); }));
    const pid = child.pid!;
    const t0 = Date.now();
    const cpu0 = cpuTicks(pid);
    const rss0 = rssKiB(pid);
    let rssMax = rss0;
    let cpuLast = cpu0;
    let rssLast = rss0;
    const sampler = setInterval(() => {
      try {
        cpuLast = cpuTicks(pid);
        rssLast = rssKiB(pid);
        rssMax = Math.max(rssMax, rssLast);
      } catch { /* exiting */ }
    }, 1000);
    const r = await child;
    clearInterval(sampler);
    const elapsed = Date.now() - t0;
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { requests: { labels: Record<string, string>; value: number }[]; polls: number[] };
    const members = n * 3;
    const sum = (kind: string, outcome?: string) => report.requests.filter((x) => x.labels.kind === kind && (!outcome || x.labels.outcome === outcome)).reduce((a, x) => a + x.value, 0);
    const perMin = (v: number) => Math.round((v / members / (durationMs / 60_000)) * 100) / 100;
    const cpuMs = ((cpuLast - cpu0) * 1000) / TICK;
    return {
      clusters: n, members, intervalMs, durationMs,
      cpuMs, cpuPercent: Math.round((cpuMs / elapsed) * 1000) / 10,
      rssStartMiB: Math.round(rss0 / 102.4) / 10, rssMaxMiB: Math.round(rssMax / 102.4) / 10, rssEndMiB: Math.round(rssLast / 102.4) / 10,
      requestsPerMinPerMember: { status: perMin(sum('status')), metrics: perMin(sum('metrics')) },
      failedRequests: sum('status', 'error') + sum('metrics', 'error'),
      polls: report.polls,
    };
  } finally {
    await Promise.all(clusters.map((c) => c.teardown()));
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (const n of counts) {
  const r = await measure(n);
  results.push(r);
  console.log(`${n} cluster(s), ${r.members} members, every ${intervalMs / 1000}s for ${durationMs / 1000}s: CPU ${r.cpuMs} ms (${r.cpuPercent}% of one core), RSS ${r.rssStartMiB} → max ${r.rssMaxMiB} MiB, requests/min/member: ${r.requestsPerMinPerMember.status} status + ${r.requestsPerMinPerMember.metrics} metrics, ${r.failedRequests} failed`);
}
const meta = { date: new Date().toISOString(), node: process.version, etcd: process.env.ETCD_VERSION ?? '?', load: os.loadavg(), cpus: os.cpus().length };
if (values.out) fs.writeFileSync(values.out, `${JSON.stringify({ meta, results }, null, 2)}\n`);
console.log(JSON.stringify({ meta, results }));
