import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inventoryJsonSchema, loadInventory } from '../../../src/inventory/load.ts';
import { UserError } from '../../../src/util/errors.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'runbook-inv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function write(text: string): string {
  const file = path.join(tmp, `cluster-${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}
function problems(text: string): string[] {
  const file = write(text);
  try {
    loadInventory(file);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);
  }
  throw new Error('expected diagnostics');
}

const full = `
name: prod-east
members:
  - name: etcd-1
    clientURL: https://127.0.0.1:2379
    peerURL: https://127.0.0.1:2380
    dataDir: /srv/etcd/etcd-1
    driver:
      type: process
      command: [./bin/etcd, --name, etcd-1, --data-dir, /srv/etcd/etcd-1]
      pidFile: run/etcd-1.pid
      logFile: logs/etcd-1.log
      env: { ETCD_UNSUPPORTED_ARCH: arm64 }
  - name: etcd-2
    clientURL: https://10.0.0.2:2379
    peerURL: https://10.0.0.2:2380
    dataDir: /var/lib/etcd
    ssh: { host: 10.0.0.2, port: 2222, user: core, identityFile: keys/id_ed25519, options: [StrictHostKeyChecking=yes] }
    driver: { type: systemd, unit: etcd.service, envFile: /etc/default/etcd }
  - name: etcd-3
    clientURL: https://10.0.0.3:2379
    peerURL: https://10.0.0.3:2380
    ssh: { host: 10.0.0.3 }
    driver: { type: static-pod, manifest: /etc/kubernetes/manifests/etcd.yaml, backupDir: /root/manifests-off }
  - name: etcd-4
    clientURL: https://10.0.0.4:2379
    peerURL: https://10.0.0.4:2380
tls: { cacert: pki/ca.crt, cert: pki/client.crt, key: pki/client.key }
auth: { username: root, passwordEnv: ETCD_ROOT_PASSWORD }
kubernetes:
  kubeconfig: admin.conf
  context: prod
  apiServers:
    - name: apiserver-1
      ssh: { host: 10.0.0.2 }
      driver: { type: static-pod, manifest: /etc/kubernetes/manifests/kube-apiserver.yaml }
snapshots: { dirs: [snapshots, /backup/etcd] }
etcdBinDir: bin
requestTimeoutMs: 3000
quotaBytes: 8GiB
`;

describe('loadInventory', () => {
  it('loads every field, resolves local paths against the file, keeps remote paths, defaults the driver', () => {
    const file = write(full);
    const inv = loadInventory(file);
    const at = (p: string) => path.join(tmp, p);
    expect(inv.name).toBe('prod-east');
    expect(inv.source).toBe(file);
    expect(inv.members[0]).toEqual({
      name: 'etcd-1',
      clientURL: 'https://127.0.0.1:2379',
      peerURL: 'https://127.0.0.1:2380',
      dataDir: '/srv/etcd/etcd-1',
      driver: { type: 'process', command: [at('bin/etcd'), '--name', 'etcd-1', '--data-dir', '/srv/etcd/etcd-1'], pidFile: at('run/etcd-1.pid'), logFile: at('logs/etcd-1.log'), env: { ETCD_UNSUPPORTED_ARCH: 'arm64' } },
    });
    expect(inv.members[1]).toEqual({
      name: 'etcd-2',
      clientURL: 'https://10.0.0.2:2379',
      peerURL: 'https://10.0.0.2:2380',
      dataDir: '/var/lib/etcd',
      ssh: { host: '10.0.0.2', port: 2222, user: 'core', identityFile: at('keys/id_ed25519'), options: ['StrictHostKeyChecking=yes'] },
      driver: { type: 'systemd', unit: 'etcd.service', envFile: '/etc/default/etcd' },
    });
    expect(inv.members[2]!.driver).toEqual({ type: 'static-pod', manifest: '/etc/kubernetes/manifests/etcd.yaml', backupDir: '/root/manifests-off' });
    expect(inv.members[3]!.driver).toEqual({ type: 'none' });
    expect(inv.tls).toEqual({ cacert: at('pki/ca.crt'), cert: at('pki/client.crt'), key: at('pki/client.key') });
    expect(inv.auth).toEqual({ username: 'root', passwordEnv: 'ETCD_ROOT_PASSWORD' });
    expect(inv.kubernetes).toEqual({
      kubeconfig: at('admin.conf'),
      context: 'prod',
      apiServers: [{ name: 'apiserver-1', ssh: { host: '10.0.0.2' }, driver: { type: 'static-pod', manifest: '/etc/kubernetes/manifests/kube-apiserver.yaml' } }],
    });
    expect(inv.snapshots).toEqual({ dirs: [at('snapshots'), '/backup/etcd'] });
    expect(inv.etcdBinDir).toBe(at('bin'));
    expect(inv.requestTimeoutMs).toBe(3000);
    expect(inv.quotaBytes).toBe(8 * 1024 ** 3);
  });

  it('refuses a literal password and says what to use instead', () => {
    const got = problems('name: c\nmembers:\n  - { name: a, clientURL: "http://127.0.0.1:2379", peerURL: "http://127.0.0.1:2380" }\nauth:\n  username: root\n  password: hunter2\n');
    expect(got).toEqual([
      '5:3 auth: give passwordEnv (an environment variable name) or passwordFile',
      '6:3 auth: a literal password is not allowed in the inventory: use passwordEnv (an environment variable name) or passwordFile (a file readable only by you)',
    ]);
    expect(got.join('\n')).not.toContain('hunter2');
  });

  it('reports duplicate names and URLs, bad URLs, remote relative paths and mismatched data dirs, all at once', () => {
    const got = problems(
      [
        'name: c',
        'members:',
        '  - { name: a, clientURL: "http://127.0.0.1:2379", peerURL: "http://127.0.0.1:2380" }',
        '  - { name: a, clientURL: "http://127.0.0.1:2379/", peerURL: "127.0.0.1:2380" }',
        '  - { name: b, clientURL: "ftp://127.0.0.1:2379", peerURL: "http://127.0.0.1" }',
        '  - name: c',
        '    clientURL: http://10.0.0.3:2379',
        '    peerURL: http://10.0.0.3:2380',
        '    dataDir: var/lib/etcd',
        '    ssh: { host: 10.0.0.3 }',
        '  - name: d',
        '    clientURL: http://127.0.0.1:4379',
        '    peerURL: http://127.0.0.1:4380',
        '    dataDir: /data/d',
        '    driver: { type: process, command: [etcd, --data-dir=/data/other], pidFile: /run/d.pid }',
        'tls: { cert: client.crt }',
      ].join('\n'),
    );
    expect(got).toEqual([
      '4:13 member "a": name: name "a" is also used by member 1 (line 3)',
      '4:27 member "a": clientURL: clientURL "http://127.0.0.1:2379/" is also used by member 1 (line 3)',
      '4:62 member "a": peerURL: "127.0.0.1:2380" is not a URL (e.g. https://10.0.0.1:2379)',
      '5:27 member "b": clientURL: "ftp://127.0.0.1:2379": the scheme must be http or https',
      '5:60 member "b": peerURL: "http://127.0.0.1" has no port (e.g. http://127.0.0.1:2379)',
      '9:14 member "c": dataDir: "var/lib/etcd" must be an absolute path: this member is reached over ssh',
      '14:14 member "d": dataDir: dataDir "/data/d" differs from --data-dir "/data/other" in driver.command',
      '16:6 tls: cert and key go together: give both or neither',
    ]);
  });

  describe('data dirs: a recovery moves them aside and restores into them', () => {
    const member = (name: string, port: number, extra: string[]) => [
      `  - name: ${name}`,
      `    clientURL: http://127.0.0.1:${port}`,
      `    peerURL: http://127.0.0.1:${port + 1}`,
      ...extra.map((l) => `    ${l}`),
    ];

    it('refuses two members sharing one data dir on this machine, also through a symlink, and one inside another', () => {
      const real = mkdtempSync(path.join(tmp, 'data-'));
      const link = path.join(tmp, `link-${n}`);
      symlinkSync(real, link);
      const got = problems(
        [
          'name: c',
          'members:',
          ...member('a', 2379, [`dataDir: ${real}/etcd`]),
          ...member('b', 3379, [`dataDir: ${link}/etcd`]),
          ...member('c', 4379, [`dataDir: ${real}/etcd/member`]),
          // the same path on two ssh hosts is two directories: fine
          ...member('d', 5379, ['dataDir: /var/lib/etcd', 'ssh: { host: 10.0.0.4 }']),
          ...member('e', 6379, ['dataDir: /var/lib/etcd', 'ssh: { host: 10.0.0.5 }']),
        ].join('\n'),
      );
      expect(got).toEqual([
        `10:14 member "b": dataDir: dataDir "${link}/etcd" (${real}/etcd) is also the data dir of member "a" on this machine: every member needs its own`,
        `14:14 member "c": dataDir: dataDir "${real}/etcd/member" is inside the data dir of member "a" on this machine: every member needs its own`,
        `14:14 member "c": dataDir: dataDir "${real}/etcd/member" is inside the data dir of member "b" on this machine: every member needs its own`,
      ]);
    });

    it('refuses /, a system directory and a relative data dir (also as --data-dir of the driver)', () => {
      const got = problems(
        [
          'name: c',
          'members:',
          ...member('a', 2379, ['dataDir: /']),
          ...member('b', 3379, ['dataDir: /var/lib/']),
          ...member('c', 4379, ['dataDir: data/etcd-c']),
          ...member('d', 5379, ['driver: { type: process, command: [etcd, --data-dir, d.etcd], pidFile: /run/d.pid }']),
        ].join('\n'),
      );
      expect(got).toEqual([
        '6:14 member "a": dataDir: dataDir "/" is a system directory: give the member\'s own directory (e.g. /var/lib/etcd)',
        '10:14 member "b": dataDir: dataDir "/var/lib/" is a system directory: give the member\'s own directory (e.g. /var/lib/etcd)',
        '14:14 member "c": dataDir: dataDir "data/etcd-c" must be an absolute path (recovery moves it aside and restores into it: a relative path would land wherever runbook is started)',
        '18:46 member "d": driver.command[1]: --data-dir "d.etcd" must be an absolute path (recovery moves it aside and restores into it: a relative path would land wherever runbook is started)',
      ]);
    });

    it('refuses a URL that is one member\'s client URL and another\'s peer URL', () => {
      const got = problems(['name: c', 'members:', ...member('a', 2379, []), '  - { name: b, clientURL: "http://127.0.0.1:2380", peerURL: "http://127.0.0.1:3380" }'].join('\n'));
      expect(got).toEqual(['6:27 member "b": clientURL: clientURL "http://127.0.0.1:2380" is also the peerURL of member 1 (line 3)']);
    });
  });

  it('reports structural mistakes with positions and suggestions', () => {
    const got = problems(
      [
        'name: c',
        'memebrs: []',
        'members:',
        '  - name: a',
        '    clientURL: http://127.0.0.1:2379',
        '    peerURL: http://127.0.0.1:2380',
        '    driver: { type: sytemd, unit: etcd }',
        '    ssh: { host: h, port: 70000 }',
        'requestTimeoutMs: soon',
        'quotaBytes: 8 gigs',
      ].join('\n'),
    );
    expect(got).toEqual([
      '2:1 unknown key "memebrs" (did you mean "members"?)',
      '7:21 member "a": driver.type: must be one of "process", "static-pod", "systemd", "none" (got the string "sytemd"); did you mean "systemd"?',
      '8:27 member "a": ssh.port: must be <= 65535 (got the integer 70000)',
      '9:19 requestTimeoutMs: expected a number, got the string "soon"',
      '10:13 quotaBytes: not a byte size: "8 gigs" (use e.g. 8GiB, 512MB or a number of bytes)',
    ]);
  });

  it('needs members', () => {
    expect(problems('name: c\nmembers: []\n')).toEqual(['2:10 members: must have at least 1 item']);
    expect(problems('name: c\n')).toEqual(['1:1 missing required key "members" (a list)']);
  });
});

describe('inventory JSON Schema', () => {
  it('is committed as generated (UPDATE_SCHEMA=1 rewrites schema/inventory.schema.json)', () => {
    const file = new URL('../../../schema/inventory.schema.json', import.meta.url);
    const text = `${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`;
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(file, text);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(JSON.parse(text));
  });
});
