/**
 * Run a hand-recipe shell script (bench/*-recipe.sh) and read the "<phase> <epoch seconds>" marks it prints on
 * stderr: the time of every phase, and the wall time from spawn to exit.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { nowMs, ROOT } from './runbook-cli.ts';

export interface ScriptResult {
  wallMs: number;
  /** Milliseconds of each phase (previous mark → this mark), in order. */
  phases: { name: string; ms: number }[];
  /** spawn → the given mark (absent when the script printed no such mark). */
  at(mark: string): number | undefined;
}

export function runScript(script: string, args: string[], tls?: { cacert: string; cert: string; key: string }): Promise<ScriptResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ETCDCTL_')) env[k] = v;
  if (tls) Object.assign(env, { ETCDCTL_CACERT: tls.cacert, ETCDCTL_CERT: tls.cert, ETCDCTL_KEY: tls.key });
  return new Promise((resolve, reject) => {
    const startedAt = nowMs();
    execFile('bash', [join(ROOT, script), ...args], { env, timeout: 60 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      const endedAt = nowMs();
      const marks = [...stderr.matchAll(/^(\w+) (\d+\.\d+)$/gm)].map((m) => ({ name: m[1]!, at: Number(m[2]) * 1000 }));
      if (err || marks.length < 2) {
        reject(new Error(`${script} failed (${err ? err.message : `${marks.length} marks`}): ${stderr.slice(-2000)}`));
        return;
      }
      resolve({
        wallMs: endedAt - startedAt,
        phases: marks.slice(1).map((m, i) => ({ name: m.name, ms: m.at - marks[i]!.at })),
        at: (mark) => {
          const m = marks.find((x) => x.name === mark);
          return m ? m.at - startedAt : undefined;
        },
      });
    });
  });
}
