/**
 * kubectl.verify with the real kubectl binary against an API-server STAND-IN (test/support/apiserver-standin.ts),
 * and control-plane fencing (kubernetes.stop-apiservers / start-apiservers) with the stand-in run as a process
 * through the process driver.
 *
 * Why a stand-in: there is no kube-apiserver (nor any control plane) on these machines. What it models: plain HTTP
 * on 127.0.0.1 serving exactly what kubectl asks for `get --raw /readyz` and `get nodes -o json` (/version, legacy
 * discovery, /readyz, /api/v1/nodes); /readyz is 200 "ok" only while the real test etcd accepts a write (canary
 * put + delete, 1 s deadline), else 500 with "[-]etcd failed: <why>"; node listing needs a linearizable etcd read.
 * Not modelled: TLS, auth, watches, other resources. Paths it does not know are recorded, and the test asserts
 * kubectl asked for none.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalog } from '../../src/actions/catalog.ts';
import { resolveMembers } from '../../src/actions/resolve-members.ts';
import { actions } from '../support/actions.ts';
import type { ActionImpl } from '../../src/actions/types.ts';
import { isAlive } from '../../src/drivers/process.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { StepError } from '../../src/util/errors.ts';
import { freePorts, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeActionContext, memberItem, type TestActionContext, stepError } from '../support/action-context.ts';
import { startApiServerStandin, writeKubeconfig, type ApiServerStandin } from '../support/apiserver-standin.ts';

const MiB = 1024 * 1024;
const verify: ActionImpl = actions['kubectl.verify']!;
const stopApi: ActionImpl = actions['kubernetes.stop-apiservers']!;
const startApi: ActionImpl = actions['kubernetes.start-apiservers']!;
const verifyInput = (raw: Record<string, unknown>) => catalog['kubectl.verify'].input.parse(raw);
const etcd = (name: keyof typeof actions & keyof typeof catalog) => ({
  impl: actions[name]!,
  input: (raw: Record<string, unknown> = {}) => (catalog[name].input as any).parse(raw),
});


describe('kubectl.verify against an API-server stand-in on a real etcd', () => {
  let cluster: TestCluster;
  let standin: ApiServerStandin;
  let inv: Inventory;
  let t: TestActionContext;

  beforeAll(async () => {
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB, name: 'kubectl' });
    standin = await startApiServerStandin({ etcd: cluster.endpoints, nodes: [{ name: 'cp-1', ready: true }, { name: 'cp-2', ready: true }] });
    const kubeconfig = standin.writeKubeconfig(join(cluster.dir, 'kubeconfig'), 'standin');
    inv = cluster.inventory({ kubernetes: { kubeconfig, context: 'standin' } });
    t = makeActionContext(inv);
  }, 90_000);

  afterAll(async () => {
    await t?.dispose();
    await standin?.close();
    await cluster?.teardown();
  });

  it('passes on a healthy cluster, fails on readyz once etcd is out of space, passes again after compaction, defrag and disarm', async () => {
    const ok = await verify.run(t.step('verify-kubernetes'), verifyInput({ checks: ['readyz', 'nodes-ready'], waitFor: '20s' }));
    expect(ok).toMatchObject({ checks: { readyz: 'ok', 'nodes-ready': '2/2 Ready' }, nodes: ['cp-1', 'cp-2'] });

    await cluster.fillToNospace();
    const err = await stepError(verify.run(t.step('verify-kubernetes'), verifyInput({ checks: ['readyz', 'nodes-ready'], waitFor: '3s' })));
    expect(err.message).toMatch(/readyz: kubectl exited 1: \[-\]etcd failed: mvcc: database space exceeded/);
    expect(err.message).not.toMatch(/nodes-ready:/); // reads still work: only readyz failed
    expect(err.message).not.toContain(readFileSync(inv.kubernetes!.kubeconfig!, 'utf8').slice(0, 40));

    // Recover with the etcd actions, as nospace-recovery does.
    // run + verify, as the runner does: verify waits until every voter has deleted the old revisions, without
    // which a follower still compacting is defragmented to no effect and stays above the quota.
    const compact = etcd('etcd.compact');
    await compact.impl.verify!(t.step('compact'), compact.input(), await compact.impl.run(t.step('compact'), compact.input()));
    const order = (await resolveMembers(t.step('defrag'), 'voters', 'followers-then-leader')).map((m) => m.name);
    const done: string[] = [];
    for (const [i, name] of order.entries()) {
      await etcd('etcd.defrag').impl.run(t.step('defrag', { item: memberItem(inv, name, { index: i, done: [...done], moveLeaderFirst: true }) }), etcd('etcd.defrag').input());
      done.push(name);
    }
    await etcd('etcd.alarm-disarm').impl.run(t.step('disarm'), etcd('etcd.alarm-disarm').input({ alarm: 'NOSPACE' }));

    const back = await verify.run(t.step('verify-kubernetes'), verifyInput({ checks: ['readyz', 'nodes-ready'], waitFor: '20s' }));
    expect(back.checks).toEqual({ readyz: 'ok', 'nodes-ready': '2/2 Ready' });
    expect(standin.unknownPaths).toEqual([]);
  });

  it('names the node that is not Ready', async () => {
    standin.nodes[1]!.ready = false;
    try {
      const err = await stepError(verify.run(t.step('verify-kubernetes'), verifyInput({ checks: ['nodes-ready'], waitFor: '1s' })));
      expect(err.message).toMatch(/nodes-ready: 1 of 2 not Ready: cp-2 Ready=False \(KubeletNotReady\)/);
    } finally {
      standin.nodes[1]!.ready = true;
    }
  });

  it('fences: stops and starts the API servers through the process driver; kubectl sees them go and come back', async () => {
    const [port] = await freePorts(1);
    const script = new URL('../support/apiserver-standin.ts', import.meta.url).pathname;
    const fenced: Inventory = {
      ...inv,
      kubernetes: {
        kubeconfig: writeKubeconfig(join(cluster.dir, 'kubeconfig-fenced'), `http://127.0.0.1:${port}`, 'fenced'),
        context: 'fenced',
        apiServers: [{
          name: 'kube-apiserver-1',
          driver: {
            type: 'process',
            command: [process.execPath, script, '--port', String(port), '--etcd', cluster.endpoints.join(',')],
            pidFile: join(cluster.dir, 'kube-apiserver-1.pid'),
            logFile: join(cluster.dir, 'kube-apiserver-1.log'),
          },
        }],
      },
    };
    const f = makeActionContext(fenced);
    try {
      expect((await startApi.probe!(f.step('unfence'), {})).done).toBe(false);
      const started = await startApi.run(f.step('unfence'), {});
      const pid = started.servers[0].pid as number;
      expect(started.servers).toEqual([{ name: 'kube-apiserver-1', wasRunning: false, pid: expect.any(Number) }]);
      expect(isAlive(pid)).toBe(true);
      expect(await startApi.probe!(f.step('unfence'), {})).toMatchObject({ done: true });
      await verify.run(f.step('verify-kubernetes'), verifyInput({ checks: ['readyz'], waitFor: '20s' }));

      expect((await stopApi.probe!(f.step('fence'), {})).done).toBe(false);
      const stopped = await stopApi.run(f.step('fence'), {});
      await stopApi.verify!(f.step('fence'), {}, stopped);
      expect(stopped.servers).toEqual([{ name: 'kube-apiserver-1', wasRunning: true, pid }]);
      expect(isAlive(pid)).toBe(false);
      expect(await stopApi.probe!(f.step('fence'), {})).toMatchObject({ done: true });
      const down = await stepError(verify.run(f.step('verify-kubernetes'), verifyInput({ checks: ['readyz'], waitFor: '1s' })));
      expect(down.message).toMatch(/readyz: kubectl exited 1: .*(refused|connect)/i);

      await startApi.run(f.step('unfence'), {});
      const again = await verify.run(f.step('verify-kubernetes'), verifyInput({ checks: ['readyz', 'nodes-ready'], waitFor: '20s' }));
      expect(again.checks.readyz).toBe('ok');
    } finally {
      await stopApi.run(f.step('cleanup'), {}).catch(() => {});
      await f.dispose();
    }
  });

  it('without apiServers in the inventory, fencing is a reported no-op', async () => {
    const bare = makeActionContext(cluster.inventory());
    expect(await stopApi.probe!(bare.step('fence'), {})).toMatchObject({ done: true, output: { servers: [] } });
    expect(await stopApi.run(bare.step('fence'), {})).toEqual({ servers: [] });
    await bare.dispose();
  });
});
