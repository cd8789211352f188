/**
 * The systemd driver against real etcd members run by a `systemctl` STAND-IN (test/support/systemctl-standin.cjs):
 * systemd is installed on these machines but is not PID 1, so there is no service manager to talk to. The stand-in
 * models what the driver relies on (unit files with ExecStart/Environment/EnvironmentFile/TimeoutStopSec, a clean
 * environment built from them at start, `show` in systemd's formats, start --no-block, stop, kill, reset-failed)
 * and says what it does not (D-Bus, cgroups, Restart=, Type=notify readiness, drop-ins).
 *
 * The members are laid out the way kubespray does it: `ExecStart=/…/etcd --name … --data-dir …`, every other
 * flag as ETCD_<FLAG> in an EnvironmentFile. Through the driver and members.set-flag: the quota is raised as a
 * rolling restart, followers first; each env file is copied aside first and gains exactly one line; each new
 * process has ETCD_QUOTA_BACKEND_BYTES in its environment (its /proc environ); the cluster takes more data than
 * the old quota allowed. And the refusals: a flag on the ExecStart line, an unknown unit, an env file the unit
 * does not load.
 *
 * power-loss-restore through the real CLI with every member a unit: all main processes SIGKILLed (the units left
 * failed), every db cut in half; the run restores each member from the snapshot and starts it through its unit.
 *
 * Over ssh (a real OpenSSH server on 127.0.0.1 whose sessions get the stand-in on their PATH through sshd's
 * SetEnv): the same driver code runs every systemctl call and file edit through the member's ssh host, proved by
 * stopping sshd, after which it fails naming the host.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AlarmAction } from 'etcd3';
import { catalog } from '../../src/actions/catalog.ts';
import { actions } from '../support/actions.ts';
import type { ActionImpl } from '../../src/actions/types.ts';
import { readMemberFlags } from '../../src/diagnose/collect.ts';
import { flagEnvName } from '../../src/drivers/env-file.ts';
import { driverFor } from '../../src/drivers/index.ts';
import { isAlive } from '../../src/drivers/process.ts';
import type { Inventory, MemberSpec } from '../../src/inventory/types.ts';
import { makeActionContext, memberItem, rollingSetFlag, type TestActionContext } from '../support/action-context.ts';
import { damageMember, ETCD_REFUSES, expectEtcdRefuses } from '../support/damage.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { execa } from 'execa';
import { startSystemdStandin, type SystemdStandin } from '../support/systemd-standin.ts';
import { startSshd, type TestSshd } from '../support/sshd.ts';
import { rewindParams } from '../support/etcd-versions.ts';
import { cli as runCli } from '../support/cli.ts';

const MiB = 1024 * 1024;

/** `--flag value` / `--flag=value` pairs of an etcd command line, without the program. */
function flagPairs(command: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 1; i < command.length; i++) {
    const a = command[i]!;
    const eq = a.indexOf('=');
    if (eq > 0) out.push([a.slice(2, eq), a.slice(eq + 1)]);
    else if (command[i + 1] !== undefined && !command[i + 1]!.startsWith('--')) out.push([a.slice(2), command[++i]!]);
    else out.push([a.slice(2), 'true']);
  }
  return out;
}

const environOf = (pid: number): Record<string, string> =>
  Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
const cmdlineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');

const unitOf = (name: string) => `etcd-${name}.service`;
const envFileOf = (cluster: TestCluster, name: string) => join(cluster.dir, `${name}-node`, 'etcd.env');

/**
 * Hand every member of a harness cluster to the systemctl stand-in, kubespray style: stop it, write its env file
 * (every flag but --name and --data-dir as ETCD_<FLAG>) and a unit whose ExecStart keeps --name and --data-dir.
 * Returns each member's env file text. The units are not started.
 */
async function asUnits(cluster: TestCluster, systemd: SystemdStandin): Promise<Record<string, string>> {
  const texts: Record<string, string> = {};
  for (const m of cluster.members) {
    await cluster.stop(m.name);
    mkdirSync(join(cluster.dir, `${m.name}-node`), { recursive: true });
    const pairs = flagPairs(m.command);
    const identity = pairs.filter(([f]) => f === 'name' || f === 'data-dir');
    texts[m.name] = ['# etcd environment (kubespray style)', ...pairs.filter(([f]) => f !== 'name' && f !== 'data-dir').map(([f, v]) => `${flagEnvName(f)}=${v}`), ''].join('\n');
    writeFileSync(envFileOf(cluster, m.name), texts[m.name]!, { mode: 0o640 });
    systemd.writeUnit(unitOf(m.name), [
      '[Unit]',
      `Description=etcd ${m.name}`,
      '[Service]',
      'Type=notify',
      `EnvironmentFile=${envFileOf(cluster, m.name)}`,
      `ExecStart=${m.command[0]} \\`,
      ...identity.map(([f, v], i) => `  --${f}=${v}${i < identity.length - 1 ? ' \\' : ''}`),
      'TimeoutStopSec=15',
      '',
    ].join('\n'));
    // The harness finds (and at teardown kills) members through their pid files.
    systemd.trackPidFile(unitOf(m.name), m.pidFile);
  }
  return texts;
}

function systemdInventory(cluster: TestCluster): Inventory {
  const base = cluster.inventory();
  return { ...base, members: base.members.map((m) => ({ ...m, driver: { type: 'systemd' as const, unit: unitOf(m.name) } })) };
}

describe('systemd driver: members as units (kubespray layout) under a systemctl stand-in', () => {
  let cluster: TestCluster;
  let systemd: SystemdStandin;
  let inv: Inventory;
  let t: TestActionContext;
  const envFile = (name: string) => envFileOf(cluster, name);
  const original: Record<string, string> = {};

  // A cluster (and its units) per test: the quota raise and the stop/start leave their marks on it.
  beforeEach(async () => {
    systemd = startSystemdStandin();
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB, name: 'systemd' });
    Object.assign(original, await asUnits(cluster, systemd));
    inv = systemdInventory(cluster);
    // Start every member through the driver (a cold cluster: each start returns without waiting for a quorum).
    for (const m of inv.members) await driverFor(m).start();
    await cluster.waitHealthy(30_000, { members: cluster.members.map((m) => m.name) });
    t = makeActionContext(inv);
  }, 90_000);

  afterEach(async () => {
    await t?.dispose();
    await systemd?.stop();
    await cluster?.teardown();
  });

  const spec = (name: string): MemberSpec => inv.members.find((m) => m.name === name)!;

  it('reads the flags in effect from the live process (command line + ETCD_* environment), and the configured ones when stopped', async () => {
    const d = driverFor(spec('m1'));
    const st = await d.status();
    expect(st.running).toBe(true);
    expect(cmdlineOf(st.pid!)).toEqual([cluster.members[0]!.command[0], '--name=m1', `--data-dir=${cluster.members[0]!.dataDir}`]);
    expect(await d.getFlag('quota-backend-bytes')).toBe(String(16 * MiB)); // from ETCD_QUOTA_BACKEND_BYTES
    expect(await d.getFlag('name')).toBe('m1');
    const flags = await readMemberFlags(spec('m1'));
    expect(flags.flags).toMatchObject({ quotaBackendBytes: String(16 * MiB), from: `argv and environment of pid ${st.pid}` });
  });

  it('raises the quota as a rolling restart: env file backed up and edited by one line, each process restarted with it, followers first', async () => {
    const NEW = 40 * MiB;
    const setFlag: ActionImpl = actions['members.set-flag']!;
    const clusterHealthy: ActionImpl = actions['etcd.cluster-healthy']!;
    const input = catalog['members.set-flag'].input.parse({ flag: 'quota-backend-bytes', value: NEW });
    const names = cluster.members.map((m) => m.name);
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await driverFor(spec(n)).status()).pid!] as const)));

    const { order, outs } = await rollingSetFlag(t, inv, 'quota-backend-bytes', NEW);
    expect(outs.map((o) => o.previous)).toEqual(order.map(() => String(16 * MiB)));
    expect(order.slice(0, 2)).toContain(outs[2].leaderMovedTo); // the leader went last, after handing leadership to a done member

    for (const name of names) {
      const file = envFile(name);
      const text = readFileSync(file, 'utf8');
      expect(text).toBe(original[name]!.replace(`ETCD_QUOTA_BACKEND_BYTES=${16 * MiB}`, `ETCD_QUOTA_BACKEND_BYTES=${NEW}`));
      const backups = readdirSync(join(cluster.dir, `${name}-node`)).filter((f) => f.startsWith('etcd.env.runbook-'));
      expect(backups).toHaveLength(1);
      expect(backups[0]).toMatch(/^etcd\.env\.runbook-\d{8}T\d{6}Z$/);
      expect(readFileSync(join(cluster.dir, `${name}-node`, backups[0]!), 'utf8')).toBe(original[name]);
      expect(statSync(file).mode & 0o777).toBe(0o640); // rewritten with its mode kept
      expect(statSync(join(cluster.dir, `${name}-node`, backups[0]!)).mode & 0o777).toBe(0o640);
      const st = await driverFor(spec(name)).status();
      expect(st.pid).not.toBe(before[name]);
      expect(isAlive(before[name]!)).toBe(false);
      expect(environOf(st.pid!).ETCD_QUOTA_BACKEND_BYTES).toBe(String(NEW));
      expect(await setFlag.probe!(t.step('raise-quota', { item: memberItem(inv, name) }), input)).toMatchObject({ done: true });
    }

    // The raised quota is in force: 20 MiB more fits without NOSPACE.
    const client = cluster.client();
    const value = Buffer.alloc(MiB, 0x63);
    for (let i = 0; i < 20; i++) await client.put(`runbook-test/systemd/${i}`).value(value).exec();
    expect((await client.maintenance.alarm({ action: AlarmAction.Get })).alarms).toEqual([]);
    const healthy = await clusterHealthy.run(t.step('verify'), catalog['etcd.cluster-healthy'].input.parse({ waitFor: '20s', expectVoters: 3 }));
    expect(healthy.voters).toHaveLength(3);
  }, 180_000); // three members restarted one at a time, each waited healthy: minutes on a loaded 2-core CI machine

  it('stop waits until the unit is down; start comes back with a new main pid; both are idempotent', async () => {
    const d = driverFor(spec('m3'));
    const { pid } = await d.status();
    await d.stop();
    expect(isAlive(pid!)).toBe(false);
    expect(await d.status()).toEqual({ running: false });
    expect(await d.getFlag('quota-backend-bytes')).toBe(String(16 * MiB)); // configured (stopped): unit + env file
    await d.stop();
    await d.start();
    const again = await d.status();
    expect(again.running).toBe(true);
    expect(again.pid).not.toBe(pid);
    await d.start();
    expect((await d.status()).pid).toBe(again.pid);
    await cluster.waitHealthy(30_000, { members: cluster.members.map((m) => m.name) });
  });

  it('refuses what it cannot do safely, with the reason and what to do instead', async () => {
    // A flag on the ExecStart line: no environment variable overrides it.
    const flagged = 'etcd-flagged.service';
    systemd.writeUnit(flagged, ['[Service]', `ExecStart=${cluster.members[0]!.command[0]} --name=x --quota-backend-bytes=1024`, ''].join('\n'));
    const d = driverFor({ name: 'x', driver: { type: 'systemd', unit: flagged } });
    expect(await d.status()).toEqual({ running: false });
    const err = await d.setFlag('quota-backend-bytes', '2048').catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'precondition', message: expect.stringMatching(/--quota-backend-bytes is set on the ExecStart line of etcd-flagged\.service/) });
    expect((err as { hint?: string }).hint).toMatch(/systemctl edit --full etcd-flagged\.service/);
    expect(await d.setFlag('quota-backend-bytes', '1024')).toEqual({ changed: false, previous: '1024' });

    // An env file the inventory names but the unit does not load.
    const m1Env = readFileSync(envFile('m1'), 'utf8');
    const e2 = await driverFor({ name: 'm1', driver: { type: 'systemd', unit: unitOf('m1'), envFile: '/etc/etcd-elsewhere.env' } })
      .setFlag('snapshot-count', '5000')
      .catch((e: unknown) => e);
    expect(e2).toMatchObject({ kind: 'precondition', message: expect.stringMatching(/does not load \/etc\/etcd-elsewhere\.env/) });
    expect(readFileSync(envFile('m1'), 'utf8')).toBe(m1Env);

    // A unit systemd does not know.
    await expect(driverFor({ name: 'y', driver: { type: 'systemd', unit: 'etcd-nope.service' } }).status()).rejects.toMatchObject({
      kind: 'precondition',
      message: expect.stringMatching(/systemd has no unit etcd-nope\.service/),
    });
    expect(existsSync(envFile('m1'))).toBe(true);
  });
});

describe('systemd driver over ssh (real sshd on 127.0.0.1, systemctl stand-in on the session PATH)', () => {
  let systemd: SystemdStandin;
  let sshd: TestSshd | undefined;

  beforeAll(async () => {
    systemd = startSystemdStandin();
    sshd = await startSshd({ sessionEnv: { PATH: process.env.PATH!, RUNBOOK_SYSTEMCTL_STANDIN: systemd.dir } });
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    await systemd?.stop();
  });

  it('starts, reads, reconfigures and stops a unit on the remote host; without sshd it fails naming the host', async () => {
    const env = join(systemd.dir, 'svc.env');
    writeFileSync(env, 'ETCD_NAME=svc\n', { mode: 0o600 });
    systemd.writeUnit('svc.service', ['[Service]', `EnvironmentFile=${env}`, 'ExecStart=/bin/sleep 297', 'TimeoutStopSec=5', ''].join('\n'));
    const d = driverFor({ name: 'svc', driver: { type: 'systemd', unit: 'svc.service', envFile: env }, ssh: sshd!.host });
    expect(await d.status()).toEqual({ running: false });
    await d.start();
    const st = await d.status();
    expect(st.running).toBe(true);
    expect(cmdlineOf(st.pid!)).toEqual(['/bin/sleep', '297']);
    expect(await d.argv()).toEqual({ argv: ['/bin/sleep', '297', '--name=svc'], from: expect.stringMatching(new RegExp(`^argv and environment of pid ${st.pid} on ssh .*127\\.0\\.0\\.1`)) });
    await d.stop();
    expect(isAlive(st.pid!)).toBe(false);
    expect(await d.setFlag('quota-backend-bytes', '4096')).toEqual({ changed: true });
    expect(readFileSync(env, 'utf8')).toBe('ETCD_NAME=svc\nETCD_QUOTA_BACKEND_BYTES=4096\n');
    expect(statSync(env).mode & 0o777).toBe(0o600);
    expect(readdirSync(systemd.dir).filter((f) => f.startsWith('svc.env.runbook-'))).toHaveLength(1);
    await d.start();
    const st2 = await d.status();
    expect(environOf(st2.pid!).ETCD_QUOTA_BACKEND_BYTES).toBe('4096');
    await d.stop();

    await sshd!.stop();
    sshd = undefined;
    await expect(d.status()).rejects.toMatchObject({ kind: 'transient', message: expect.stringMatching(/ssh .*127\.0\.0\.1.*ssh failed/) });
  });
});

describe('power-loss-restore through the real CLI with systemd members (systemctl stand-in)', () => {
  let systemd: SystemdStandin;
  let cluster: TestCluster;
  afterAll(async () => {
    await systemd?.stop();
    await cluster?.teardown();
  });

  it('every member SIGKILLed and its db meta pages zeroed (etcd refuses it): restored from the snapshot through the units, data moved aside, keys back', async () => {
    systemd = startSystemdStandin();
    cluster = await startCluster({ members: 3, quotaBytes: 64 * MiB, name: 'plr-systemd' });
    await asUnits(cluster, systemd);
    const inv = systemdInventory(cluster);
    for (const m of inv.members) await driverFor(m).start();
    await cluster.waitHealthy(30_000, { members: cluster.members.map((m) => m.name) });
    const client = cluster.client();
    const keys: Record<string, string> = {};
    for (let i = 0; i < 10; i++) keys[`plr/${i}`] = `v${i}`;
    for (const [k, v] of Object.entries(keys)) await client.put(k).value(v).exec();
    for (let i = 0; i < 8; i++) await client.put(`filler/${i}`).value(Buffer.alloc(256 * 1024, 0x66)).exec();
    const snap = await execa('etcdctl', ['--endpoints', cluster.members[0]!.clientURL, 'snapshot', 'save', join(cluster.dir, 'snapshots', 'plr-systemd-by-hand.db')], { reject: false, env: { ETCDCTL_API: '3' } });
    expect(snap.exitCode, snap.stderr).toBe(0);
    await client.put('after-snapshot').value('lost with the power').exec();

    // The power loss: every main process SIGKILLed (the units are left "failed"), every db's bbolt meta pages zeroed.
    const pids = await Promise.all(inv.members.map(async (m) => (await driverFor(m).status()).pid!));
    for (const m of inv.members) await systemd.systemctl('kill', '--signal=SIGKILL', '--', unitOf(m.name));
    for (const pid of pids) for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(50);
    for (const m of inv.members) expect((await driverFor(m).status()).running).toBe(false);
    for (const m of cluster.members) damageMember(m, 'db');
    // The damage is real: etcd itself, started on each member's data, refuses it (its own log says so).
    const refused = await expectEtcdRefuses(cluster, cluster.members.map((m) => m.name));
    for (const m of cluster.members) expect(refused[m.name]).toMatch(ETCD_REFUSES);
    cluster.checkpointData(); // teardown fails the test if a file is deleted instead of moved aside

    const file = cluster.writeInventory(join(cluster.dir, 'systemd.yaml'), { members: inv.members });
    const stateDir = join(cluster.dir, 'state');
    const r = await runCli(['run', 'power-loss-restore', '-i', file, '--state-dir', stateDir, '--yes', '--json', '-p', 'restartWait=15s', ...rewindParams()], { timeout: 240_000 });
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);

    await cluster.waitHealthy(30_000, { members: cluster.members.map((m) => m.name) });
    const back = await cluster.client('m2').getAll().prefix('plr/').strings();
    expect(back).toEqual(Object.fromEntries(Object.entries(keys).filter(([k]) => k.startsWith('plr/'))));
    expect(await cluster.client('m2').get('after-snapshot').string()).toBeNull();
    for (const m of cluster.members) {
      // Running under its unit again (the stand-in's main pid), on the restored data; the damaged data moved aside.
      const st = await driverFor(inv.members.find((x) => x.name === m.name)!).status();
      expect(st.running).toBe(true);
      expect(cmdlineOf(st.pid!)).toContain(`--data-dir=${m.dataDir}`);
      const asides = readdirSync(dirname(m.dataDir)).filter((e) => e.startsWith(`${basename(m.dataDir)}.pre-restore-`));
      expect(asides).toHaveLength(1);
      expect(existsSync(join(dirname(m.dataDir), asides[0]!, 'member', 'snap', 'db'))).toBe(true);
    }
  }, 240_000);
});

