/** --inventory FILE, or --endpoints with etcdctl-style TLS flags (and ETCDCTL_* variables). */
import type { Command } from 'commander';
import type { Inventory } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';
import type { Io } from './output.ts';

export interface TargetOpts {
  inventory?: string;
  endpoints?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  insecureSkipTlsVerify?: boolean;
}

export function targetOptions(c: Command): Command {
  return c
    .option('-i, --inventory <file>', 'cluster.yaml describing members, drivers, TLS, kubeconfig (env RUNBOOK_INVENTORY)')
    .option('--endpoints <urls>', 'comma-separated client URLs, like etcdctl (API-only steps; env ETCDCTL_ENDPOINTS)')
    .option('--cacert <file>', 'CA bundle to verify the members (env ETCDCTL_CACERT)')
    .option('--cert <file>', 'client certificate (env ETCDCTL_CERT)')
    .option('--key <file>', 'client key (env ETCDCTL_KEY)')
    .option('--insecure-skip-tls-verify', 'do not verify the members\' certificates');
}

export async function resolveInventory(opts: TargetOpts, io: Io): Promise<Inventory> {
  const file = opts.inventory ?? io.env.RUNBOOK_INVENTORY;
  if (file && opts.endpoints) throw new UserError('give either --inventory or --endpoints, not both');
  if (file) return (await import('../inventory/load.ts')).loadInventory(file);
  const endpoints = opts.endpoints ?? io.env.ETCDCTL_ENDPOINTS;
  if (!endpoints) throw new UserError('no cluster given: use --inventory cluster.yaml (see examples/) or --endpoints http://host:2379,...');
  const { inventoryFromEndpoints } = await import('../inventory/endpoints.ts');
  return inventoryFromEndpoints(endpoints, {
    ...(opts.cacert ? { cacert: opts.cacert } : {}),
    ...(opts.cert ? { cert: opts.cert } : {}),
    ...(opts.key ? { key: opts.key } : {}),
    ...(opts.insecureSkipTlsVerify ? { insecureSkipVerify: true } : {}),
  }, io.env);
}
