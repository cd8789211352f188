/**
 * Certificate expiry of the PEM files a cluster is configured with (client cert, CA bundle, the members' server and
 * peer certificates). Only certificates are read: key files are never opened.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;

export type CertStatus = 'ok' | 'expiring' | 'expired' | 'not-yet-valid' | 'unreadable';

export interface CertInfo {
  /** What the file is for: "client cert", "CA", "m1 server cert (--cert-file)"… */
  role: string;
  path: string;
  status: CertStatus;
  /** Subject of the certificate that expires first (a bundle may hold several). */
  subject?: string;
  /** ISO time of the earliest notAfter in the file. */
  notAfter?: string;
  /** Whole days until then (negative when expired). */
  daysLeft?: number;
  /** Certificates in the file. */
  count?: number;
  error?: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Expiry of every certificate in a PEM file on this machine; the one that expires first decides. */
export function inspectCertFile(path: string, role: string, now: number = Date.now()): CertInfo {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { role, path, status: 'unreadable', error: (err as NodeJS.ErrnoException).code ?? 'cannot read' };
  }
  return inspectCertText(text, path, role, now);
}

/** The same for a PEM file's text, read wherever the file lives (a member's host over ssh). */
export function inspectCertText(text: string, path: string, role: string, now: number = Date.now()): CertInfo {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) return { role, path, status: 'unreadable', error: 'no PEM certificate in the file' };
  let first: { cert: X509Certificate; notAfter: number; notBefore: number } | undefined;
  let notYetValid = false;
  try {
    for (const pem of blocks) {
      const cert = new X509Certificate(pem);
      const notAfter = Date.parse(cert.validTo);
      const notBefore = Date.parse(cert.validFrom);
      if (notBefore > now) notYetValid = true;
      if (!first || notAfter < first.notAfter) first = { cert, notAfter, notBefore };
    }
  } catch (err) {
    return { role, path, status: 'unreadable', error: `not a valid certificate: ${(err as Error).message}` };
  }
  const f = first!;
  const daysLeft = Math.floor((f.notAfter - now) / DAY_MS);
  const status: CertStatus = f.notAfter <= now ? 'expired' : notYetValid ? 'not-yet-valid' : f.notAfter - now <= EXPIRY_WARNING_DAYS * DAY_MS ? 'expiring' : 'ok';
  return { role, path, status, subject: f.cert.subject.replace(/\n/g, ', '), notAfter: new Date(f.notAfter).toISOString(), daysLeft, count: blocks.length };
}

/** "expired 3 days ago", "expires in 12 days", "expires today". */
export function describeExpiry(c: CertInfo): string {
  if (c.status === 'unreadable') return `unreadable: ${c.error}`;
  const when = c.notAfter!.slice(0, 10);
  const d = c.daysLeft!;
  if (c.status === 'expired') return `expired ${when}${d < -1 ? ` (${-d} days ago)` : ''}`;
  if (c.status === 'not-yet-valid') return `not valid yet (a clock problem?); expires ${when}`;
  return `expires ${when} (${d <= 0 ? 'today' : d === 1 ? 'in 1 day' : `in ${d} days`})`;
}
