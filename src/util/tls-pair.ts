/**
 * A certificate and key that belong together, checked the way the TLS server will load them: a key of another
 * certificate is otherwise found only when `serve` starts listening (after `serve --check` said ok).
 */
import fs from 'node:fs';
import tls from 'node:tls';

/** Why the pair cannot serve TLS (unreadable, not PEM, key of another certificate), or undefined when it can. */
export function tlsPairProblem(certFile: string, keyFile: string): string | undefined {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = fs.readFileSync(certFile);
  } catch (err) {
    return `cannot read the certificate ${certFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
  try {
    key = fs.readFileSync(keyFile);
  } catch (err) {
    return `cannot read the key ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
  try {
    tls.createSecureContext({ cert, key });
    return undefined;
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    // Never echo file contents: only what OpenSSL says about them.
    if (/key values mismatch/i.test(text)) return `the key ${keyFile} does not belong to the certificate ${certFile}: give the key of that certificate`;
    return `the certificate ${certFile} and key ${keyFile} cannot be used for TLS (${text.replace(/^error:[0-9A-F]+:/i, '')})`;
  }
}
