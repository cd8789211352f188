/**
 * etcd.snapshot-select: the newest snapshot that passes sha256 trailer, manifest, status and a trial restore (on a
 * throwaway copy); corrupt or truncated ones are reported and skipped. Read-only; the output (path, sha256,
 * revision, rejected) is journaled, so a resumed run restores from the same file. The throwaway copies go under
 * $RUNBOOK_TMPDIR, else `<state dir>/tmp` (not /tmp, often a small tmpfs): room for one snapshot is needed there.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { membersEtcdVersion, planRestore, type RestorePlan } from '../snapshot/restore-plan.ts';
import { candidates, selectSnapshot, type SelectedSnapshot } from '../snapshot/select.ts';
import { StepError } from '../util/errors.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type SnapshotSelectInput = ActionInput<'etcd.snapshot-select'>;

export type SnapshotSelectOutput = SelectedSnapshot & { restore: RestorePlan };

function dirsOf(ctx: ActionContext, input: SnapshotSelectInput): string[] {
  return [...new Set([...(input.dirs ?? []), ...(ctx.inventory.snapshots?.dirs ?? [])])];
}

/** The restore tools of every member, before anything is touched; a refusal here stops the run with nothing changed. */
function restorePlanOf(ctx: ActionContext, input: SnapshotSelectInput, manifestVersion: string | undefined): Promise<RestorePlan> {
  return planRestore(ctx.inventory, { manifestVersion, ...(input.allowRevisionRewind ? { allowRevisionRewind: true } : {}), signal: ctx.signal });
}

function describePlan(p: RestorePlan): string {
  const tools = [...new Set(p.tools.map((t) => t.tool))].join(', ');
  return `etcd ${p.etcdVersion ?? '(version unknown)'} (from the ${p.versionSource}); restore with ${tools}: ${p.consequence}`;
}

export const snapshotSelectAction: ImplementedAction<SnapshotSelectOutput> = implement('etcd.snapshot-select', {
  async plan(ctx, input) {
    const dirs = dirsOf(ctx, input);
    const found = candidates(dirs);
    const newest = found[0]?.manifest?.etcdVersion;
    // The same read-only probes the run makes: the plan says whether revisions move forward or the run refuses.
    const restore = await restorePlanOf(ctx, input, newest).then(describePlan, (err: unknown) => {
      if (err instanceof StepError && err.kind === 'precondition') return `REFUSES before touching anything: ${err.message} (${err.hint ?? ''})`;
      throw err;
    });
    return `check up to ${input.maxCandidates} of ${found.length} snapshot(s) in ${dirs.join(', ') || '(none)'}, newest first${found[0] ? ` (${found[0].path})` : ''}, on copies: sha256 trailer, manifest, status${input.trialRestore ? ', trial restore' : ''}; ${restore}`;
  },

  async run(ctx, input) {
    const tmpRoot = process.env.RUNBOOK_TMPDIR ?? join(ctx.stateDir, 'tmp');
    mkdirSync(tmpRoot, { recursive: true });
    const clusterVersion = await membersEtcdVersion(ctx.inventory, ctx.signal);
    // The restore tools of every member's host are probed while the candidates are checked, for the version the
    // newest candidate's manifest names; asked again below only when the chosen one names another.
    const newestVersion = candidates(dirsOf(ctx, input))[0]?.manifest?.etcdVersion;
    const early = restorePlanOf(ctx, input, newestVersion);
    early.catch(() => {});
    const chosen = await selectSnapshot({
      tmpRoot,
      dirs: dirsOf(ctx, input),
      cluster: ctx.inventory.name,
      trialRestore: input.trialRestore,
      maxCandidates: input.maxCandidates,
      ...(ctx.inventory.etcdBinDir ? { etcdBinDir: ctx.inventory.etcdBinDir } : {}),
      ...(clusterVersion ? { clusterVersion } : {}),
      signal: ctx.signal,
      log: (m) => ctx.log(m),
    });
    const restore = await (chosen.etcdVersion === newestVersion ? early : restorePlanOf(ctx, input, chosen.etcdVersion));
    ctx.log(describePlan(restore));
    return { ...chosen, restore };
  },
});
