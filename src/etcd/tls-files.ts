/**
 * The inventory's TLS files as node:tls options, for the calls made beside the gRPC client (the snapshot stream,
 * /metrics). Read on each call (they are small and may be rotated); their contents are never logged or returned
 * in an error.
 */
import { readFileSync } from 'node:fs';
import type { TlsSpec } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';

export function tlsFileOptions(endpoint: string, tls: TlsSpec | undefined): { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: false } {
  if (!endpoint.startsWith('https:') || !tls) return {};
  const read = (what: string, p: string) => {
    try {
      return readFileSync(p);
    } catch (err) {
      throw new UserError(`inventory tls.${what}: cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  return {
    ...(tls.cacert ? { ca: read('cacert', tls.cacert) } : {}),
    ...(tls.cert ? { cert: read('cert', tls.cert) } : {}),
    ...(tls.key ? { key: read('key', tls.key) } : {}),
    // etcdctl --insecure-skip-tls-verify: encrypted, but the member's certificate is not checked.
    ...(tls.insecureSkipVerify ? { rejectUnauthorized: false as const } : {}),
  };
}
