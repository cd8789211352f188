/**
 * The static-pod driver against real etcd members run by a kubelet STAND-IN (test/support/kubelet-standin.ts).
 * There is no kubelet (nor container runtime) on these machines. The stand-in polls a manifests dir every 200 ms
 * and, like the kubelet's static-pod file source, starts the manifest's container command as a process when a
 * manifest appears, restarts it when the manifest's content changes, stops it when the manifest goes (dot files
 * ignored), and restarts a crashed process with backoff. It does not model containers, images, volumes, probes,
 * mirror pods, grace periods or the kubelet's slower re-list; the driver relies on none of those (it only moves and
 * edits manifest files and looks for the process in /proc).
 *
 * 1. The stand-in itself: a manifest appearing, changing and disappearing starts, restarts and stops its process.
 * 2. A 3-member cluster, each member a static pod in its own node's manifests dir: members.set-flag raises the quota
 *    through the static-pod driver, followers first, leader last: each manifest is backed up, the flag is changed
 *    in the manifest and nothing else, each process restarts with the new flag (/proc/<pid>/cmdline), the cluster
 *    stays healthy and takes more data than the old quota allowed.
 * 3. The same, with every member reached over ssh (a real OpenSSH server on 127.0.0.1, test/support/sshd.ts), as
 *    when the runner works from an admin host: the manifests are read, backed up, edited and moved through ssh and
 *    the processes looked for through it (proved by stopping sshd: the driver then fails naming the ssh host).
 *    The node's files and processes are this machine's, which is what the remote side sees through sshd.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlarmAction } from 'etcd3';
import { Document, parse, parseDocument } from 'yaml';
import { catalog } from '../../src/actions/catalog.ts';
import { actions } from '../support/actions.ts';
import type { ActionImpl } from '../../src/actions/types.ts';
import { isAlive, processArgv } from '../../src/drivers/process.ts';
import { staticPodDriver } from '../../src/drivers/static-pod.ts';
import { manifestArgv } from '../../src/drivers/pod-manifest.ts';
import { collectFacts, readMemberFlags } from '../../src/diagnose/collect.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { freePorts, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeTestCerts } from '../support/tls-certs.ts';
import { makeActionContext, memberItem, rollingSetFlag, type TestActionContext } from '../support/action-context.ts';
import { startKubeletStandin, type KubeletStandin } from '../support/kubelet-standin.ts';
import { sshdAvailable, startSshd, type TestSshd } from '../support/sshd.ts';

const MiB = 1024 * 1024;
const example = readFileSync(new URL('../../examples/static-pod/etcd.yaml', import.meta.url), 'utf8');

/** The kubeadm example manifest with another container command. */
function manifestWith(command: string[]): string {
  const doc = parseDocument(example);
  doc.setIn(['spec', 'containers', 0, 'command'], new Document(command).contents);
  return doc.toString({ lineWidth: 0 });
}

/** `--flag value` pairs joined to `--flag=value`, the way kubeadm writes manifests. */
function kubeadmStyle(command: string[]): string[] {
  const out: string[] = [command[0]!];
  for (let i = 1; i < command.length; i++) {
    const a = command[i]!;
    const next = command[i + 1];
    if (a.startsWith('--') && !a.includes('=') && next !== undefined && !next.startsWith('-')) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await sleep(50)) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

const cmdline = (pid: number) => processArgv(pid) ?? [];

describe('kubelet stand-in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-kubelet-'));
  let kubelet: KubeletStandin | undefined;
  afterAll(async () => {
    try {
      await kubelet?.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts a pod when its manifest appears, restarts it when the manifest changes, stops it when it goes', async () => {
    const manifests = join(dir, 'manifests');
    mkdirSync(manifests);
    kubelet = startKubeletStandin({ manifestsDir: manifests });
    const file = join(manifests, 'sleeper.yaml');
    writeFileSync(join(manifests, '.hidden.yaml'), manifestWith(['sleep', '301'])); // dot files are ignored
    writeFileSync(file, manifestWith(['sleep', '300']));
    const first = await until('first pod', () => kubelet!.pods().find((p) => p.file === 'sleeper.yaml')?.pid);
    expect(cmdline(first)).toEqual(['sleep', '300']);
    writeFileSync(file, manifestWith(['sleep', '299']));
    const second = await until('restarted pod', () => {
      const pid = kubelet!.pods()[0]?.pid;
      return pid !== undefined && pid !== first ? pid : undefined;
    });
    expect(isAlive(first)).toBe(false);
    expect(cmdline(second)).toEqual(['sleep', '299']);
    rmSync(file);
    await until('pod gone', () => (kubelet!.pods().length === 0 ? true : undefined));
    expect(isAlive(second)).toBe(false);
    expect(kubelet.pids).toEqual([first, second]);
    expect(kubelet.events.some((e) => e.includes('hidden'))).toBe(false);
  });
});

for (const via of ['this machine', 'ssh'] as const) describe(`members.set-flag through the static-pod driver on ${via} (3 members under kubelet stand-ins)`, () => {
  let cluster: TestCluster;
  let sshd: TestSshd | undefined;
  let inv: Inventory;
  let t: TestActionContext;
  const kubelets: KubeletStandin[] = [];
  const nodeDir = (name: string) => join(cluster.dir, `${name}-node`);
  const manifestOf = (name: string) => join(nodeDir(name), 'manifests', 'etcd.yaml');
  const original: Record<string, string> = {};

  beforeAll(async () => {
    if (via === 'ssh') sshd = await startSshd();
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB, name: `static-pod-${via === 'ssh' ? 'ssh' : 'local'}` });
    // Hand every member over to a kubelet: stop it, write its static pod, let the stand-in start it (same data dir).
    for (const m of cluster.members) {
      await cluster.stop(m.name);
      mkdirSync(join(nodeDir(m.name), 'manifests'), { recursive: true });
      original[m.name] = manifestWith(kubeadmStyle(m.command));
      writeFileSync(manifestOf(m.name), original[m.name]!);
      kubelets.push(startKubeletStandin({ manifestsDir: join(nodeDir(m.name), 'manifests'), files: () => ({ pidFile: m.pidFile, logFile: m.logFile }) }));
    }
    await Promise.all(kubelets.map((k) => k.synced()));
    await cluster.waitHealthy(30_000, { members: cluster.members.map((m) => m.name) });
    const base = cluster.inventory();
    inv = { ...base, members: base.members.map((m) => ({ ...m, driver: { type: 'static-pod' as const, manifest: manifestOf(m.name) }, ...(sshd ? { ssh: sshd.host } : {}) })) };
    t = makeActionContext(inv);
  }, 90_000);

  afterAll(async () => {
    // Everything is stopped whatever fails; then every failure fails the file (a kubelet's, the harness's guard).
    const errors: unknown[] = [];
    await t?.dispose();
    for (const k of kubelets) await k.stop().catch((e: unknown) => errors.push(e));
    await cluster?.teardown().catch((e: unknown) => errors.push(e));
    await sshd?.stop();
    if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => (e as Error).message).join(' | '));
  });

  it('backs up each manifest, changes only the flag, restarts each process with it, followers first, and keeps the cluster healthy', async () => {
    const NEW = 40 * MiB;
    const setFlag: ActionImpl = actions['members.set-flag']!;
    const clusterHealthy: ActionImpl = actions['etcd.cluster-healthy']!;
    const input = catalog['members.set-flag'].input.parse({ flag: 'quota-backend-bytes', value: NEW });
    const names = cluster.members.map((m) => m.name);
    const before = Object.fromEntries(names.map((n) => [n, cluster.pid(n)!]));
    for (const n of names) expect(await staticPodDriver(inv.members.find((m) => m.name === n)!).status()).toEqual({ running: true, pid: before[n] });

    const { order, outs } = await rollingSetFlag(t, inv, 'quota-backend-bytes', NEW);
    expect(outs.map((o) => o.previous)).toEqual(order.map(() => String(16 * MiB)));
    expect(order.slice(0, 2)).toContain(outs[2].leaderMovedTo); // the leader went last, after handing leadership to a done member

    for (const name of names) {
      const manifest = manifestOf(name);
      // Backed up, once, with the original content, outside the manifests dir.
      const backups = readdirSync(join(nodeDir(name), 'runbook-backups'));
      expect(backups).toHaveLength(1);
      expect(backups[0]).toMatch(/^etcd\.\d{8}T\d{6}Z\.yaml$/);
      expect(readFileSync(join(nodeDir(name), 'runbook-backups', backups[0]!), 'utf8')).toBe(original[name]);
      expect(readdirSync(join(nodeDir(name), 'manifests'))).toEqual(['etcd.yaml']);
      // The flag changed in place, nothing else did.
      const text = readFileSync(manifest, 'utf8');
      expect(text).toBe(original[name]!.replace(`--quota-backend-bytes=${16 * MiB}`, `--quota-backend-bytes=${NEW}`));
      expect(parse(text).spec.containers[0].command).toContain(`--quota-backend-bytes=${NEW}`);
      // A new process runs with it.
      const pid = cluster.pid(name)!;
      expect(pid).not.toBe(before[name]);
      expect(isAlive(before[name]!)).toBe(false);
      expect(cmdline(pid)).toContain(`--quota-backend-bytes=${NEW}`);
      expect(existsSync(join(nodeDir(name), 'runbook-backups', 'etcd.stopped.yaml'))).toBe(false);
      expect(await setFlag.probe!(t.step('raise-quota', { item: memberItem(inv, name) }), input)).toMatchObject({ done: true });
    }

    // The raised quota is in force: 20 MiB more fits without NOSPACE.
    const client = cluster.client();
    const value = Buffer.alloc(MiB, 0x63);
    for (let i = 0; i < 20; i++) await client.put(`runbook-test/static-pod/${i}`).value(value).exec();
    expect((await client.maintenance.alarm({ action: AlarmAction.Get })).alarms).toEqual([]); // (the harness's alarms() wants members it started)
    const healthy = await clusterHealthy.run(t.step('verify'), catalog['etcd.cluster-healthy'].input.parse({ waitFor: '20s', expectVoters: 3 }));
    expect(healthy.voters).toHaveLength(3);
    // The kubelets saw a stop and a start per member (one restart each, not two).
    for (const k of kubelets) expect(k.events.filter((e) => e.startsWith('start') || e.startsWith('restart'))).toHaveLength(2);
  
    // diagnose reads each member's flags with one look at the live process (over ssh for a remote node).
    const flags = await readMemberFlags(inv.members[0]!);
    expect(flags.flags).toMatchObject({ quotaBackendBytes: String(NEW), from: expect.stringMatching(sshd ? /^argv of pid \d+ on ssh / : /^argv of pid \d+$/) });

    if (sshd) {
      // Everything above went through ssh: without sshd the driver cannot even look, and says where it tried.
      const d = staticPodDriver(inv.members[0]!);
      await sshd.stop();
      const err = await d.status().catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'transient' });
      expect((err as Error).message).toMatch(/ssh .*127\.0\.0\.1.*ssh failed/);
      sshd = undefined;
    }
  }, 180_000); // three members restarted one at a time, each waited healthy: minutes on a loaded 2-core CI machine
});

describe('static-pod driver files over ssh (real sshd on 127.0.0.1, no process)', () => {
  it('sshd is installed (scripts/bootstrap.sh installs openssh-server): these tests must run, not skip', () => {
    expect(sshdAvailable()).toBe(true);
  });

  let sshd: TestSshd;
  const dir = mkdtempSync(join(tmpdir(), `runbook-sp-ssh $(touch pwned) 'q' ; `));
  beforeAll(async () => {
    sshd = await startSshd();
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('backs up, edits in place keeping the mode, parks and restores the manifest; never overwrites', async () => {
    const manifests = join(dir, 'manifests');
    mkdirSync(manifests);
    const manifest = join(manifests, 'etcd.yaml');
    writeFileSync(manifest, example, { mode: 0o600 });
    chmodSync(manifest, 0o600);
    const d = staticPodDriver({ name: 'cp-1', driver: { type: 'static-pod', manifest }, ssh: sshd.host });
    expect(await d.status()).toEqual({ running: false });
    expect(await d.getFlag('name')).toBe('cp-1');
    expect(await d.setFlag('quota-backend-bytes', '4096')).toEqual({ changed: true });
    const backups = await d.backups();
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatch(/\/runbook-backups\/etcd\.\d{8}T\d{6}Z\.yaml$/);
    expect(readFileSync(backups[0]!, 'utf8')).toBe(example);
    expect(statSync(backups[0]!).mode & 0o777).toBe(0o600);
    expect(manifestArgv(readFileSync(manifest, 'utf8'))).toEqual([...manifestArgv(example), '--quota-backend-bytes=4096']);
    expect(statSync(manifest).mode & 0o777).toBe(0o600); // the rewrite kept the manifest's mode
    expect(readdirSync(manifests)).toEqual(['etcd.yaml']); // no temp files left where the kubelet looks
    expect(await d.setFlag('quota-backend-bytes', '8192')).toEqual({ changed: true, previous: '4096' });
    expect(await d.backups()).toHaveLength(2); // same second: a -2 suffix, never overwritten
    expect(readFileSync((await d.backups())[1]!, 'utf8')).toContain('--quota-backend-bytes=4096');

    await d.stop({ timeoutMs: 1000 });
    expect(existsSync(manifest)).toBe(false);
    expect(await d.where()).toBe('parked');
    expect(await d.setFlag('quota-backend-bytes', '16384')).toEqual({ changed: true, previous: '8192' });
    await d.start();
    expect(await d.where()).toBe('manifests');
    expect(manifestArgv(readFileSync(manifest, 'utf8'))).toContain('--quota-backend-bytes=16384');

    await d.stop({ timeoutMs: 1000 });
    writeFileSync(manifest, example);
    await expect(d.stop({ timeoutMs: 1000 })).rejects.toThrow(/both .* exist on ssh /);
    expect(readFileSync(manifest, 'utf8')).toBe(example);

    // diagnose reads a remote member's flags and the certificates they name on that node, over ssh (the test CA
    // issues 2-day certificates: "expiring").
    const certs = await makeTestCerts(join(dir, 'pki'));
    writeFileSync(manifest, manifestWith([...manifestArgv(example), `--cert-file=${certs.serverCert}`]));
    const [port] = await freePorts(1);
    const facts = await collectFacts(
      { name: 'sp-ssh', source: 'test', members: [{ name: 'cp-1', clientURL: `http://127.0.0.1:${port}`, peerURL: 'http://127.0.0.1:1', driver: { type: 'static-pod', manifest }, ssh: sshd.host }] } as Inventory,
      { timeoutMs: 1000 },
    );
    expect(facts.members[0]!.flags).toMatchObject({ certFile: certs.serverCert, from: expect.stringMatching(/^manifest .* on ssh .*\(not running\)$/) });
    expect(facts.certificates).toContainEqual(expect.objectContaining({ role: 'cp-1 server cert (--cert-file)', status: 'expiring', subject: 'CN=localhost', path: expect.stringMatching(/ \(ssh .*127\.0\.0\.1.*\)$/) }));
    expect(existsSync(join(process.cwd(), 'pwned'))).toBe(false);
    expect(existsSync('pwned')).toBe(false);
  });
});
