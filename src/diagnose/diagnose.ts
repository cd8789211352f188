/**
 * `runbook diagnose`: read the cluster (never write), report per member and for the cluster, flag what is critical,
 * and name the runbook that fits with the exact command.
 *
 * @example
 * const d = await diagnose(loadInventory('cluster.yaml'));
 * d.status;                        // 'healthy' | 'warning' | 'critical'
 * d.recommendations[0]?.command;   // 'runbook run nospace-recovery -i cluster.yaml'
 */
import type { Inventory } from '../inventory/types.ts';
import { assess } from './assess.ts';
import { collectFacts } from './collect.ts';
import type { Diagnosis } from './types.ts';

export interface DiagnoseOptions {
  /** Per-call deadline (default: the inventory's requestTimeoutMs, else 5 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** "Now" for certificate expiry (tests). */
  now?: number;
}

/** How the cluster is named on a command line: `-i FILE`, or `--endpoints` with the TLS flags. */
export function targetArgs(inv: Inventory): string[] {
  if (inv.source !== '--endpoints') return ['-i', inv.source];
  const args = ['--endpoints', inv.members.map((m) => m.clientURL).join(',')];
  if (inv.tls?.cacert) args.push('--cacert', inv.tls.cacert);
  if (inv.tls?.cert) args.push('--cert', inv.tls.cert);
  if (inv.tls?.key) args.push('--key', inv.tls.key);
  if (inv.tls?.insecureSkipVerify) args.push('--insecure-skip-tls-verify');
  return args;
}

export async function diagnose(inventory: Inventory, opts: DiagnoseOptions = {}): Promise<Diagnosis> {
  const facts = await collectFacts(inventory, opts);
  const verdict = assess(facts, {
    target: targetArgs(inventory),
    hasDrivers: inventory.members.every((m) => m.driver.type !== 'none'),
    kubernetes: inventory.kubernetes !== undefined || inventory.members.some((m) => m.driver.type === 'static-pod'),
  });
  // The continuous backup's lag, when a stream writes to one of the inventory's snapshot dirs.
  const backup = (await import('../backup/diagnose-findings.ts')).backupFindings(inventory);
  if (backup.length) {
    verdict.findings = [...verdict.findings, ...backup];
    if (verdict.status === 'healthy' && backup.some((f) => f.severity === 'warning')) verdict.status = 'warning';
  }
  return { ...facts, ...verdict };
}

export { formatDiagnosis } from './format.ts';
export type { Diagnosis, Finding, MemberFacts, Recommendation } from './types.ts';
