/**
 * etcd.restore-member: restore one member (forEach item) from the chosen snapshot on its host, into
 * `<dataDir>.part`, then rename. Refuses while the member runs or its data dir exists (move it aside first).
 * The probe recognises a data dir this run already restored by the marker inside it (same token and sha256), so
 * a resumed run never restores twice, and never over a member that has been started since.
 */
import { driverFor } from '../drivers/index.ts';
import type { MemberDriver } from '../drivers/types.ts';
import { hostFor } from '../hosts/index.ts';
import { dataDirOf, initialClusterOf, restoreMember, restoredAlready, tokenFromRunId, type RestoreMemberResult } from '../snapshot/restore.ts';
import { BUMP_REVISION } from '../snapshot/etcd-tools.ts';
import { StepError } from '../util/errors.ts';
import { itemMember } from './etcd-common.ts';
import { acceptsConnections } from './members-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type RestoreInput = ActionInput<'etcd.restore-member'>;

export type RestoreOutput = Omit<RestoreMemberResult, 'durationMs' | 'stagedSnapshot'> & { durationMs: number; stagedSnapshot?: string; restoredAt?: string };

function tokenOf(ctx: ActionContext, input: RestoreInput): string {
  return input.clusterToken ?? tokenFromRunId(ctx.runId);
}

function driverOf(ctx: ActionContext): MemberDriver | undefined {
  const m = itemMember(ctx, 'etcd.restore-member');
  try {
    return driverFor(m);
  } catch (err) {
    if (err instanceof StepError && err.kind === 'invalid') return undefined; // driver: none: the port check still guards
    throw err;
  }
}

export const restoreMemberAction: ImplementedAction = implement<'etcd.restore-member', RestoreOutput>('etcd.restore-member', {
  async probe(ctx, input) {
    const m = itemMember(ctx, 'etcd.restore-member');
    const host = hostFor(m);
    const token = tokenOf(ctx, input);
    const r = await restoredAlready({ member: m, host, token, ...(input.sha256 ? { sha256: input.sha256 } : {}) });
    if (!r.done) return { done: false, detail: r.detail };
    return {
      done: true,
      detail: `${dataDirOf(m)} holds this run's restore (token ${token})`,
      output: {
        member: m.name,
        host: host.label,
        dataDir: dataDirOf(m),
        snapshot: r.marker.snapshot,
        sha256: r.marker.sha256,
        token,
        initialCluster: r.marker.initialCluster,
        tool: r.marker.tool,
        revisions: r.marker.revisions ?? (r.marker.tool.startsWith('etcdutl') ? 'forward' : 'rewind'),
        restoredAt: r.marker.restoredAt,
        durationMs: 0,
      },
    };
  },

  async plan(ctx, input) {
    const m = itemMember(ctx, 'etcd.restore-member');
    const dataDir = dataDirOf(m);
    const host = hostFor(m);
    return [
      `refuse if ${m.name} runs or ${dataDir} exists`,
      host.remote ? `copy ${input.snapshot} to ${host.label} and check its sha256 there` : `check the sha256 of ${input.snapshot}`,
      `restore it into ${dataDir}.part as --name ${m.name} --initial-advertise-peer-urls ${m.peerURL} --initial-cluster ${initialClusterOf(ctx.inventory)} --initial-cluster-token ${tokenOf(ctx, input)} with the tool chosen on its host for etcd ${input.etcdVersion ?? "(the cluster's version)"}: --bump-revision ${input.bumpRevision ?? BUMP_REVISION} --mark-compacted when it has them, ${input.allowRevisionRewind ? 'else WITHOUT (allowRevisionRewind: revisions go back)' : 'else refuse'}`,
      `rename to ${dataDir}`,
    ].join('; ');
  },

  async run(ctx, input) {
    const m = itemMember(ctx, 'etcd.restore-member');
    const driver = driverOf(ctx);
    const r = await restoreMember({
      member: m,
      inventory: ctx.inventory,
      host: hostFor(m),
      snapshot: input.snapshot,
      ...(input.sha256 ? { sha256: input.sha256 } : {}),
      token: tokenOf(ctx, input),
      runId: ctx.runId,
      ...(input.etcdVersion ? { clusterVersion: input.etcdVersion } : {}),
      ...(input.allowRevisionRewind ? { allowRevisionRewind: true } : {}),
      ...(input.bumpRevision ? { bumpRevision: input.bumpRevision } : {}),
      ...(driver ? { driver } : {}),
      listening: (url) => acceptsConnections(url),
      signal: ctx.signal,
      log: (msg) => ctx.log(msg),
    });
    ctx.log(`restored ${m.name} into ${r.dataDir} on ${r.host} (${r.tool}, ${r.durationMs} ms)`);
    return r;
  },

  async verify(ctx, input) {
    const m = itemMember(ctx, 'etcd.restore-member');
    const r = await restoredAlready({ member: m, host: hostFor(m), token: tokenOf(ctx, input), ...(input.sha256 ? { sha256: input.sha256 } : {}) });
    if (!r.done) throw new StepError('failed', `${m.name}: after the restore, ${r.detail}`, { member: m.name });
  },
});
