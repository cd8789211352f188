/**
 * What `runbook diagnose` says about the backup stream of a cluster (when its status file is in one of the
 * inventory's snapshot dirs): a stream that stopped, or a lag (RPO right now) above the threshold. Read-only:
 * two small local files, no call to the cluster.
 */
import type { Finding } from '../diagnose/types.ts';
import type { Inventory } from '../inventory/types.ts';
import { lagMs, readStatus } from './status.ts';

export const LAG_WARNING_MS = 10_000;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function backupFindings(inventory: Inventory, now = Date.now()): Finding[] {
  const out: Finding[] = [];
  for (const dir of inventory.snapshots?.dirs ?? []) {
    const s = readStatus(dir);
    if (!s || s.cluster !== inventory.name) continue;
    if (s.state === 'stopped' || !running(s.pid)) {
      out.push({ severity: 'warning', code: 'backup-stream-stopped', message: `the backup stream for ${dir} is not running (last revision ${s.lastRevision}): changes since are not backed up` });
      continue;
    }
    const lag = lagMs(s, now);
    if (lag !== undefined && lag > LAG_WARNING_MS) {
      out.push({ severity: 'warning', code: 'backup-lag', message: `the backup stream for ${dir} is ${(lag / 1000).toFixed(1)} s behind (a loss now would lose that much)${s.lastError ? `; last reconnect: ${s.lastError}` : ''}` });
    } else if (lag !== undefined) {
      out.push({ severity: 'info', code: 'backup-lag', message: `backup stream lag ${(lag / 1000).toFixed(1)} s (${dir})` });
    }
  }
  return out;
}
