/**
 * Member ids and URLs. etcd's 64-bit ids reach us as decimal strings (the client maps uint64 to string);
 * people and etcdctl use unpadded lowercase hex (`etcdctl member list -w simple`). Everything user-facing here
 * is hex; the wire format is decimal.
 */

/** Decimal (wire) or bigint id → unpadded lowercase hex, like etcdctl prints it. "0" stays "0". */
export function toHexId(id: string | number | bigint): string {
  const n = typeof id === 'bigint' ? id : BigInt(typeof id === 'number' ? Math.trunc(id) : id.trim() || '0');
  if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new RangeError(`not a uint64 member id: ${String(id)}`);
  return n.toString(16);
}

/** Hex id (as etcdctl prints it: unpadded, space-padded or 0x-prefixed) → decimal string for the wire. */
export function hexIdToDecimal(hex: string): string {
  const text = hex.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,16}$/.test(text)) throw new RangeError(`not a hex member id: ${JSON.stringify(hex)}`);
  return BigInt(`0x${text}`).toString(10);
}

/** True when the text looks like a hex member id (1–16 hex digits, at least one of them a letter or 16 long). */
export function looksLikeHexId(text: string): boolean {
  const t = text.trim().toLowerCase().replace(/^0x/, '');
  return /^[0-9a-f]{1,16}$/.test(t) && (/[a-f]/.test(t) || t.length === 16);
}

/** The zero id means "none" (no leader known, no member). */
export function isZeroId(id: string): boolean {
  return /^0*$/.test(id.replace(/^0x/i, ''));
}

/** URLs compared the way etcd does in practice: scheme + lowercase host + port, no trailing slash. */
export function normalizeURL(url: string): string {
  try {
    const u = new URL(url.trim());
    const port = u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '');
    return `${u.protocol}//${u.hostname.toLowerCase()}${port ? `:${port}` : ''}`;
  } catch {
    return url.trim().replace(/\/+$/, '').toLowerCase();
  }
}

/** Host (without IPv6 brackets) and TCP port of an http(s) URL, the port defaulted by scheme; undefined if unparsable. */
export function urlHostPort(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
  } catch {
    return undefined;
  }
}

export function sameURL(a: string, b: string): boolean {
  return normalizeURL(a) === normalizeURL(b);
}
