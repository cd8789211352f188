/**
 * nospace-recovery through the real CLI, the two variants an operator meets in production:
 * - with a quota raise: a rolling restart through the process driver while a prober checks quorum every 100 ms;
 * - with a kubeconfig: the runbook's verify-kubernetes step runs the real kubectl against an API-server STAND-IN
 *   (test/support/apiserver-standin.ts: there is no kube-apiserver on these machines; its /readyz is ok only while
 *   the real test etcd accepts a write).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/store/journal.ts';
import { createEtcdClient } from '../../src/etcd/client.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { startApiServerStandin, type ApiServerStandin } from '../support/apiserver-standin.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const MiB = 1024 * 1024;
let cluster: TestCluster | undefined;
let standin: ApiServerStandin | undefined;
let stateDir = '';

afterEach(async () => {
  await standin?.close();
  await cluster?.teardown();
  cluster = undefined;
  standin = undefined;
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

function cli(args: string[]) {
  return runCli(args, { timeout: 180_000 });
}

function cmdline(pid: number): string[] {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
}

/**
 * Every 100 ms, every member is asked for its status (1 s deadline); a tick where fewer than a majority answer is
 * a tick without quorum. (A linearizable read is not the measure: it also fails for the moment a leadership
 * transfer takes, which loses no quorum.)
 */
function quorumProber(endpoints: string[]) {
  const clients = endpoints.map((h) => createEtcdClient({ hosts: h, deadline: 1000 }));
  const majority = Math.floor(endpoints.length / 2) + 1;
  let ticks = 0;
  let lost = 0;
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 3000; i++) {
      const ok = await Promise.all(clients.map((c) => c.maintenance.status().then(() => true, () => false)));
      ticks++;
      if (ok.filter(Boolean).length < majority) lost++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      for (const c of clients) c.close();
      return { ticks, lost };
    },
  };
}

describe('nospace-recovery: quota raise and kubectl (real cluster, real CLI)', () => {
  it('raises the quota with a rolling restart, one member at a time, without losing quorum, then recovers', async () => {
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB });
    await cluster.fillToNospace();
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-state-'));
    const inv = cluster.writeInventory();
    const pidsBefore = cluster.members.map((m) => cluster!.pid(m.name)!);
    const prober = quorumProber(cluster.endpoints);
    const r = await cli(['run', 'nospace-recovery', '-i', inv, '--state-dir', stateDir, '-p', 'quotaBytes=32MiB', '--yes']);
    const probe = await prober.stop();
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(probe.ticks).toBeGreaterThan(5);
    expect(probe.lost, 'ticks where fewer than a majority of members answered').toBe(0);

    // every member runs again, as a new process, with the new flag
    for (const [i, m] of cluster.members.entries()) {
      const pid = cluster.pid(m.name)!;
      expect(pid).not.toBe(pidsBefore[i]);
      expect(cmdline(pid).join(' ')).toMatch(/--quota-backend-bytes[= ]33554432/);
    }
    // one at a time: each member's restart finished (and its gate passed) before the next started
    const recs = readJournal(path.join(stateDir, 'runs', fs.readdirSync(path.join(stateDir, 'runs'))[0]!, 'journal.jsonl')).records;
    const seq = recs.filter((x) => (x as { stepId?: string }).stepId === 'raise-quota' && (x.type === 'step.started' || x.type === 'step.succeeded')).map((x) => `${x.type}:${(x as { item?: string }).item}`);
    expect(seq).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) expect(seq[i]!.split(':')[1]).toBe(seq[i + 1]!.split(':')[1]);
    expect(recs.find((x) => x.type === 'approval.granted' && x.stepId === 'raise-quota')).toBeDefined();
    expect(await cluster.alarms()).toEqual([]);
    await cluster.client().put('/after').value('ok');
  });

  it('a quota raise to a value no larger than the data is refused before anything changes (quotaBytes=1.5 is 2 bytes)', async () => {
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB });
    await cluster.fillToNospace();
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-state-'));
    const pids = cluster.members.map((m) => cluster!.pid(m.name));
    const r = await cli(['run', 'nospace-recovery', '-i', cluster.writeInventory(), '--state-dir', stateDir, '-p', 'quotaBytes=1.5', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/quotaBytes 2 B is too small/);
    expect(cluster.members.map((m) => cluster!.pid(m.name))).toEqual(pids); // nobody was restarted
    expect((await cluster.alarms()).map((a) => a.alarm)).toContain('NOSPACE');
  });

  it('verify-kubernetes runs the real kubectl: fails while etcd is full (readyz), the recovered cluster passes', async () => {
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB });
    standin = await startApiServerStandin({ etcd: cluster.endpoints, nodes: [{ name: 'cp-1', ready: true }] });
    const kubeconfig = standin.writeKubeconfig(path.join(cluster.dir, 'kubeconfig'), 'standin');
    const inv = cluster.writeInventory(undefined, { kubernetes: { kubeconfig, context: 'standin' } });
    await cluster.fillToNospace();
    expect((await fetch(`${standin.url}/readyz`)).status).toBe(500); // the API server is not ready while etcd is full
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-state-'));
    const r = await cli(['run', 'nospace-recovery', '-i', inv, '--state-dir', stateDir]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ verify-kubernetes/);
    expect(standin.requests.filter((x) => /^GET \/readyz\S* 200/.test(x)), standin.requests.join('\n')).not.toEqual([]);
    expect(standin.unknownPaths).toEqual([]);
  });
});
