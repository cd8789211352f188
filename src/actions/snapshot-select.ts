/**
 * etcd.snapshot-select: the newest snapshot that passes sha256 trailer, manifest, status and a trial restore (on a
 * throwaway copy); corrupt or truncated ones are reported and skipped. Read-only; the output (path, sha256,
 * revision, rejected) is journaled, so a resumed run restores from the same file. The throwaway copies go under
 * $RUNBOOK_TMPDIR, else `<state dir>/tmp` (not /tmp, often a small tmpfs): room for one snapshot is needed there.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { candidates, selectSnapshot, type SelectedSnapshot } from '../snapshot/select.ts';
import type { ActionContext, ActionImpl } from './types.ts';

export interface SnapshotSelectInput {
  dirs?: string[];
  trialRestore: boolean;
  maxCandidates: number;
}

function dirsOf(ctx: ActionContext, input: SnapshotSelectInput): string[] {
  return [...new Set([...(input.dirs ?? []), ...(ctx.inventory.snapshots?.dirs ?? [])])];
}

export const snapshotSelectAction: ActionImpl<SnapshotSelectInput, SelectedSnapshot> = {
  async plan(ctx, input) {
    const dirs = dirsOf(ctx, input);
    const found = candidates(dirs);
    return `check up to ${input.maxCandidates} of ${found.length} snapshot(s) in ${dirs.join(', ') || '(none)'}, newest first${found[0] ? ` (${found[0].path})` : ''}, on copies: sha256 trailer, manifest, status${input.trialRestore ? ', trial restore' : ''}`;
  },

  async run(ctx, input) {
    const tmpRoot = process.env.RUNBOOK_TMPDIR ?? join(ctx.stateDir, 'tmp');
    mkdirSync(tmpRoot, { recursive: true });
    const chosen = await selectSnapshot({
      tmpRoot,
      dirs: dirsOf(ctx, input),
      cluster: ctx.inventory.name,
      trialRestore: input.trialRestore,
      maxCandidates: input.maxCandidates,
      ...(ctx.inventory.etcdBinDir ? { etcdBinDir: ctx.inventory.etcdBinDir } : {}),
      signal: ctx.signal,
      log: (m) => ctx.log(m),
    });
    return chosen;
  },
};
