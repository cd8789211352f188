/**
 * etcdctl's and kubectl's flags and variables, spelled as those tools spell them, through the real CLI against a
 * real TLS cluster (client certificates required) and a real auth-enabled cluster: --cacert/--cert/--key and
 * ETCDCTL_*, --insecure-skip-tls-verify, --insecure-transport=false, --user (user:password, --password, the TTY
 * prompt, ETCDCTL_USER/ETCDCTL_PASSWORD), --dial-timeout/--command-timeout, -w json; --kubeconfig/--context making
 * kubectl checks usable with --endpoints (kubectl against the API-server stand-in: there is no kube-apiserver here).
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServerStandin, type ApiServerStandin } from '../support/apiserver-standin.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { inPty } from '../support/pty.ts';
import { cli as runCli, isolatedEnv } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');

/** No ETCDCTL_* from the machine's environment leaks in: each test says what it sets. */
function cli(args: string[], env: Record<string, string> = {}) {
  const clean = isolatedEnv((k) => k.startsWith('ETCDCTL_') || k === 'KUBECONFIG' || k === 'RUNBOOK_INVENTORY');
  return runCli(args, { env: { ...clean, ...env }, extendEnv: false, stdin: 'ignore' });
}
const diagnosis = (stdout: string) => JSON.parse(stdout) as { status: string; members: { name: string; reachable?: boolean }[] };

describe('a TLS cluster (client certificates required)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, tls: true, name: 'flags-tls' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('--cacert/--cert/--key and the same ETCDCTL_* variables; -w json', async () => {
    const { cacert, cert, key } = cluster.tls!;
    const url = cluster.members[0]!.clientURL;
    const byFlags = await cli(['diagnose', '--endpoints', url, '--cacert', cacert, '--cert', cert, '--key', key, '-w', 'json', '--command-timeout', '3s', '--dial-timeout', '1s']);
    expect(byFlags.exitCode, byFlags.stderr).toBe(0);
    expect(diagnosis(byFlags.stdout).status).not.toBe('critical');
    const byEnv = await cli(['diagnose'], { ETCDCTL_ENDPOINTS: url, ETCDCTL_CACERT: cacert, ETCDCTL_CERT: cert, ETCDCTL_KEY: key, ETCDCTL_WRITE_OUT: 'json', ETCDCTL_COMMAND_TIMEOUT: '3s' });
    expect(byEnv.exitCode, byEnv.stderr).toBe(0);
    expect(diagnosis(byEnv.stdout).status).toBe(diagnosis(byFlags.stdout).status);
  });

  it('--insecure-skip-tls-verify talks without the CA; without it (and without the CA) the members are not trusted', async () => {
    const { cert, key } = cluster.tls!;
    const url = cluster.members[0]!.clientURL;
    const skip = await cli(['diagnose', '--endpoints', url, '--cert', cert, '--key', key, '--insecure-skip-tls-verify', '-w', 'json']);
    expect(skip.exitCode, skip.stderr).toBe(0);
    expect(diagnosis(skip.stdout).status).not.toBe('critical');
    // --insecure-transport=false: https verified against the system's CAs, which never signed this cluster.
    const strict = await cli(['diagnose', '--endpoints', url.replace('https://', ''), '--insecure-transport=false', '--cert', cert, '--key', key, '-w', 'json', '--command-timeout', '2s']);
    expect(strict.exitCode).toBe(6);
    expect(diagnosis(strict.stdout).status).toBe('critical');
  });

  it('bad flag values name the flag', async () => {
    const url = cluster.members[0]!.clientURL;
    const r = await cli(['diagnose', '--endpoints', url, '--command-timeout', 'soon']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--command-timeout: not a duration/);
    const t = await cli(['diagnose', '--endpoints', url, '--insecure-transport', 'maybe']);
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toMatch(/--insecure-transport: expected true or false/);
  });
});

describe('an auth-enabled cluster', () => {
  let cluster: TestCluster;
  const password = `pw-${process.pid}-${Date.now()}`;
  let url = '';
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, name: 'flags-auth' });
    url = cluster.members[0]!.clientURL;
    const ctl = (...args: string[]) =>
      execa(process.env.ETCD_BIN_DIR ? path.join(process.env.ETCD_BIN_DIR, 'etcdctl') : 'etcdctl', ['--endpoints', url, ...args], { env: { ETCDCTL_API: '3' }, extendEnv: false, timeout: 20_000, stdin: 'ignore' });
    await ctl('user', 'add', `root:${password}`);
    await ctl('auth', 'enable');
  }, 60_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('--user user:password, --user with --password, and ETCDCTL_USER/ETCDCTL_PASSWORD all authenticate', async () => {
    for (const [args, env] of [
      [['--user', `root:${password}`], {}],
      [['--user', 'root', '--password', password], {}],
      [[], { ETCDCTL_USER: 'root', ETCDCTL_PASSWORD: password }],
      [[], { ETCDCTL_USER: `root:${password}` }],
    ] as [string[], Record<string, string>][]) {
      const r = await cli(['diagnose', '--endpoints', url, '-w', 'json', ...args], env);
      expect(r.exitCode, `${args.join(' ')} ${Object.keys(env).join(',')}: ${r.stderr}`).toBe(0);
      expect(diagnosis(r.stdout).members[0]).toMatchObject({ reachable: true });
    }
  });

  it('a wrong password is refused and never printed; --user without a password and no TTY says what is missing', async () => {
    const wrong = `wrong-${Date.now()}`;
    const r = await cli(['diagnose', '--endpoints', url, '--user', `root:${wrong}`, '-w', 'json']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout + r.stderr).not.toContain(wrong);
    const missing = await cli(['diagnose', '--endpoints', url, '--user', 'root']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/no password for etcd user root/);
  });

  it('--user NAME on a terminal asks for the password without echoing it', async () => {
    const p = inPty([process.execPath, bin, 'diagnose', '--endpoints', url, '--user', 'root', '-w', 'json'], { NO_COLOR: '1' });
    await p.waitFor(/Password for etcd user root: /);
    p.type(`${password}\r`);
    const r = await p.done;
    expect(r.exitCode, p.screen()).toBe(0);
    expect(p.screen()).not.toContain(password);
    expect(p.screen()).toMatch(/"reachable": true/);
  });

  it('a run with --endpoints and --user: steps and zx scripts authenticate (the password is not stored with the run)', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-flags-'));
    try {
      const r = await cli(['run', path.join(root, 'examples/cluster-check.yaml'), '--endpoints', url, '--user', `root:${password}`, '--state-dir', stateDir]);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/1 members agree/);
      const [runId] = fs.readdirSync(path.join(stateDir, 'runs'));
      const dir = path.join(stateDir, 'runs', runId!);
      for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json') || x.endsWith('.jsonl'))) {
        expect(fs.readFileSync(path.join(dir, f), 'utf8')).not.toContain(password);
      }
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('kubectl flags with --endpoints', () => {
  let cluster: TestCluster;
  let standin: ApiServerStandin;
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, name: 'flags-kube' });
    standin = await startApiServerStandin({ etcd: cluster.endpoints, nodes: [{ name: 'cp-1', ready: true }] });
  }, 60_000);
  afterAll(async () => {
    await standin?.close();
    await cluster?.teardown();
  });

  it('--kubeconfig and --context give the kubectl checks a cluster; without them they are skipped', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-kube-flags-'));
    try {
      const kubeconfig = standin.writeKubeconfig(path.join(dir, 'kubeconfig'), 'standin');
      const rb = path.join(dir, 'kube.yaml');
      fs.writeFileSync(rb, [
        'apiVersion: runbook/v1', 'name: kube-check', 'summary: kubectl checks only',
        'steps:', '  - id: kube', '    when: inventory.kubernetes != null', '    action: kubectl.verify', '    with: { checks: [readyz, nodes-ready], waitFor: 10s }',
      ].join('\n'));
      const withKube = await cli(['run', rb, '--endpoints', cluster.members[0]!.clientURL, '--kubeconfig', kubeconfig, '--context', 'standin', '--state-dir', path.join(dir, 's1')]);
      expect(withKube.exitCode, withKube.stdout + withKube.stderr).toBe(0);
      expect(withKube.stdout).toMatch(/✓ kube/);
      expect(standin.requests.some((x) => /^GET \/readyz\S* 200/.test(x)), standin.requests.join('\n')).toBe(true);
      const without = await cli(['run', rb, '--endpoints', cluster.members[0]!.clientURL, '--state-dir', path.join(dir, 's2')]);
      expect(without.exitCode, without.stdout + without.stderr).toBe(0);
      expect(without.stdout).toMatch(/kube: skipped/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
