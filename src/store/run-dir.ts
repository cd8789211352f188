/**
 * Where runs live on disk: <stateDir>/runs/<runId>/{run.json, runbook.yaml, journal.jsonl, snapshot.json, approvals/}.
 * The state dir defaults to $RUNBOOK_STATE_DIR, else $XDG_STATE_HOME/runbook, else ~/.local/state/runbook.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Inventory } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';
import { writeFileAtomic } from './journal.ts';
import { mkdirp } from '../util/mkdirp.ts';
import { checkRunId, isRunId } from './run-id.ts';

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNBOOK_STATE_DIR) return path.resolve(env.RUNBOOK_STATE_DIR);
  const base = env.XDG_STATE_HOME ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'runbook');
}

export interface RunMeta {
  runId: string;
  runbook: string;
  runbookFile: string;
  hash: string;
  params: Record<string, unknown>;
  inventory: Inventory;
  createdAt: string;
  requestedBy?: string;
  approvalTimeoutMs?: number;
  extraApprovals?: string[];
}

export function runDir(stateDir: string, runId: string): string {
  return path.join(stateDir, 'runs', checkRunId(runId));
}

export const files = {
  meta: (dir: string) => path.join(dir, 'run.json'),
  runbookCopy: (dir: string) => path.join(dir, 'runbook.yaml'),
  journal: (dir: string) => path.join(dir, 'journal.jsonl'),
  snapshot: (dir: string) => path.join(dir, 'snapshot.json'),
  approvals: (dir: string) => path.join(dir, 'approvals'),
};

/** The inventory as stored with a run: everything but in-memory secrets (passwords are only ever referenced). */
export function storableInventory(inv: Inventory): Inventory {
  const copy = structuredClone(inv) as Inventory & { auth?: Record<string, unknown> };
  if (copy.auth) {
    for (const k of Object.keys(copy.auth)) if (!['username', 'passwordEnv', 'passwordFile'].includes(k)) delete copy.auth[k];
  }
  return copy;
}

export function createRunDir(stateDir: string, meta: RunMeta, runbookText: string): string {
  const dir = runDir(stateDir, meta.runId);
  mkdirp(files.approvals(dir));
  writeFileAtomic(files.meta(dir), `${JSON.stringify({ ...meta, inventory: storableInventory(meta.inventory) }, null, 2)}\n`);
  writeFileAtomic(files.runbookCopy(dir), runbookText);
  return dir;
}

export function readRunMeta(stateDir: string, runId: string): RunMeta {
  const dir = runDir(stateDir, runId);
  try {
    return JSON.parse(fs.readFileSync(files.meta(dir), 'utf8')) as RunMeta;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`no run ${runId} in ${stateDir} (see \`runbook history\`)`);
    throw new UserError(`cannot read ${files.meta(dir)}: ${(err as Error).message}`);
  }
}

export function listRunIds(stateDir: string): string[] {
  try {
    return fs.readdirSync(path.join(stateDir, 'runs')).filter(isRunId).sort();
  } catch {
    return [];
  }
}

export interface ApprovalDecision {
  decision: 'granted' | 'denied';
  by: string;
  via: string;
  at: string;
  reason?: string;
}

function approvalFile(dir: string, stepId: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(stepId)) throw new UserError(`not a step id: ${JSON.stringify(stepId)}`);
  return path.join(files.approvals(dir), `${stepId}.json`);
}

/** Record a decision for a step. The first decision wins (O_EXCL); returns the decision in force. */
export function decideApproval(dir: string, stepId: string, d: Omit<ApprovalDecision, 'at'>): { decision: ApprovalDecision; first: boolean } {
  const file = approvalFile(dir, stepId);
  mkdirp(path.dirname(file));
  const rec: ApprovalDecision = { ...d, at: new Date().toISOString() };
  try {
    fs.writeFileSync(file, `${JSON.stringify(rec)}\n`, { flag: 'wx' });
    return { decision: rec, first: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const existing = readApproval(dir, stepId);
    if (existing) return { decision: existing, first: false };
    throw err;
  }
}

export function readApproval(dir: string, stepId: string): ApprovalDecision | undefined {
  try {
    return JSON.parse(fs.readFileSync(approvalFile(dir, stepId), 'utf8')) as ApprovalDecision;
  } catch {
    return undefined;
  }
}
