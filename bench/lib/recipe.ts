/**
 * Run the hand recipe and read its per-command timestamps: bench/recipe.sh (etcdctl, one process per command, what
 * operators paste) or bench/node-recipe.mjs (the same calls from one Node process with etcd3, no checks).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { nowMs, ROOT } from './runbook-cli.ts';

export interface RecipeResult {
  exitCode: number;
  stderr: string;
  wallMs: number;
  /** Milliseconds of each command, in order: revision, compact, defrag, disarm, put. */
  commands: { name: string; ms: number }[];
  /** spawn → disarm returned (the cluster accepts writes) */
  writableMs: number;
}

/** `tls`: the client certificate files, given to etcdctl the way an operator's shell has them (ETCDCTL_CACERT/CERT/KEY). */
export function runRecipe(endpoints: string[], tls?: { cacert: string; cert: string; key: string }, kind: 'etcdctl' | 'node' = 'etcdctl'): Promise<RecipeResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ETCDCTL_')) env[k] = v;
  if (tls) Object.assign(env, { ETCDCTL_CACERT: tls.cacert, ETCDCTL_CERT: tls.cert, ETCDCTL_KEY: tls.key });
  return new Promise((resolve, reject) => {
    const startedAt = nowMs();
    const [cmd, script] = kind === 'etcdctl' ? ['bash', 'bench/recipe.sh'] : [process.execPath, 'bench/node-recipe.mjs'];
    execFile(cmd, [join(ROOT, script), endpoints.join(',')], { env, timeout: 60 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      const endedAt = nowMs();
      const marks = [...stderr.matchAll(/^(\w+) (\d+\.\d+)$/gm)].map((m) => ({ name: m[1]!, at: Number(m[2]) * 1000 }));
      if (err || marks.length !== 6) {
        reject(new Error(`${kind} recipe failed (${err ? err.message : `${marks.length} marks`}): ${stderr.slice(-2000)}`));
        return;
      }
      const commands = marks.slice(1).map((m, i) => ({ name: m.name, ms: m.at - marks[i]!.at }));
      resolve({
        exitCode: 0,
        stderr,
        wallMs: endedAt - startedAt,
        commands,
        writableMs: marks.find((m) => m.name === 'disarm')!.at - startedAt,
      });
    });
  });
}
