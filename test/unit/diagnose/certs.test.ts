/** Certificate expiry as `runbook diagnose` reports it, on real certificates made by openssl (test/support/tls-certs.ts). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExpiry, inspectCertFile, inspectCertText } from '../../../src/diagnose/certs.ts';
import { makeTestCerts, type TestCerts } from '../../support/tls-certs.ts';

const DAY = 86_400_000;
let dir: string;
let certs: TestCerts;
let notAfter: number;
let notBefore: number;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runbook-certs-'));
  certs = await makeTestCerts(dir);
  const x = new X509Certificate(readFileSync(certs.cert));
  notAfter = Date.parse(x.validTo);
  notBefore = Date.parse(x.validFrom);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inspectCertFile', () => {
  it('a certificate that expires within 30 days is "expiring", with its subject and days left', () => {
    const c = inspectCertFile(certs.cert, 'client cert', notBefore + DAY / 2);
    expect(c).toMatchObject({ status: 'expiring', role: 'client cert', path: certs.cert, count: 1 });
    expect(c.subject).toContain('CN=root');
    expect(describeExpiry(c)).toMatch(/^expires \d{4}-\d{2}-\d{2} \((today|in 1 day)\)$/);
  });

  it('past its notAfter it is expired, and says how long ago', () => {
    const c = inspectCertFile(certs.cert, 'client cert', notAfter + 5 * DAY);
    expect(c.status).toBe('expired');
    expect(describeExpiry(c)).toMatch(/^expired \d{4}-\d{2}-\d{2} \(5 days ago\)$/);
  });

  it('before its notBefore it is not valid yet (a clock problem)', () => {
    const c = inspectCertFile(certs.cert, 'client cert', notBefore - 2 * DAY);
    expect(c.status).toBe('not-yet-valid');
    expect(describeExpiry(c)).toMatch(/clock/);
  });

  it('in a bundle the certificate that expires first decides', () => {
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, readFileSync(certs.cacert, 'utf8') + readFileSync(certs.cert, 'utf8'));
    const expiries = [certs.cacert, certs.cert].map((f) => Date.parse(new X509Certificate(readFileSync(f)).validTo));
    const c = inspectCertFile(bundle, 'CA', notBefore + DAY / 2);
    expect(c.count).toBe(2);
    expect(Date.parse(c.notAfter!)).toBe(Math.min(...expiries));
  });

  it('a missing file or one without a certificate is unreadable, with the reason, never a throw', () => {
    expect(inspectCertFile(join(dir, 'missing.crt'), 'CA')).toMatchObject({ status: 'unreadable', error: 'ENOENT' });
    expect(inspectCertFile(certs.key, 'client key')).toMatchObject({ status: 'unreadable', error: 'no PEM certificate in the file' });
    const broken = inspectCertText('-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n', '/x.crt', 'CA');
    expect(broken.status).toBe('unreadable');
    expect(describeExpiry(broken)).toMatch(/^unreadable: not a valid certificate/);
  });
});
