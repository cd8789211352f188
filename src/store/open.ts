/** Pick the store from the command line: `--store etcd://…` (with TLS options) or the local state dir. */
import { UserError } from '../util/errors.ts';
import { FileStore } from './file.ts';
import type { StateStore } from './types.ts';

export interface StoreFlags {
  store?: string;
  storeCacert?: string;
  storeCert?: string;
  storeKey?: string;
}

/**
 * @example
 *   const store = await openStore({ store: 'etcd://127.0.0.1:2379' }, process.env, stateDir);
 *   try { console.log(await store.listRunIds()); } finally { await store.close(); }
 */
export async function openStore(flags: StoreFlags, env: NodeJS.ProcessEnv, stateDir: string): Promise<StateStore> {
  const url = flags.store ?? env.RUNBOOK_STORE;
  if (!url || url === 'file' || url.startsWith('file:')) {
    if (flags.storeCacert || flags.storeCert || flags.storeKey) throw new UserError('--store-cacert/--store-cert/--store-key need --store etcd://…');
    return new FileStore(stateDir);
  }
  if (!/^etcds?:\/\//.test(url)) throw new UserError(`--store: expected etcd://host:port[,host:port…], got ${JSON.stringify(url)}`);
  const ttlText = env.RUNBOOK_STORE_LEASE_TTL;
  const ttl = ttlText === undefined || ttlText === '' ? undefined : Number(ttlText);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1)) throw new UserError(`RUNBOOK_STORE_LEASE_TTL: expected whole seconds ≥ 1, got ${JSON.stringify(ttlText)}`);
  const { EtcdStore } = await import('./etcd.ts');
  return new EtcdStore({
    url,
    ...(flags.storeCacert ? { cacert: flags.storeCacert } : {}),
    ...(flags.storeCert ? { cert: flags.storeCert } : {}),
    ...(flags.storeKey ? { key: flags.storeKey } : {}),
    ...(ttl !== undefined ? { leaseTtlSeconds: ttl } : {}),
  });
}
