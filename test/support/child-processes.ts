/**
 * Shared by the tests that drive long-running CLI children (the backup stream) against a throwaway cluster.
 */
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
