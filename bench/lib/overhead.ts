/**
 * What the engine itself costs, apart from etcd: CLI cold start, loading + compiling each runbook, a journal
 * record (append + fsync), a persisted machine snapshot (atomic write), and a whole step of the engine with an
 * action that does nothing (journal, snapshot, xstate transitions, probes skipped).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './report.ts';
import { ROOT, runCli } from './runbook-cli.ts';

export interface Overhead {
  versionMs: number;
  validateMs: number;
  /** Per runbook: first load in this process, then warm medians. */
  compile: { runbook: string; firstLoadMs: number; loadMs: number; compileMs: number }[];
  journalAppendUs: number;
  snapshotWriteUs: number;
  snapshotBytes: number;
  /** Engine cost per no-op step, on disk (journal + snapshots) and its journal records per step. */
  engineStepMs: number;
  recordsPerStep: number;
}

const builtins = () => readdirSync(join(ROOT, 'runbooks')).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(ROOT, 'runbooks', f));

export interface ColdStart {
  versionMs: number;
  validateMs: number;
  /** `plan nospace-recovery` against a closed port: every module a run loads, up to the first etcd call. */
  planMs: number;
  /** The same three with Node's on-disk compile cache (NODE_COMPILE_CACHE, warm). */
  cached: { versionMs: number; validateMs: number; planMs: number };
}

export async function measureColdStart(reps: number): Promise<ColdStart> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'runbook-bench-cc-'));
  const cmds = { versionMs: ['--version'], validateMs: ['validate', ...builtins()], planMs: ['plan', 'nospace-recovery', '--endpoints', 'http://127.0.0.1:9'] };
  const plain: Record<string, number[]> = { versionMs: [], validateMs: [], planMs: [] };
  const cached: Record<string, number[]> = { versionMs: [], validateMs: [], planMs: [] };
  try {
    for (const args of Object.values(cmds)) await runCli(args, { env: { NODE_COMPILE_CACHE: cacheDir } }); // fill the cache
    for (let i = 0; i < reps; i++) {
      for (const [k, args] of Object.entries(cmds)) {
        const a = await runCli(args);
        const b = await runCli(args, { env: { NODE_COMPILE_CACHE: cacheDir } });
        // plan fails (nothing listens on port 9) after loading everything: exit 1 is expected there
        for (const r of [a, b]) if (r.exitCode !== (k === 'planMs' ? 1 : 0)) throw new Error(`runbook ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.slice(-500)}`);
        plain[k]!.push(a.wallMs);
        cached[k]!.push(b.wallMs);
      }
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return {
    versionMs: median(plain.versionMs!), validateMs: median(plain.validateMs!), planMs: median(plain.planMs!),
    cached: { versionMs: median(cached.versionMs!), validateMs: median(cached.validateMs!), planMs: median(cached.planMs!) },
  };
}

function timeIt(fn: () => void, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export async function measureCompile(): Promise<Overhead['compile']> {
  const { loadRunbook } = await import('../../src/runbook/load.ts');
  const { compileRunbook } = await import('../../src/compile/machine.ts');
  return builtins().map((file) => {
    const firstLoadMs = timeIt(() => loadRunbook(file), 1)[0]!;
    const loadMs = median(timeIt(() => loadRunbook(file), 20));
    const rb = loadRunbook(file);
    const compileMs = median(timeIt(() => compileRunbook(rb), 50));
    return { runbook: file.split('/').pop()!.replace('.yaml', ''), firstLoadMs, loadMs, compileMs };
  });
}

export async function measureJournal(snapshotBytes: number): Promise<{ journalAppendUs: number; snapshotWriteUs: number }> {
  const { openJournal, writeFileAtomic } = await import('../../src/store/journal.ts');
  const dir = mkdtempSync(join(tmpdir(), 'runbook-bench-journal-'));
  try {
    const j = openJournal(join(dir, 'journal.jsonl'), 'bench');
    const event = { type: 'step.succeeded' as const, stepId: 'defrag', item: 'm1', output: { member: 'm1', reclaimedBytes: 123456789, before: { dbSize: 1, inUse: 1 }, after: { dbSize: 1, inUse: 1 } }, durationMs: 12, via: 'run' as const };
    const appends = timeIt(() => j.append(event), 200);
    j.close();
    const data = JSON.stringify({ hash: 'x'.repeat(64), snapshot: 'y'.repeat(Math.max(0, snapshotBytes - 90)) });
    const writes = timeIt(() => writeFileAtomic(join(dir, 'snapshot.json'), data), 100);
    return { journalAppendUs: median(appends) * 1000, snapshotWriteUs: median(writes) * 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A runbook of `n` steps whose action does nothing, run for real (journal and snapshots on disk). */
export async function measureEngine(n = 40): Promise<{ engineStepMs: number; recordsPerStep: number }> {
  const { loadRunbookText } = await import('../../src/runbook/load.ts');
  const { createRegistry } = await import('../../src/actions/registry.ts');
  const { catalog } = await import('../../src/actions/catalog.ts');
  const { startRun } = await import('../../src/execute/executor.ts');
  const text = [
    'apiVersion: runbook/v1',
    'name: bench-engine',
    'summary: no-op steps to time the engine',
    'steps:',
    ...Array.from({ length: n }, (_, i) => `  - { id: s${i}, action: wait, with: { duration: 1ms } }`),
  ].join('\n');
  const runbook = loadRunbookText(text, 'bench-engine.yaml');
  const registry = createRegistry({ wait: { meta: catalog.wait as never, impl: { run: async () => ({}) } } });
  const inventory = { name: 'bench-engine', source: 'bench', members: [{ name: 'x', clientURL: 'http://127.0.0.1:9', peerURL: '', driver: { type: 'none' as const } }] };
  const samples: number[] = [];
  let records = 0;
  for (let rep = 0; rep < 5; rep++) {
    const stateDir = mkdtempSync(join(tmpdir(), 'runbook-bench-engine-'));
    try {
      const t0 = performance.now();
      const handle = await startRun({ runbook, runbookText: text, inventory: inventory as never, params: {}, registry, stateDir });
      const result = await handle.done;
      if (result.status !== 'succeeded') throw new Error(`engine benchmark run ${result.status}: ${result.error?.message}`);
      samples.push(performance.now() - t0);
      records = result.records.length;
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  return { engineStepMs: median(samples) / n, recordsPerStep: records / n };
}
