/**
 * CLI cold start, this checkout against another one (e.g. the previous commit's tree), runs interleaved so that
 * load on a shared machine falls on both alike:
 *   node bench/cold-start.ts --base /path/to/other/checkout [--reps 15]
 * Each round runs `--version`, `validate runbooks/*.yaml` and `plan nospace-recovery` against a closed port (every
 * module a run loads, up to the first etcd call) once in each checkout, as an operator would: a fresh Node
 * process, the esbuild bundle in dist/ (built before timing), Node's compile cache as the CLI sets it up.
 * Prints the median and the fastest of each, in milliseconds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/report.ts';

const { values: opt } = parseArgs({ options: { base: { type: 'string' }, reps: { type: 'string', default: '15' } } });
if (!opt.base) throw new Error('--base <checkout> is needed: the tree to compare with');
const trees = { head: resolve(import.meta.dirname, '..'), base: resolve(opt.base) };
const reps = Number(opt.reps);

const runbooks = (root: string) => readdirSync(join(root, 'runbooks')).filter((f) => f.endsWith('.yaml')).sort().map((f) => join('runbooks', f));
const commands = (root: string): Record<string, { args: string[]; exit: number }> => ({
  version: { args: ['--version'], exit: 0 },
  validate: { args: ['validate', ...runbooks(root)], exit: 0 },
  // nothing listens on port 9: exit 1 after loading everything a run loads
  plan: { args: ['plan', 'nospace-recovery', '--endpoints', 'http://127.0.0.1:9'], exit: 1 },
});

function timeOnce(root: string, args: string[], exit: number): number {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') || k === 'RUNBOOK_INVENTORY') delete env[k];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'bin/runbook.js'), ...args], { cwd: root, env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== exit) throw new Error(`${root}: runbook ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-500)}`);
  return ms;
}

const times: Record<string, Record<string, number[]>> = { head: {}, base: {} };
for (const [tree, root] of Object.entries(trees)) {
  for (const { args, exit } of Object.values(commands(root))) timeOnce(root, args, exit); // build the bundle, fill the cache
  for (const k of Object.keys(commands(root))) times[tree]![k] = [];
}
for (let i = 0; i < reps; i++) {
  for (const k of Object.keys(commands(trees.head))) {
    for (const [tree, root] of Object.entries(trees)) {
      const c = commands(root)[k]!;
      times[tree]![k]!.push(timeOnce(root, c.args, c.exit));
    }
  }
}
const rev = (root: string) => {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return root;
  }
};
console.log(`cold start, ${reps} interleaved rounds (median / fastest, ms): head ${rev(trees.head)}, base ${opt.base}`);
for (const k of Object.keys(commands(trees.head))) {
  const h = times.head![k]!;
  const b = times.base![k]!;
  const ratio = median(h) / median(b);
  console.log(`${k.padEnd(9)} head ${median(h).toFixed(0).padStart(5)} / ${Math.min(...h).toFixed(0).padStart(5)}   base ${median(b).toFixed(0).padStart(5)} / ${Math.min(...b).toFixed(0).padStart(5)}   head/base ${ratio.toFixed(2)}`);
}
