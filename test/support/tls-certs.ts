/** A throwaway CA plus server and client certificates for loopback etcd (openssl, argv only). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

export interface TestCerts {
  cacert: string;
  serverCert: string;
  serverKey: string;
  /** Client certificate and key (what etcdctl's --cert/--key take). */
  cert: string;
  key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(dir: string, args: string[]): Promise<void> {
  const r = await execa('openssl', args, { cwd: dir, reject: false, timeout: 20_000, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
}

async function issue(dir: string, name: string, cn: string, ext: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  await openssl(dir, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await openssl(dir, [
    'x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-out', cert, '-extfile', extFile,
  ]);
  return { cert, key };
}

/** Generates ca.crt, server.{crt,key} (SANs IP:127.0.0.1, DNS:localhost) and client.{crt,key} in dir. */
export async function makeTestCerts(dir: string): Promise<TestCerts> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=runbook-test-ca']);
  const [server, client] = await Promise.all([
    issue(dir, 'server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n'),
    issue(dir, 'client', 'root', 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n'),
  ]);
  return { cacert: join(dir, 'ca.crt'), serverCert: server.cert, serverKey: server.key, cert: client.cert, key: client.key };
}
