/**
 * Member lifecycle actions through the process driver against a real 3-member cluster: a rolling quota raise
 * (followers first, leader last, leadership handed off), stop/start with their probes, a plain restart after
 * every member was killed, a restart that cannot form a quorum because two members' data is damaged, and moving
 * data dirs aside (refused while a member runs; never overwrites).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { catalog } from '../../src/actions/catalog.ts';
import { resolveMembers } from '../../src/actions/resolve-members.ts';
import { actions } from '../support/actions.ts';
import { flagValue } from '../../src/actions/members-set-flag.ts';
import type { ActionContext, ActionImpl } from '../../src/actions/types.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { StepError } from '../../src/util/errors.ts';
import { damageMember } from '../support/damage.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeActionContext, memberItem, type TestActionContext, stepError, action } from '../support/action-context.ts';

const MiB = 1024 * 1024;


const setFlag = action('members.set-flag');
const stop = action('members.stop');
const start = action('members.start');
const tryRestart = action('members.try-restart');
const moveAside = action('members.move-data-aside');
const memberHealthy = action('etcd.member-healthy');
const clusterHealthy = action('etcd.cluster-healthy');


function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
}

/** Put `total` bytes in 1 MiB values (distinct keys, so nothing is compacted away). */
async function writeBytes(client: Etcd3, total: number): Promise<void> {
  const value = Buffer.alloc(MiB, 0x62);
  for (let i = 0; i * MiB < total; i++) await client.put(`runbook-test/big/${i}`).value(value).exec();
}

// A fresh cluster for each test, which brings it to the state it needs (members stopped, data damaged) itself: any
// order, any subset.
describe('member lifecycle through the process driver (3 members)', () => {
  let cluster: TestCluster;
  let inv: Inventory;
  let t: TestActionContext;
  const step = (id: string, member?: string, more: Partial<ActionContext> = {}) =>
    t.step(id, { ...(member ? { item: memberItem(inv, member) } : {}), ...more });

  beforeEach(async () => {
    cluster = await startCluster({ members: 3, quotaBytes: 16 * MiB, name: 'members' });
    inv = cluster.inventory();
    t = makeActionContext(inv);
  }, 90_000);

  afterEach(async () => {
    await t?.dispose();
    await cluster?.teardown();
  });

  it('raises the quota with a rolling restart: followers first, leadership handed off before the leader restarts', async () => {
    const NEW = 40 * MiB;
    const order = (await resolveMembers(step('raise'), 'voters', 'followers-then-leader')).map((m) => m.name);
    const leader = order.at(-1)!;
    expect((await cluster.status(leader)).leader).toBe((await cluster.status(leader)).memberId);
    const before = Object.fromEntries(order.map((n) => [n, cluster.pid(n)!]));
    const input = setFlag.input({ flag: 'quota-backend-bytes', value: NEW });
    const done: string[] = [];
    const outs: any[] = [];
    for (const [i, name] of order.entries()) {
      const ctx = step('raise-quota', undefined, { item: memberItem(inv, name, { index: i, done: [...done] }) });
      expect((await setFlag.impl.probe!(ctx, input)).done).toBe(false);
      const out = await setFlag.impl.run(ctx, input);
      await setFlag.impl.verify!(ctx, input, out);
      outs.push(out);
      await memberHealthy.impl.run(ctx, memberHealthy.input({ waitFor: '20s' })); // the gate
      done.push(name);
    }
    expect(outs.map((o) => o.member)).toEqual(order);
    expect(outs.every((o) => o.restarted && o.previous === String(16 * MiB) && o.value === String(NEW))).toBe(true);
    expect(outs.slice(0, 2).every((o) => o.leaderMovedTo === undefined)).toBe(true);
    expect(done.slice(0, 2)).toContain(outs[2].leaderMovedTo); // handed to an already-restarted follower
    for (const name of order) {
      const pid = cluster.pid(name)!;
      expect(pid).not.toBe(before[name]);
      expect(cmdline(pid).join(' ')).toContain(`--quota-backend-bytes ${NEW}`);
    }
    // Done means done: the probe sees the new value running.
    for (const name of order) expect(await setFlag.impl.probe!(step('raise-quota', name), input)).toMatchObject({ done: true, output: { restarted: false } });
    // The new quota is in force: more than the old 16 MiB fits without a NOSPACE alarm.
    await writeBytes(cluster.client(), 20 * MiB);
    expect(await cluster.alarms()).toEqual([]);
    await clusterHealthy.impl.run(step('verify'), clusterHealthy.input({ waitFor: '20s', expectVoters: 3 }));
  });

  it('a flag written with its 3.6 name is set under the name this member\'s etcd reads (3.4/3.5: experimental-)', async () => {
    const order = (await resolveMembers(step('flag'), 'voters', 'followers-then-leader')).map((m) => m.name);
    const follower = order[0]!;
    const input = setFlag.input({ flag: 'compaction-batch-limit', value: 500 });
    const ctx = step('set-flag', undefined, { item: memberItem(inv, follower, { index: 0, done: [] }) });
    const out = await setFlag.impl.run(ctx, input);
    await setFlag.impl.verify!(ctx, input, out);
    expect(out).toMatchObject({ flag: 'experimental-compaction-batch-limit', value: '500', restarted: true });
    const argv = cmdline(cluster.pid(follower)!).join(' ');
    expect(argv).toContain('--experimental-compaction-batch-limit=500'); // absent before: appended as --flag=value
    expect(argv).not.toMatch(/(^| )--compaction-batch-limit/); // etcd 3.4/3.5 would refuse to start on it
    expect(await setFlag.impl.probe!(step('set-flag', follower), input)).toMatchObject({ done: true });
    await memberHealthy.impl.run(ctx, memberHealthy.input({ waitFor: '20s' }));
  });

  it('rolls a bad value back when the member exits at once, so it runs again', async () => {
    expect(flagValue('quota-backend-bytes', '8GiB')).toBe('8589934592');
    expect(flagValue('snapshot-count', '8GiB')).toBe('8GiB');
    const follower = (await resolveMembers(step('raise'), 'voters', 'followers-then-leader'))[0]!.name;
    const err = await stepError(setFlag.impl.run(step('bad-flag', follower), setFlag.input({ flag: 'snapshot-count', value: 'lots' })));
    expect(err).toMatchObject({ kind: 'failed', member: follower });
    expect(err.message).toMatch(/would not run with --snapshot-count=lots .*rolled back to 10000 and it runs again/s);
    expect(err.message).toMatch(/invalid value "lots"/);
    expect(cmdline(cluster.pid(follower)!).join(' ')).toContain('--snapshot-count 10000');
    await cluster.waitHealthy(15_000, { members: ['m1', 'm2', 'm3'] });
  });

  it('stops and starts a member; probes see the effect', async () => {
    const name = 'm3';
    expect((await stop.impl.probe!(step('stop', name), {})).done).toBe(false);
    const s = await stop.impl.run(step('stop', name), {});
    await stop.impl.verify!(step('stop', name), {}, s);
    expect(s).toMatchObject({ member: name, wasRunning: true, pid: expect.any(Number) });
    expect(cluster.pid(name)).toBeUndefined();
    expect(await stop.impl.probe!(step('stop', name), {})).toMatchObject({ done: true });

    // With m3 down, restarting another member would stop the cluster: refused, nothing touched.
    const pidM1 = cluster.pid('m1');
    const refused = await stepError(setFlag.impl.run(step('raise-quota', 'm1'), setFlag.input({ flag: 'snapshot-count', value: 5000 })));
    expect(refused).toMatchObject({ kind: 'precondition', member: 'm1' });
    expect(refused.message).toMatch(/would lose quorum/);
    expect(cluster.pid('m1')).toBe(pidM1);
    expect(await setFlag.impl.plan!(step('raise-quota', 'm1'), setFlag.input({ flag: 'snapshot-count', value: 5000 }))).toMatch(/m1: --snapshot-count 10000 → 5000/);

    expect((await start.impl.probe!(step('start', name), start.input())).done).toBe(false);
    const r = await start.impl.run(step('start', name), start.input({ waitFor: '20s' }));
    expect(r).toMatchObject({ member: name, answering: true, pid: cluster.pid(name) });
    expect(await start.impl.probe!(step('start', name), start.input())).toMatchObject({ done: true });
    await cluster.waitHealthy(15_000, { members: ['m1', 'm2', 'm3'] });
  });

  it('try-restart brings every member back after all were killed', async () => {
    for (const m of cluster.members) await cluster.kill(m.name, 'SIGKILL');
    const out = await tryRestart.impl.run(step('try-restart'), tryRestart.input({ waitFor: '30s' }));
    expect(out).toMatchObject({ recovered: true, leader: expect.any(String) });
    expect(out.detail).toMatch(/write went through/);
    expect(out.members.map((m: any) => [m.name, m.started, m.running])).toEqual([['m1', true, true], ['m2', true, true], ['m3', true, true]]);
    expect(out.members.filter((m: any) => m.answering).length).toBeGreaterThanOrEqual(2);
    await cluster.waitHealthy(15_000, { members: ['m1', 'm2', 'm3'] });
    // Nothing to start the second time.
    const again = await tryRestart.impl.run(step('try-restart'), tryRestart.input({ waitFor: '10s' }));
    expect(again.recovered).toBe(true);
    expect(again.members.every((m: any) => !m.started)).toBe(true);
  });

  it('start waits for an answer only when enough members run for a quorum', async () => {
    for (const m of cluster.members) await stop.impl.run(step('stop-members', m.name), {});
    const first = await start.impl.run(step('start-members', 'm1'), start.input({ waitFor: '20s' }));
    expect(first).toMatchObject({ member: 'm1', answering: false, waitingForQuorum: true, pid: cluster.pid('m1') });
    const second = await start.impl.run(step('start-members', 'm2'), start.input({ waitFor: '20s' }));
    expect(second).toMatchObject({ member: 'm2', answering: true });
    expect(await start.impl.run(step('start-members', 'm3'), start.input({ waitFor: '20s' }))).toMatchObject({ answering: true });
    await cluster.waitHealthy(15_000, { members: ['m1', 'm2', 'm3'] });
  });

  it('move-data-aside refuses while the member runs, naming it', async () => {
    const err = await stepError(moveAside.impl.run(step('move-aside', 'm1'), moveAside.input()));
    expect(err.kind).toBe('precondition');
    expect(err.member).toBe('m1');
    expect(err.message).toMatch(/m1.*runs/);
    expect(existsSync(cluster.members[0]!.dataDir)).toBe(true);
  });

  it('try-restart reports no quorum (never fails) when two members exit on damaged data, with their log tails', async () => {
    for (const m of cluster.members) await stop.impl.run(step('stop-members', m.name), {});
    // Both meta pages of their dbs zeroed: etcd panics on open ("invalid database").
    for (const name of ['m1', 'm2']) damageMember(cluster.members.find((m) => m.name === name)!, 'db');
    const out = await tryRestart.impl.run(step('try-restart'), tryRestart.input({ waitFor: '40s' }));
    expect(out.recovered).toBe(false);
    // It gave up because no quorum could form (two of three members lost to their data), not because its wait
    // ran out ("no healthy quorum after …"); it saw the damage and did not count on the damaged members.
    expect(out.detail).toMatch(/^no quorum can form: /);
    expect(out.detail).toMatch(/m1 has a data error \(.*(invalid database|failed to open database)/);
    expect(out.detail).toMatch(/m2 has a data error \(.*(invalid database|failed to open database)/);
    expect(out.detail).not.toMatch(/no healthy quorum after/);
    const logs = t.logs.join('\n');
    for (const name of ['m1', 'm2']) expect(logs).toMatch(new RegExp(`${name} cannot start on its data .*: not starting it again`));
    const byName = Object.fromEntries(out.members.map((m: any) => [m.name, m]));
    for (const name of ['m1', 'm2']) {
      expect(byName[name]).toMatchObject({ started: true, running: false, answering: false, exited: true });
      expect(byName[name].logTail).toEqual(expect.any(String));
      expect(byName[name].logTail).toMatch(/invalid database|failed to open database/);
      expect(byName[name].logTail).not.toMatch(/goroutine/);
    }
    expect(byName.m3).toMatchObject({ started: true, running: true, answering: false });
    await stop.impl.run(step('stop-members', 'm3'), {});
  }, 60_000);

  it('move-data-aside refuses while anything else listens on the stopped member\'s port, naming that process', async () => {
    const m1 = cluster.members.find((m) => m.name === 'm1')!;
    await stop.impl.run(step('stop-members', 'm1'), {});
    expect((await actions['members.stop']!.probe!(step('stop-members', 'm1'), {})).done).toBe(true); // m1 is stopped
    const port = Number(new URL(m1.clientURL).port);
    const squatter = createServer();
    await new Promise<void>((resolve, reject) => squatter.once('error', reject).listen(port, '127.0.0.1', resolve));
    try {
      const err = await stepError(moveAside.impl.run(step('move-aside', 'm1'), moveAside.input()));
      expect(err.kind).toBe('precondition');
      expect(err.message).toContain(`something accepts connections on ${m1.clientURL} (pid ${process.pid}: node)`);
      expect(existsSync(m1.dataDir)).toBe(true);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('moves every stopped data dir aside with a timestamp; the probe then says done; nothing is deleted', async () => {
    for (const m of cluster.members) await stop.impl.run(step('stop-members', m.name), {});
    for (const m of cluster.members) {
      const ctx = step('move-aside', m.name);
      expect((await moveAside.impl.probe!(ctx, moveAside.input())).done).toBe(false);
      const out = await moveAside.impl.run(ctx, moveAside.input({ label: 'pre-restore' }));
      await moveAside.impl.verify!(ctx, moveAside.input(), out);
      expect(out.from).toBe(m.dataDir);
      expect(basename(out.to)).toMatch(new RegExp(`^${basename(m.dataDir).replace('.', '\\.')}\\.pre-restore-\\d{8}T\\d{6}Z(-\\d+)?$`));
      expect(existsSync(m.dataDir)).toBe(false);
      expect(readdirSync(join(out.to, 'member'))).toEqual(expect.arrayContaining(['snap', 'wal']));
      expect(await moveAside.impl.probe!(ctx, moveAside.input())).toMatchObject({ done: true, output: { to: out.to } });
      expect(await moveAside.impl.run(ctx, moveAside.input())).toMatchObject({ to: out.to });
    }
    const siblings = readdirSync(dirname(cluster.members[0]!.dataDir)).filter((e) => e.includes('.pre-restore-'));
    expect(siblings).toHaveLength(3);
  });
});
