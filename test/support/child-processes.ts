/**
 * Shared by the tests that drive long-running CLI children (the backup stream) against a throwaway cluster, and
 * by the tests that clean up processes they know only by pid.
 */
import { readFileSync } from 'node:fs';
import type { ResultPromise } from 'execa';
import type { TestCluster } from './etcd-cluster.ts';

/** SIGKILL every child a test left running, and wait for each to be gone. */
export async function killAll(children: ResultPromise[]): Promise<void> {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL');
    await c.catch(() => {});
  }
}

/** The member that leads now, by its own status (members that do not answer are skipped). */
export async function leaderName(c: TestCluster): Promise<string> {
  for (const m of c.members) {
    try {
      const s = await c.status(m.name);
      if (s.leader === s.memberId) return m.name;
    } catch {
      // down
    }
  }
  throw new Error('no leader');
}

/**
 * SIGKILL a process a test started and knows only by pid, only while its command line still contains `mark` (its
 * data dir, its temp dir): pids are recycled (pid_max is 32768 here, and a suite spawns thousands of processes), so
 * a pid whose process has died may by now name another test's etcd member.
 */
export function killIfStill(pid: number | undefined, mark: string): void {
  if (pid === undefined || pid <= 1) return;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return; // gone
  }
  if (!cmdline.includes(mark)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited meanwhile
  }
}
