/**
 * `mkdir -p` that always ends. Node's `mkdirSync(p, { recursive: true })` loops forever where mkdir answers ENOENT
 * although the parent exists (a path under /proc or /sys: seen with `--state-dir /proc/x`, the process spun and
 * ignored SIGTERM). Here each missing component is created once, from the deepest existing ancestor down, and the
 * first failure is thrown as Node's own errno error (which the CLI turns into an environment error, exit 7).
 */
import fs from 'node:fs';
import path from 'node:path';

export function mkdirp(dir: string, mode?: number): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    try {
      if (!fs.statSync(at).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${abs}'`), { code: 'ENOTDIR', syscall: 'mkdir', path: at });
      }
      break;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // ENOTDIR (a part of the path is a file) and the like: said as what we were doing, for the path asked for.
      if (e.code !== 'ENOENT') throw Object.assign(new Error(`${e.code}: cannot mkdir '${abs}'`), { code: e.code, syscall: 'mkdir', path: abs });
      missing.push(at);
      const parent = path.dirname(at);
      if (parent === at) break;
      at = parent;
    }
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, mode === undefined ? undefined : { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
