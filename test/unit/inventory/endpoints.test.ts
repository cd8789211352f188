import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { authPassword, inventoryFromEndpoints } from '../../../src/inventory/endpoints.ts';
import { UserError } from '../../../src/util/errors.ts';

describe('inventoryFromEndpoints', () => {
  it('builds API-only members named by host:port, adding a scheme and the default port like etcdctl', () => {
    const inv = inventoryFromEndpoints('127.0.0.1:2379, http://127.0.0.1:22379,localhost', {}, {});
    expect(inv.source).toBe('--endpoints');
    expect(inv.members).toEqual([
      { name: '127.0.0.1:2379', clientURL: 'http://127.0.0.1:2379', peerURL: '', driver: { type: 'none' } },
      { name: '127.0.0.1:22379', clientURL: 'http://127.0.0.1:22379', peerURL: '', driver: { type: 'none' } },
      { name: 'localhost:2379', clientURL: 'http://localhost:2379', peerURL: '', driver: { type: 'none' } },
    ]);
    expect(inv.tls).toBeUndefined();
    expect(inv.auth).toBeUndefined();
  });

  it('takes ETCDCTL_* variables when flags are absent; flags win; TLS makes bare endpoints https', () => {
    const env = { ETCDCTL_ENDPOINTS: '10.0.0.1:2379', ETCDCTL_CACERT: 'ca.pem', ETCDCTL_CERT: 'c.pem', ETCDCTL_KEY: 'k.pem' };
    const inv = inventoryFromEndpoints(undefined, { cacert: '/etc/ca.pem' }, env);
    expect(inv.members.map((m) => m.clientURL)).toEqual(['https://10.0.0.1:2379']);
    expect(inv.tls).toEqual({ cacert: '/etc/ca.pem', cert: path.resolve('c.pem'), key: path.resolve('k.pem') });
  });

  it('keeps a user:password password in memory only: never in JSON', () => {
    const inv = inventoryFromEndpoints('127.0.0.1:2379', {}, { ETCDCTL_USER: 'root:s3cret:with:colons' });
    expect(inv.auth).toEqual({ username: 'root' });
    expect(JSON.stringify(inv)).not.toContain('s3cret');
    expect(authPassword(inv.auth!, {})).toBe('s3cret:with:colons');
  });

  it('reads the password from ETCDCTL_PASSWORD by reference', () => {
    const inv = inventoryFromEndpoints('127.0.0.1:2379', {}, { ETCDCTL_USER: 'root', ETCDCTL_PASSWORD: 'pw' });
    expect(inv.auth).toEqual({ username: 'root', passwordEnv: 'ETCDCTL_PASSWORD' });
    expect(authPassword(inv.auth!, { ETCDCTL_PASSWORD: 'pw' })).toBe('pw');
  });

  it('refuses bad endpoints with UserErrors', () => {
    const bad = (e: string, env: Record<string, string> = {}) => expect(() => inventoryFromEndpoints(e, {}, env)).toThrow(UserError);
    bad('');
    bad('ftp://127.0.0.1:2379');
    bad('http://127.0.0.1:2379/v3');
    bad('http://user:pw@127.0.0.1:2379');
    bad('127.0.0.1:2379,127.0.0.1:2379');
    bad('127.0.0.1:2379', { ETCDCTL_USER: 'root' });
    expect(() => inventoryFromEndpoints('127.0.0.1:2379', { cert: 'c.pem' }, {})).toThrow(/--cert and --key go together/);
  });
});
