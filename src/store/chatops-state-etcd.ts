/**
 * Chat-ops state in the management etcd, shared by every `serve` replica:
 *   /runbook/v1/chatops/claims/<sha256 of key>   {at}, on a lease of the claim's TTL: etcd forgets it when it expires
 *   /runbook/v1/chatops/runs/<runId>             a followed run (FollowedRun JSON)
 * A claim is one txn (create revision == 0): of two replicas that get the same Alertmanager notification, one wins.
 */
import crypto from 'node:crypto';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import type { ChatopsState, Claim, FollowedRun } from './chatops-state-types.ts';
import type { EtcdStore } from './etcd.ts';
import { PREFIX } from './etcd-keys.ts';

const RUN_ID = /^[0-9]{8}-[0-9]{6}-[a-z0-9-]{1,40}-[0-9a-f]{6}$/;
const CLAIMS = `${PREFIX}chatops/claims/`;
const RUNS = `${PREFIX}chatops/runs/`;

function failed(op: string, err: unknown): UserError {
  return new UserError(`the management etcd did not answer (${op}): ${shortGrpcMessage(err)}`, { exitCode: ExitCode.failed });
}

export class EtcdChatopsState implements ChatopsState {
  readonly description: string;
  readonly #store: EtcdStore;

  constructor(store: EtcdStore) {
    this.#store = store;
    this.description = store.description;
  }

  async claim(key: string, ttlMs: number, now = Date.now()): Promise<Claim> {
    const client = this.#store.client;
    const k = `${CLAIMS}${crypto.createHash('sha256').update(key).digest('hex')}`;
    const lease = client.lease(Math.max(1, Math.ceil(ttlMs / 1000)), { autoKeepAlive: false });
    try {
      const leaseId = await lease.grant();
      const r = await client.if(k, 'Create', '==', 0)
        .then(client.put(k).value(JSON.stringify({ at: now })).lease(leaseId))
        .else(client.get(k))
        .commit();
      if (r.succeeded) return { first: true, at: now };
      await lease.revoke().catch(() => {});
      const kv = r.responses[0]?.response_range?.kvs[0];
      let at = now;
      try { at = (JSON.parse(kv?.value.toString() ?? '{}') as { at?: number }).at ?? now; } catch { /* keep now */ }
      return { first: false, at };
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw failed('claim', err);
    } finally {
      lease.release(); // the lease runs out by itself: that is the claim's expiry
    }
  }

  async follow(run: FollowedRun): Promise<void> {
    await this.#store.client.put(this.#key(run.runId)).value(JSON.stringify(run)).exec().catch((err: unknown) => { throw failed('follow run', err); });
  }

  async unfollow(runId: string): Promise<void> {
    await this.#store.client.delete().key(this.#key(runId)).exec().catch((err: unknown) => { throw failed('unfollow run', err); });
  }

  async followed(): Promise<FollowedRun[]> {
    const kvs = await this.#store.client.getAll().prefix(RUNS).strings().catch((err: unknown) => { throw failed('list followed runs', err); });
    const out: FollowedRun[] = [];
    for (const k of Object.keys(kvs).sort()) {
      try { out.push(JSON.parse(kvs[k]!) as FollowedRun); } catch { /* not ours to read */ }
    }
    return out;
  }

  #key(runId: string): string {
    if (!RUN_ID.test(runId)) throw new UserError(`not a run id: ${JSON.stringify(runId)}`);
    return `${RUNS}${runId}`;
  }
}
