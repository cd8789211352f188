/**
 * A throwaway cluster's temp dir (data dirs, logs, snapshots): created by mkdtemp under os.tmpdir() and marked, and
 * removed only when it is under os.tmpdir() and carries the mark, so a wrong path can never remove anything else.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const MARKER = '.runbook-local-cluster';

/** A new marked dir under os.tmpdir() whose name starts with `prefix`. */
export function createSandboxDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, MARKER), `created by runbook (pid ${process.pid}) for a throwaway etcd cluster; removed at teardown\n`);
  return dir;
}

/** Remove a sandbox dir: only a dir under os.tmpdir() that carries the marker file. */
export function removeSandboxDir(dir: string): void {
  const abs = resolve(dir);
  const tmp = resolve(tmpdir());
  if (!abs.startsWith(`${tmp}/`) || !existsSync(join(abs, MARKER))) return;
  rmSync(abs, { recursive: true, force: true });
}
