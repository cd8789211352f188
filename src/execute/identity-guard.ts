/**
 * The running run's side of identity pinning (src/execute/identity.ts): before every mutating step the live cluster
 * must still be the one the run is pinned to, and a run pinned while nothing answered takes the first answer.
 */
import type { StepItem } from '../actions/types.ts';
import type { ClusterIdentity } from '../events/cluster-identity.ts';
import type { Step } from '../runbook/model.ts';
import { StepError } from '../util/errors.ts';
import { compareIdentity, pinnedIdentity } from './identity.ts';
import type { RunContext } from './run-context.ts';

/** The live cluster against the pinned identity, before a mutating step: a mismatch stops the run, nothing touched. */
export async function checkIdentity(rc: RunContext, s: Step, item: StepItem | undefined): Promise<void> {
  const { registry, x, abort, emit } = rc;
  if (!registry.clusterIdentity) return;
  const pinned = pinnedIdentity(rc.journal.records);
  const live = await registry.clusterIdentity(x.inventory, abort.signal);
  if (abort.signal.aborted) throw new StepError('cancelled', 'run interrupted');
  if (!pinned) {
    emit({ type: 'cluster.identity', reason: 'resume', identity: live });
    return;
  }
  const verdict = compareIdentity(pinned, live);
  if (!verdict.same) {
    throw new StepError('precondition', `${item ? `${s.id}[${item.key}]` : s.id} not run: ${verdict.why}`, {
      hint: `the inventory (${x.inventory.source}) reaches another cluster than this run's: check it, then ${rc.resumeCommand} --inventory <the run's cluster>`,
    });
  }
  if (verdict.repin) emit({ type: 'cluster.identity', reason: verdict.repin, identity: live, previousClusterId: pinned.previousClusterId ?? pinned.clusterId });
}

/** While no member has answered yet (a start on a cluster that was down, or after a restore): pin the first answer. */
export async function repinIfAnswering(rc: RunContext): Promise<void> {
  const { registry, x, abort, emit } = rc;
  if (!registry.clusterIdentity || abort.signal.aborted) return;
  const pinned = pinnedIdentity(rc.journal.records);
  if (!pinned || pinned.clusterId !== null) return;
  let live: ClusterIdentity;
  try {
    live = await registry.clusterIdentity(x.inventory, abort.signal);
  } catch {
    return; // the next mutating step reads again, and refuses on a mismatch
  }
  if (!live.clusterId) return;
  const verdict = compareIdentity(pinned, live);
  if (verdict.same && verdict.repin) emit({ type: 'cluster.identity', reason: verdict.repin, identity: live, previousClusterId: pinned.previousClusterId ?? pinned.clusterId });
}
