/**
 * How the guard starts and resumes its runs: through the executor, exactly as `runbook run` and chat-ops do, so the
 * same lock (one run per cluster, whoever started it), the same journal and the same approval policy apply.
 *
 * Approval policy (as for runs an alert starts, src/chatops/run-manager.ts): `approval: required` steps always wait
 * for a human; a runbook marked `autoApprove: true` and not destructive needs nothing else (nospace-prevention is
 * one); any other runbook, or `approval: required` in the guard's config, waits for a human before every mutating
 * step. Decisions come from `runbook approve RUN STEP` (or chat), recorded in the run's dir.
 */
import fs from 'node:fs';
import { catalog } from '../actions/catalog.ts';
import type { ActionRegistry } from '../actions/types.ts';
import type { JournalRecord } from '../events/types.ts';
import { resumeRun, startRun } from '../execute/executor.ts';
import type { RunHandle } from '../execute/run-types.ts';
import { readJournal } from '../store/journal.ts';
import { files, listRunIds, readRunMeta, runDir } from '../store/run-dir.ts';
import { foldJournal } from '../execute/state.ts';
import type { Inventory } from '../inventory/types.ts';
import type { Runbook } from '../runbook/model.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import type { StateStore } from '../store/types.ts';

export interface LaunchOptions {
  runbook: Runbook;
  runbookText: string;
  params: Record<string, unknown>;
  inventory: Inventory;
  stateDir: string;
  store?: StateStore;
  registry: () => Promise<ActionRegistry>;
  /** 'required': every mutating step waits for a human, whatever the runbook says. */
  approval: 'policy' | 'required';
  /** How the guard signs its runs (run meta requestedBy): "guard (<operator>)". */
  requestedBy: string;
  approvalTimeoutMs?: number;
  signal: AbortSignal;
  onEvent: (rec: JournalRecord) => void;
}

export type Launched = { handle: RunHandle } | { locked: string };

/** Steps that wait for a human besides `approval: required` ones (see the module comment). */
export function guardApprovals(runbook: Runbook, approval: LaunchOptions['approval']): string[] {
  if (approval !== 'required' && runbook.autoApprove && !runbook.destructive) return [];
  return runbook.steps
    .filter((s) => (catalog as Record<string, { mutates?: boolean }>)[s.action]?.mutates !== false && s.approval !== 'required' && s.action !== 'approve')
    .map((s) => s.id);
}

function lockedOr(err: unknown): { locked: string } {
  if (err instanceof UserError && err.exitCode === ExitCode.locked) return { locked: err.message.split('\n')[0]! };
  throw err;
}

export async function launchRun(o: LaunchOptions): Promise<Launched> {
  const extra = guardApprovals(o.runbook, o.approval);
  try {
    const handle = await startRun({
      runbook: o.runbook, runbookText: o.runbookText, inventory: o.inventory, params: o.params, registry: await o.registry(),
      stateDir: o.stateDir, requestedBy: o.requestedBy, signal: o.signal, onEvent: o.onEvent,
      ...(extra.length ? { extraApprovals: extra } : {}),
      ...(o.approvalTimeoutMs ? { approvalTimeoutMs: o.approvalTimeoutMs } : {}),
      ...(o.store ? { store: o.store } : {}),
    });
    return { handle };
  } catch (err) {
    return lockedOr(err);
  }
}

/**
 * The newest run of this guard's runbook on this cluster, started by a guard, that did not end (interrupted, or its
 * process died): a restarted guard resumes it instead of starting another, so nothing is done twice.
 * Runs kept in a management etcd are resumed by `runbook serve`'s takeover, not here.
 */
export function unfinishedRun(o: Pick<LaunchOptions, 'runbook' | 'inventory' | 'stateDir' | 'store'>): string | undefined {
  if (o.store && o.store.kind !== 'file') return undefined;
  for (const runId of listRunIds(o.stateDir).reverse().slice(0, 50)) {
    let meta;
    try {
      meta = readRunMeta(o.stateDir, runId);
    } catch {
      continue;
    }
    if (meta.runbook !== o.runbook.name || !meta.requestedBy?.startsWith('guard') || meta.inventory.name !== o.inventory.name || meta.inventory.source !== o.inventory.source) continue;
    const status = foldJournal(readJournal(files.journal(runDir(o.stateDir, runId))).records).status;
    if (status === 'running' || status === 'awaiting-approval' || status === 'cancelled') return runId;
  }
  return undefined;
}

export async function resumeGuardRun(o: LaunchOptions, runId: string): Promise<Launched> {
  const dir = runDir(o.stateDir, runId);
  // The run's own copy of the runbook: the file may have changed since, and a resume must not repeat or skip steps.
  const text = fs.readFileSync(files.runbookCopy(dir), 'utf8');
  const { loadRunbookText } = await import('../runbook/load.ts');
  const runbook = loadRunbookText(text, files.runbookCopy(dir));
  try {
    // awaited: the lock may be taken asynchronously (a management etcd, a lock keyed by the cluster's identity)
    const handle = await resumeRun({ stateDir: o.stateDir, runId, registry: await o.registry(), runbook, runbookText: text, signal: o.signal, onEvent: o.onEvent, inventory: o.inventory });
    return { handle };
  } catch (err) {
    return lockedOr(err);
  }
}
