/**
 * etcd.snapshot-save: stream a snapshot from one healthy member into the snapshot dir (constant memory), verify it,
 * record it in a manifest, then apply retention (expired snapshots are moved into `<dir>/expired/`, never deleted).
 * Not idempotent (every run makes a new file). Its probe finds the snapshot an interrupted attempt of this step
 * finished: after a kill between the rename and the checkpoint, a resume must not stop for a human (nor take a
 * second snapshot) when the file and its manifest are complete and the file's bytes match the manifest.
 */
import { clusterView, unreadable, isLearner } from '../etcd/view.ts';
import { oldestOf } from '../etcd/versions.ts';
import { applyRetention, planRetention, type RetentionResult } from '../snapshot/retention.ts';
import { checkSnapshotFile } from '../snapshot/file-check.ts';
import { belongsTo, listSnapshots } from '../snapshot/list.ts';
import { saveSnapshot, snapshotFileName, type SaveResult } from '../snapshot/save.ts';
import { StepError } from '../util/errors.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import { callOpts, etcdPool } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type SnapshotSaveInput = ActionInput<'etcd.snapshot-save'>;

export interface SnapshotSaveOutput extends SaveResult {
  member: string;
  durationMs: number;
  retention: RetentionResult;
}

export function snapshotDir(ctx: ActionContext, input: SnapshotSaveInput): string {
  const dir = input.dir ?? ctx.inventory.snapshots?.dirs[0];
  if (!dir) {
    throw new StepError('invalid', `etcd.snapshot-save: no snapshot dir: inventory ${ctx.inventory.name} has no snapshots.dirs and the step gives no dir`, {
      hint: 'add snapshots: { dirs: [/var/backups/etcd] } to the inventory, or with: { dir: ... }',
    });
  }
  return dir;
}

/** The member to stream from: an answering voter that knows the leader (a follower when there is one: the leader is busiest). */
export async function sourceMember(ctx: ActionContext, avoid?: string): Promise<{ name: string; endpoint: string; etcdVersion?: string }> {
  const view = await clusterView(etcdPool(ctx), callOpts(ctx));
  const ok = view.members.filter((p) => p.ok && !isLearner(p) && p.status.leaderId !== '0' && p.name !== avoid);
  const pick = ok.find((p) => p.ok && p.status.memberId !== view.leaderId) ?? ok[0];
  // Members that refuse us (credentials, TLS) are not down: say what to fix, not "no healthy member".
  const locked = unreadable(view);
  if (!pick && locked.length > 0) {
    throw new StepError('invalid', `cannot read ${locked.map((p) => `${p.name}: ${p.error}`).join('; ')}`, {
      ...(locked.length === 1 ? { member: locked[0]!.name } : {}),
      ...(locked[0]!.hint ? { hint: locked[0]!.hint } : {}),
    });
  }
  if (!pick) {
    const why = view.members.map((p) => (p.ok ? `${p.name}: knows no leader` : `${p.name}: ${p.error}`)).join('; ');
    throw new StepError('transient', `no healthy member to take a snapshot from (${why})`, { hint: 'a snapshot needs a member that is part of a quorum' });
  }
  // The cluster runs at its oldest member's version (mid-upgrade): what a restore of this snapshot must match.
  const etcdVersion = oldestOf(view.members.map((p) => (p.ok ? p.status.version : undefined)))?.text;
  return { name: pick.name, endpoint: pick.endpoint, ...(etcdVersion ? { etcdVersion } : {}) };
}

export function policyOf(input: SnapshotSaveInput) {
  return { ...(input.keepLast !== undefined ? { keepLast: input.keepLast } : {}), ...(input.maxAge !== undefined ? { maxAgeMs: input.maxAge } : {}) };
}

/**
 * A snapshot of this cluster taken since the step first started, complete (final name, manifest) and intact
 * (size and sha256 as the manifest says, etcd's sha256 trailer right, verified when verification was asked for).
 * Before any attempt started, firstStartedAt is now: nothing qualifies.
 */
async function finishedByEarlierAttempt(ctx: ActionContext, input: SnapshotSaveInput): Promise<{ output: SnapshotSaveOutput; detail: string } | { detail: string }> {
  const dir = snapshotDir(ctx, input);
  const since = listSnapshots(dir).filter((e) => belongsTo(e, ctx.inventory.name) && e.manifest && e.createdAt >= ctx.firstStartedAt);
  const reasons: string[] = [];
  for (const e of since) {
    const m = e.manifest!;
    if (input.verify && !m.verified) {
      reasons.push(`${e.name}: not verified`);
      continue;
    }
    const check = await checkSnapshotFile(e.path, ctx.signal);
    if (check.size !== m.size || check.sha256 !== m.sha256 || !check.trailerOk) {
      reasons.push(`${e.name}: ${check.problem ?? 'does not match its manifest'}`);
      continue;
    }
    const member = m.endpoint ? etcdPool(ctx).nameOf(m.endpoint) : '?';
    return {
      output: { ...m, path: e.path, member, durationMs: 0, retention: { kept: [], expired: [] } },
      detail: `${e.path} (revision ${m.revision}, sha256 ${m.sha256.slice(0, 12)}…) was saved by an earlier attempt and matches its manifest`,
    };
  }
  return { detail: since.length ? `no intact snapshot since the step started (${reasons.join('; ')})` : 'no snapshot saved since the step started' };
}

export const snapshotSaveAction: ImplementedAction = implement('etcd.snapshot-save', {
  async probe(ctx, input) {
    const found = await finishedByEarlierAttempt(ctx, input);
    return 'output' in found ? { done: true, output: found.output, detail: found.detail } : { done: false, detail: found.detail };
  },

  async plan(ctx, input) {
    const dir = snapshotDir(ctx, input);
    // A plan often runs before the cluster is back (power-loss-restore): name the member when one answers now.
    const from = await sourceMember(ctx).then((m) => m.name, () => 'a healthy member (none answers right now)');
    const now = new Date();
    const file = snapshotFileName(dir, ctx.inventory.name, now);
    const mine = listSnapshots(dir).filter((e) => belongsTo(e, ctx.inventory.name));
    const policy = policyOf(input);
    const retention = policy.keepLast !== undefined || policy.maxAgeMs !== undefined
      ? planRetention([...mine, { path: file, createdAt: now.getTime() }], policy, now.getTime(), [file])
      : undefined;
    return [
      `stream a snapshot from ${from} into ${file} (.part first, then renamed)`,
      input.verify ? 'verify it: sha256 trailer and snapshot status' : 'no verification (verify: false)',
      `write ${file}.json (sha256, revision, size)`,
      retention
        ? retention.expire.length
          ? `retention: move ${retention.expire.map((e) => e.path).join(', ')} (and manifests) into ${dir}/expired/ (nothing is deleted)`
          : `retention: nothing expires (${retention.keep.length} kept)`
        : 'no retention policy',
    ].join('; ');
  },

  async run(ctx, input) {
    const t0 = Date.now();
    const dir = snapshotDir(ctx, input);
    const src = await sourceMember(ctx, input.avoidMember);
    const saved = await saveSnapshot({
      pool: etcdPool(ctx),
      inventory: ctx.inventory,
      endpoint: src.endpoint,
      dir,
      verify: input.verify,
      ...(src.etcdVersion ? { etcdVersion: src.etcdVersion } : {}),
      signal: ctx.signal,
      log: (m) => ctx.log(m),
    });
    const retention = applyRetention(dir, ctx.inventory.name, policyOf(input), { protect: [saved.path] });
    for (const e of retention.expired) ctx.log(`retention: moved ${e.from} → ${e.to}`);
    const durationMs = Date.now() - t0;
    ctx.log(`snapshot ${saved.path}: revision ${saved.revision}, ${formatBytes(saved.size)}, sha256 ${saved.sha256.slice(0, 12)}…, ${formatDuration(durationMs)}`);
    return { ...saved, member: src.name, durationMs, retention };
  },
});
