/**
 * What the guard reads now and then rather than every poll: the members' flags through their drivers (is
 * auto-compaction on?) and the certificates the configuration names (client side from the inventory, server and peer
 * certificates from the members' flags, on this machine). The same readers `runbook diagnose` uses.
 */
import { inspectCertFile, type CertInfo } from '../diagnose/certs.ts';
import { autoCompactionOff, readMemberFlags } from '../diagnose/collect.ts';
import type { Inventory } from '../inventory/types.ts';

export interface ClusterSettings {
  /** true: every member whose flags could be read compacts by itself; false: one does not; null: none readable. */
  autoCompaction: boolean | null;
  certificates: CertInfo[];
}

export async function readClusterSettings(inventory: Inventory, now = Date.now()): Promise<ClusterSettings> {
  const flags = await Promise.all(inventory.members.map((m) => readMemberFlags(m)));
  const known = flags.flatMap((f) => (f.flags ? [f.flags] : []));
  const autoCompaction = known.length === 0 ? null : !known.some((f) => autoCompactionOff(f.autoCompactionRetention));
  const files = new Map<string, string[]>();
  const want = (path: string | undefined, role: string) => {
    if (path) files.set(path, [...(files.get(path) ?? []), role]);
  };
  want(inventory.tls?.cacert, 'CA (client config)');
  want(inventory.tls?.cert, 'client cert');
  inventory.members.forEach((m, i) => {
    const f = flags[i]?.flags;
    if (!f || m.ssh) return; // a remote member's paths are on its host: `runbook diagnose` reads them over ssh
    want(f.certFile, `${m.name} server cert (--cert-file)`);
    want(f.peerCertFile, `${m.name} peer cert (--peer-cert-file)`);
  });
  const certificates = [...files].map(([path, roles]) => inspectCertFile(path, roles.join(', '), now));
  return { autoCompaction, certificates };
}
