/**
 * Members on another host, for real: an OpenSSH server started by the test on 127.0.0.1 (own host key, a
 * generated client key, BatchMode, known_hosts checked). The member marked `ssh:` is driven and restored through
 * it: file operations keep every argument exact (spaces, quotes, `$(...)`, `;` in names), the remote process driver
 * starts/stops a real process, and power-loss-restore restores the ssh member from a snapshot copied to "its host"
 * and checked there.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteProcessDriver } from '../../src/drivers/remote-process.ts';
import { driverFor } from '../../src/drivers/index.ts';
import { readJournal } from '../../src/store/journal.ts';
import { moveAside, sshHostOf } from '../../src/hosts/index.ts';
import type { MemberSpec } from '../../src/inventory/types.ts';
import { isAlive } from '../../src/util/pids.ts';
import { damageMember, ETCD_REFUSES, expectEtcdRefuses } from '../support/damage.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { sshdAvailable, startSshd, type TestSshd } from '../support/sshd.ts';
import { rewindParams } from '../support/etcd-versions.ts';
import { cli as runCli } from '../support/cli.ts';
import { killIfStill } from '../support/child-processes.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');

function runner(args: string[]) {
  return runCli(args, { timeout: 300_000 });
}

describe('members on a remote host (real sshd on 127.0.0.1)', () => {
  it('sshd is installed (scripts/bootstrap.sh installs openssh-server): these tests must run, not skip', () => {
    expect(sshdAvailable()).toBe(true);
  });

  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
  });

  it('file operations over ssh keep every argument exact and never overwrite', async () => {
    const host = sshHostOf(sshd.host);
    const dir = mkdtempSync(join(tmpdir(), `runbook ssh $(touch pwned) 'q' ; `));
    try {
      const f = join(dir, 'a "file"; rm -rf nope');
      writeFileSync(f, 'hello');
      expect(await host.stat(f)).toMatchObject({ type: 'file', size: 5 });
      expect(await host.stat(join(dir, 'missing'))).toBeUndefined();
      expect(await host.sha256(f)).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
      const copy = join(dir, 'copy $HOME');
      await host.putFile(f, copy);
      expect(readFileSync(copy, 'utf8')).toBe('hello');
      await expect(host.putFile(f, copy)).rejects.toThrow(/already exists/);
      await host.writeTextAtomic(join(dir, 'm.json'), '{"x":"$(id)"}\n');
      expect(readFileSync(join(dir, 'm.json'), 'utf8')).toBe('{"x":"$(id)"}\n');
      expect(await host.readText(join(dir, 'm.json'))).toBe('{"x":"$(id)"}\n');
      await expect(host.rename(f, join(dir, 'm.json'))).rejects.toThrow(/already exists/);
      const aside = await moveAside(host, copy, 'pre-restore');
      expect(basename(aside)).toMatch(/^copy \$HOME\.pre-restore-\d{8}T\d{6}Z$/);
      expect(existsSync(copy)).toBe(false);
      expect(readFileSync(aside, 'utf8')).toBe('hello');
      expect((await host.list(dir)).sort()).toEqual([basename(f), basename(aside), 'm.json'].sort());
      expect(existsSync(join(process.cwd(), 'pwned')) || existsSync(join(dir, 'pwned'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the remote process driver starts, finds and stops a process over ssh (pid file + cmdline check)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-rdrv-'));
    const member = { name: 'sleeper', driver: { type: 'process' as const, command: ['sleep', '297'], pidFile: join(dir, 'run', 'sleeper.pid'), logFile: join(dir, 'sleeper.log') }, ssh: sshd.host };
    const driver = remoteProcessDriver(member);
    try {
      expect(await driver.status()).toEqual({ running: false });
      await driver.start();
      const st = await driver.status();
      expect(st.running).toBe(true);
      expect(readFileSync(`/proc/${st.pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual(['sleep', '297']);
      await driver.start(); // idempotent: the same process
      expect((await driver.status()).pid).toBe(st.pid);
      // A pid file naming some other process is never trusted.
      writeFileSync(member.driver.pidFile, `${process.pid}\n`);
      expect(await driver.status()).toEqual({ running: false });
      writeFileSync(member.driver.pidFile, `${st.pid}\n`);
      expect(await driver.setFlag('x', '1')).toEqual({ changed: true });
      expect(await driver.getFlag('x')).toBeUndefined(); // in effect: the running process has no --x yet
      await driver.stop({ timeoutMs: 5_000 });
      expect(isAlive(st.pid!)).toBe(false);
      expect(existsSync(member.driver.pidFile)).toBe(false);
      expect(await driver.getFlag('x')).toBe('1'); // what the next start uses (sidecar on the host)
      expect(JSON.parse(readFileSync(`${member.driver.pidFile}.argv.json`, 'utf8')).command).toEqual(['sleep', '297', '--x=1']);
      // driverFor dispatches a process member with ssh to the remote driver.
      expect(await driverFor({ ...member, clientURL: 'http://127.0.0.1:1', peerURL: 'http://127.0.0.1:2' } as MemberSpec).status()).toEqual({ running: false });
    } finally {
      const pid = Number(existsSync(member.driver.pidFile) ? readFileSync(member.driver.pidFile, 'utf8') : 0);
      killIfStill(pid, 'sleep 297');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  describe('power-loss-restore with one member reached over ssh', () => {
    let cluster: TestCluster;
    afterAll(async () => {
      await cluster?.teardown();
    });

    it('restores the ssh member through sshd: snapshot copied to its host, sha256 checked there, started by the remote driver', async () => {
      cluster = await startCluster({ name: 'plr-ssh', quotaBytes: 64 * 1024 * 1024 });
      const base = cluster.inventory();
      const members = base.members.map((m) => (m.name === 'm3' ? { ...m, ssh: sshd.host } : m));
      const inv = cluster.writeInventory(join(cluster.dir, 'cluster.yaml'), { members });
      const stateDir = join(cluster.dir, 'state');
      const client = cluster.client();
      const keys: Record<string, string> = {};
      for (let i = 0; i < 20; i++) {
        keys[`ssh/${i}`] = `v${i}`;
        await client.put(`ssh/${i}`).value(`v${i}`).exec();
      }
      const filler = 'f'.repeat(256 * 1024);
      for (let i = 0; i < 6; i++) {
        keys[`filler/${i}`] = filler;
        await client.put(`filler/${i}`).value(filler).exec();
      }
      await cluster.snapshot(join(cluster.dir, 'snapshots', 'plr-ssh-1.db'));
      await client.put('after/snapshot').value('lost').exec();
      for (const m of cluster.members) await cluster.kill(m.name);
      for (const m of cluster.members) damageMember(m, 'db');
      // The damage is real: etcd itself, started on each member's data, refuses it (its own log says so).
      const refused = await expectEtcdRefuses(cluster, cluster.members.map((m) => m.name));
      for (const m of cluster.members) expect(refused[m.name]).toMatch(ETCD_REFUSES);
      cluster.checkpointData(); // teardown fails the test if any of these files is deleted instead of moved aside

      const r = await runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir, '--yes', '--json', '-p', 'restartWait=20s', ...rewindParams()]);
      const runId = readdirSync(join(stateDir, 'runs'))[0]!;
      const m3 = cluster.members.find((m) => m.name === 'm3')!;
      // The whole runbook runs through the runner, m3's data dir moved aside and restored over ssh.
      expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);
      const movedM3 = (readJournal(join(stateDir, 'runs', runId, 'journal.jsonl')).records as any[]).find((x) => x.type === 'step.succeeded' && x.stepId === 'move-aside' && x.item === 'm3');
      expect(movedM3?.output?.to).toMatch(/\.pre-restore-/);

      const recs = readJournal(join(stateDir, 'runs', runId, 'journal.jsonl')).records as any[];
      const out = (step: string, item?: string) =>
        recs.findLast((x) => x.type === 'step.succeeded' && x.stepId === step && (item === undefined || x.item === item))?.output;
      const restored = out('restore', 'm3');
      expect(restored.host).toBe(`ssh ${sshd.host.user}@127.0.0.1:${sshd.port}`);
      expect(restored.stagedSnapshot).toBe(join(dirname(m3.dataDir), `.runbook-snapshot-${restored.sha256.slice(0, 16)}.db`));
      expect(out('restore', 'm1').host).toBe('this machine');
      expect(existsSync(restored.stagedSnapshot)).toBe(true);
      expect(JSON.parse(readFileSync(join(m3.dataDir, 'runbook-restore.json'), 'utf8'))).toMatchObject({ token: restored.token, sha256: restored.sha256 });

      await cluster.waitHealthy(40_000, { members: ['m1', 'm2', 'm3'] });
      expect(await cluster.client('m3').getAll().prefix('').strings()).toEqual(keys);
      // The member runs from the pid file the remote driver wrote, with the inventory's command line.
      const pid = cluster.pid('m3');
      expect(pid).toBeDefined();
      for (const m of cluster.members) {
        expect(existsSync(`${m.dataDir}.part`)).toBe(false);
        const asides = readdirSync(dirname(m.dataDir)).filter((e) => e.startsWith(`${basename(m.dataDir)}.pre-restore-`));
        expect(asides, m.name).toHaveLength(1);
        expect(existsSync(join(dirname(m.dataDir), asides[0]!, 'member', 'snap', 'db'))).toBe(true);
      }
    }, 300_000);
  });
});
