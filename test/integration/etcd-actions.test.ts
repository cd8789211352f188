/**
 * The etcd actions against a real 3-member cluster filled to NOSPACE, called in the order of nospace-recovery,
 * plus refusals (member down, member frozen, disarm above quota) and a TLS cluster.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { catalog } from '../../src/actions/catalog.ts';
import { resolveMembers } from '../../src/actions/resolve-members.ts';
import { actions } from '../support/actions.ts';
import type { ActionContext, ActionImpl } from '../../src/actions/types.ts';
import { etcdPool } from '../../src/actions/etcd-common.ts';
import { defragmentOnce } from '../../src/actions/etcd-defrag.ts';
import { memberStatus } from '../../src/etcd/status.ts';
import { isNoSpace } from '../../src/etcd/errors.ts';
import { StepError } from '../../src/util/errors.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeActionContext, memberItem, type TestActionContext, stepError, action } from '../support/action-context.ts';

const MiB = 1024 * 1024;
const QUOTA = 16 * MiB;


const preflight = action('etcd.preflight');
const compact = action('etcd.compact');
const defrag = action('etcd.defrag');
const disarm = action('etcd.alarm-disarm');
const writeProbe = action('etcd.write-probe');
const memberHealthy = action('etcd.member-healthy');
const clusterHealthy = action('etcd.cluster-healthy');
const moveLeader = action('etcd.move-leader');


const timings: Record<string, number> = {};
async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[label] = Math.round(performance.now() - t0);
  }
}

describe('nospace recovery through the etcd actions (3 members, 16 MiB quota)', () => {
  let cluster: TestCluster;
  let t: TestActionContext;
  const step = (id: string, more: Partial<ActionContext> = {}) => t.step(id, more);

  // A cluster of its own for each test (the recovery test fills it to NOSPACE itself, another stops a member): any
  // order, any subset.
  beforeEach(async () => {
    cluster = await startCluster({ members: 3, quotaBytes: QUOTA, name: 'nospace' });
    t = makeActionContext(cluster.inventory());
  }, 90_000);

  afterEach(async () => {
    await t?.dispose();
    await cluster?.teardown();
  });

  afterAll(() => {
    if (Object.keys(timings).length) console.log('etcd action timings (ms):', JSON.stringify(timings));
  });

  it('runs preflight, refuses to disarm above quota, compacts once, defragments followers then leader, disarms, writes', async () => {
    await cluster.fillToNospace();
    const names = cluster.members.map((m) => m.name);

    // --- preflight: NOSPACE is expected; sizes, leader, quota as the members report it on /metrics.
    const pre = await timed('preflight', () => preflight.impl.run(step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'] })));
    expect(pre.alarms.map((a: any) => a.alarm)).toContain('NOSPACE');
    expect(pre.quotaBytes).toBe(QUOTA);
    expect(pre.quotaSource).toBe('member /metrics');
    expect(pre.members.map((m: any) => m.name)).toEqual(names);
    for (const m of pre.members) {
      expect(m).toMatchObject({ reachable: true, isLearner: false, memberId: expect.stringMatching(/^[0-9a-f]+$/) });
      expect(m.dbSize).toBeGreaterThan(QUOTA * 0.75);
      expect(m.dbSizeInUse).toBeGreaterThan(0);
      expect(m.diskFreeBytes).toBeGreaterThan(m.dbSize);
    }
    expect(pre.members.filter((m: any) => m.isLeader).map((m: any) => m.name)).toEqual([pre.leader.name]);
    expect(pre.atQuota.length).toBeGreaterThan(0);
    t.ctx.steps.preflight = { status: 'succeeded', output: JSON.parse(JSON.stringify(pre)) };

    // --- everything read-only (preflight, probes, plans, health checks) leaves no trace in the raft log or the dbs:
    // a plan against a cluster out of space must not write to it (an Alarm GET would: it is a raft proposal).
    const pool = etcdPool(step('x'));
    const trace = async () => Promise.all(names.map(async (n) => { const s = await memberStatus(pool, n); return [n, s.raftIndex, s.raftAppliedIndex, s.dbSize]; }));
    // The trace once the cluster is quiet: every member has applied what it has, and nothing moved over 200 ms (a
    // backend commit lands within its 100 ms batch interval). Polled, bounded: a loaded machine only waits longer.
    const settledTrace = async () => {
      let last = await trace();
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const now = await trace();
        const settled = JSON.stringify(now) === JSON.stringify(last) && now.every((x) => x[1] === x[2]);
        last = now;
        if (settled) return now;
      }
      throw new Error(`the cluster did not settle in 10 s: ${JSON.stringify(last)}`);
    };
    // Start from a settled cluster: followers may still be applying (and committing) the last writes of the fill.
    const traceBefore = await settledTrace();
    const item0 = { item: memberItem(cluster.inventory(), names[0]!) };
    await preflight.impl.run(step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'] }));
    for (const [a, ctx] of [[compact, step('compact')], [disarm, step('disarm')], [defrag, step('defrag', item0)], [moveLeader, step('move', item0)]] as const) {
      await a.impl.probe!(ctx, a.input());
      await a.impl.plan!(ctx, a.input());
    }
    // The gate fails exactly when m1 itself raised the alarm (as preflight listed it), and passes otherwise.
    const m1Alarmed = pre.alarms.some((a: any) => a.memberId === pre.members.find((m: any) => m.name === names[0]).memberId);
    const gate = memberHealthy.impl.run(step('gate', item0), memberHealthy.input({ waitFor: '1ms' }));
    if (m1Alarmed) expect((await stepError(gate)).message).toMatch(/NOSPACE/);
    else expect(await gate).toMatchObject({ member: names[0] });
    await stepError(clusterHealthy.impl.run(step('verify'), clusterHealthy.input({ waitFor: '1ms' }))); // alarms: not healthy
    expect(await settledTrace()).toEqual(traceBefore);

    // --- disarm refuses while the db is still above the quota, and leaves the alarm in place.
    const refused = await stepError(disarm.impl.run(step('disarm'), disarm.input({ alarm: 'NOSPACE' })));
    expect(refused.kind).toBe('precondition');
    expect(refused.message).toMatch(/db size above 95% of the quota of 16\.0 MiB \(16777216 bytes, member \/metrics\) on m\d/);
    expect((await cluster.alarms()).map((a) => a.alarm)).toContain('NOSPACE');

    // --- writes fail with NOSPACE (a precondition, not a retryable error), and each fails once: the library's
    // retries and circuit breaker are off, so the same members still answer at once afterwards.
    for (let i = 0; i < 3; i++) {
      const nospace = await stepError(writeProbe.impl.run(step('verify-writes'), writeProbe.input({})));
      expect(nospace.kind).toBe('precondition');
      expect(isNoSpace(nospace)).toBe(true);
      expect(nospace.message).toMatch(/^m\d: put \/runbook\/canary: mvcc: database space exceeded/);
    }
    await preflight.impl.run(step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'] }));

    // --- compact: once; a second run and the probe both say done.
    expect((await compact.impl.probe!(step('compact'), compact.input({}))).done).toBe(false);
    const c1 = await timed('compact', () => compact.impl.run(step('compact'), compact.input({})));
    expect(c1).toMatchObject({ alreadyCompacted: false, revision: pre.revision });
    await compact.impl.verify!(step('compact'), compact.input({}), c1);
    const probe = await compact.impl.probe!(step('compact'), compact.input({}));
    expect(probe).toMatchObject({ done: true, output: { revision: c1.revision, alreadyCompacted: true } });
    // A second run is answered by etcd itself ("already compacted"); it has no deletes to wait for, so its verify
    // passes at once instead of waiting for compaction counts that will never go up.
    const c2 = await compact.impl.run(step('compact'), compact.input({}));
    expect(c2).toMatchObject({ alreadyCompacted: true, revision: c1.revision });
    expect(c2.finishedBefore).toBeUndefined();
    await compact.impl.verify!(step('compact', { deadline: Date.now() + 5000 }), compact.input({}), c2);

    // --- defrag: voters followers-then-leader; leadership leaves the leader before its defrag.
    const order = (await resolveMembers(step('defrag'), 'voters', 'followers-then-leader')).map((m) => m.name);
    expect([...order].sort()).toEqual([...names].sort());
    expect(order.at(-1)).toBe(pre.leader.name);
    const done: string[] = [];
    const outputs: any[] = [];
    for (const [i, name] of order.entries()) {
      const ctx = step('defrag', { item: memberItem(cluster.inventory(), name, { index: i, done: [...done], moveLeaderFirst: true }) });
      const input = defrag.input({ moveLeaderFirst: true });
      expect((await defrag.impl.probe!(ctx, input)).done).toBe(false);
      const out = await timed(`defrag ${name}`, () => defrag.impl.run(ctx, input));
      outputs.push(out);
      expect(out.member).toBe(name);
      expect(out.after.dbSize).toBeLessThan(QUOTA / 2);
      expect(out.reclaimedBytes).toBeGreaterThan(QUOTA / 4);
      if (name === pre.leader.name) {
        expect(done).toContain(out.leaderMovedTo);
        // The move happened before the defrag, and the old leader follows the new one.
        const log = t.logs.filter((l) => l.startsWith('[defrag]'));
        const moved = log.findIndex((l) => l.includes(`moving leadership from ${name} to ${out.leaderMovedTo}`));
        const defragged = log.findIndex((l) => l.includes(`defragmenting ${name}:`));
        expect(moved).toBeGreaterThanOrEqual(0);
        expect(moved).toBeLessThan(defragged);
        const s = await cluster.status(name);
        expect(s.leader).not.toBe(s.memberId);
        expect(s.leader).toBe((await cluster.status(out.leaderMovedTo)).memberId);
      } else {
        expect(out.leaderMovedTo).toBeUndefined();
      }
      // The gate between members.
      await timed(`gate ${name}`, () => memberHealthy.impl.run(ctx, memberHealthy.input({ waitFor: '10s' })));
      // Done now: the probe says so without defragmenting again.
      expect(await defrag.impl.probe!(ctx, input)).toMatchObject({ done: true, output: { skipped: true } });
      done.push(name);
    }
    for (const name of names) expect((await cluster.status(name)).dbSize).toBeLessThan(QUOTA / 2);

    // --- disarm: every member is below the quota now; the alarm is really gone.
    expect((await disarm.impl.probe!(step('disarm'), disarm.input({}))).done).toBe(false);
    const d = await timed('disarm', () => disarm.impl.run(step('disarm'), disarm.input({ alarm: 'NOSPACE' })));
    expect(d.disarmed.length).toBeGreaterThan(0);
    expect(await cluster.alarms()).toEqual([]);
    await disarm.impl.verify!(step('disarm'), disarm.input({}), d);
    expect(await disarm.impl.probe!(step('disarm'), disarm.input({}))).toMatchObject({ done: true, output: { alreadyClear: true } });

    // --- the cluster takes writes again; every voter agrees, hashes equal.
    const w = await timed('write-probe', () => writeProbe.impl.run(step('verify-writes'), writeProbe.input({})));
    expect(w.revision).toBeGreaterThan(c1.revision);
    expect(await cluster.client(names[1]).get(w.key).string()).toBeNull();
    const h = await timed('cluster-healthy', () => clusterHealthy.impl.run(step('verify-cluster'), clusterHealthy.input({ waitFor: '15s', expectVoters: 3 })));
    expect(h.voters.sort()).toEqual([...names].sort());
    expect(h.hash).toMatchObject({ revision: expect.any(Number), value: expect.any(Number) });
  }, 120_000);

  it('moves leadership on request, and the probe sees it done', async () => {
    const pre = await preflight.impl.run(step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'] }));
    const leader = pre.leader.name;
    const ctx = step('move', { item: memberItem(cluster.inventory(), leader) });
    expect((await moveLeader.impl.probe!(ctx, {})).done).toBe(false);
    const out = await timed('move-leader', () => moveLeader.impl.run(ctx, {}));
    expect(out).toMatchObject({ from: leader, moved: true });
    expect(out.to).not.toBe(leader);
    expect((await cluster.status(leader)).leader).toBe((await cluster.status(out.to)).memberId);
    expect((await moveLeader.impl.probe!(ctx, {})).done).toBe(true);
  }, 60_000);

  it('refuses preflight when a member is frozen or stopped, naming it; allowUnreachable skips it', async () => {
    const victim = cluster.members[2]!.name;
    // Frozen: answers nothing; the call deadline (1 s here) bounds the wait.
    const quick = makeActionContext(cluster.inventory({ requestTimeoutMs: 1000 }));
    await cluster.kill(victim, 'SIGSTOP');
    try {
      // (Without a deadline the call would hang on the frozen member until the test times out.)
      const frozen = await stepError(preflight.impl.run(quick.ctx, preflight.input({ expectAlarms: ['NOSPACE'] })));
      expect(frozen.kind).toBe('precondition');
      expect(frozen.member).toBe(victim);
      expect(frozen.message).toContain(victim);
    } finally {
      await cluster.kill(victim, 'SIGCONT');
      await quick.dispose();
    }

    await cluster.stop(victim);
    const stopped = await stepError(preflight.impl.run(step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'] })));
    expect(stopped.kind).toBe('precondition');
    expect(stopped.member).toBe(victim);
    // "connection refused", or the old connection dropping, depending on timing.
    expect(stopped.message).toMatch(new RegExp(`^member not answering: ${victim} \\(http://127\\.0\\.0\\.1:\\d+\\): \\S`));

    const allowed = await preflight.impl.run(step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'], allowUnreachable: true }));
    expect(allowed.unreachable).toEqual([victim]);
    expect(allowed.members.find((m: any) => m.name === victim)).toMatchObject({ reachable: false, dbSize: null });
    expect(allowed.notes.join('\n')).toContain(`skipping unreachable: ${victim}`);

    // Later steps of that run skip the member preflight let through, and say so; a final health check does not pass.
    const run = makeActionContext(cluster.inventory(), { steps: { preflight: { status: 'succeeded', output: allowed } } });
    try {
      const out = await defrag.impl.run(run.step('defrag', { item: memberItem(cluster.inventory(), victim) }), defrag.input({}));
      expect(out).toMatchObject({ member: victim, skipped: true, reason: 'unreachable (allowed by preflight)' });
      // Its gate passes at once (said so), where a member that was not let through fails it.
      const gated = await memberHealthy.impl.run(run.step('defrag', { item: memberItem(cluster.inventory(), victim) }), memberHealthy.input({ waitFor: '20s' }));
      expect(gated).toMatchObject({ member: victim, skipped: 'unreachable (allowed by preflight)' });
      expect(run.logs.join('\n')).toContain(`${victim} still does not answer (preflight allowed it to be unreachable: not waiting)`);
      // The final check reports it without waiting for it; a run that did not allow it fails the check.
      const h = await clusterHealthy.impl.run(run.step('verify'), clusterHealthy.input({ waitFor: '1s' }));
      expect(h).toMatchObject({ unreachable: [victim], hash: expect.any(Object) });
      expect(h.voters).not.toContain(victim);
      const unhealthy = await stepError(clusterHealthy.impl.run(step('verify'), clusterHealthy.input({ waitFor: '1s' })));
      expect(unhealthy.message).toMatch(new RegExp(`not answering: ${victim} `));
    } finally {
      await run.dispose();
    }

    // The health gate on a stopped member fails (bounded by waitFor), naming it.
    const gate = await stepError(memberHealthy.impl.run(step('gate'), memberHealthy.input({ member: victim, waitFor: '1s' })));
    expect(gate).toMatchObject({ kind: 'transient', member: victim });
  }, 60_000);
});

describe('a defrag the client gave up on', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, quotaBytes: QUOTA, name: 'frozen' });
    await cluster.fillToNospace();
  }, 90_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('is confirmed by polling status, never sent twice', async () => {
    const t = makeActionContext(cluster.inventory());
    const m = cluster.members[0]!;
    try {
      // run + verify as the runner does: m1 must have deleted the old revisions before its defrag can shrink it.
      await compact.impl.verify!(t.step('compact'), compact.input({}), await compact.impl.run(t.step('compact'), compact.input({})));
      const ctx = t.step('defrag');
      const pool = etcdPool(ctx);
      const before = await memberStatus(pool, m.name);
      expect(before.dbSize).toBeGreaterThan(QUOTA * 0.9);

      // Freeze the member as soon as it logs that it started defragmenting (the defrag itself takes ~30 ms here):
      // the client's 300 ms deadline passes while the server is still in the middle of it.
      const starts = () => (readFileSync(m.logFile, 'utf8').match(/"msg":"starting defragment"/g) ?? []).length;
      const startsBefore = starts();
      const pid = cluster.pid(m.name)!;
      let frozenAt = 0;
      const watcher = (async () => {
        for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setImmediate(r))) {
          if (starts() > startsBefore) {
            process.kill(pid, 'SIGSTOP');
            frozenAt = Date.now();
            await new Promise((r) => setTimeout(r, 1000));
            process.kill(pid, 'SIGCONT');
            return;
          }
        }
      })();
      let res: { confirmedByPolling: boolean };
      try {
        res = await defragmentOnce(ctx, pool, before, 300, 15_000);
      } finally {
        await watcher;
        process.kill(pid, 'SIGCONT');
      }
      expect(frozenAt).toBeGreaterThan(0);
      expect(res.confirmedByPolling).toBe(true);
      expect(t.logs.join('\n')).toContain(`defragment of ${m.name}: the client gave up`);
      expect((await memberStatus(pool, m.name)).dbSize).toBeLessThan(before.dbSize / 2);
      expect(starts()).toBe(startsBefore + 1);
    } finally {
      await t.dispose();
    }
  }, 60_000);
});

describe('cluster with auth enabled', () => {
  let cluster: TestCluster;
  const password = `pw-${process.pid}-${Date.now()}`;
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, name: 'auth' });
    const ctl = (...args: string[]) =>
      execa(process.env.ETCD_BIN_DIR ? join(process.env.ETCD_BIN_DIR, 'etcdctl') : 'etcdctl', ['--endpoints', cluster.endpoints[0]!, ...args], { env: { ETCDCTL_API: '3' }, extendEnv: false, timeout: 20_000, stdin: 'ignore' });
    await ctl('user', 'add', `root:${password}`);
    await ctl('auth', 'enable');
  }, 60_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('authenticates with the password from passwordEnv, and keeps a wrong one out of messages', async () => {
    process.env.RUNBOOK_TEST_ETCD_PASSWORD = password;
    const t = makeActionContext(cluster.inventory({ auth: { username: 'root', passwordEnv: 'RUNBOOK_TEST_ETCD_PASSWORD' } }));
    try {
      const pre = await preflight.impl.run(t.step('preflight'), preflight.input({ expectAlarms: [] }));
      expect(pre.members[0]).toMatchObject({ reachable: true, isLeader: true });
      expect((await writeProbe.impl.run(t.step('write'), writeProbe.input({}))).revision).toBeGreaterThan(0);
      expect(await compact.impl.run(t.step('compact'), compact.input({}))).toMatchObject({ alreadyCompacted: false });
    } finally {
      await t.dispose();
    }

    const wrong = 'not-the-password-0123';
    process.env.RUNBOOK_TEST_ETCD_PASSWORD = wrong;
    const bad = makeActionContext(cluster.inventory({ auth: { username: 'root', passwordEnv: 'RUNBOOK_TEST_ETCD_PASSWORD' } }));
    try {
      const err = await stepError(writeProbe.impl.run(bad.ctx, writeProbe.input({})));
      expect(err.kind).toBe('invalid');
      expect(err.message).toMatch(/authentication failed/);
      expect(`${err.message} ${err.hint ?? ''}`).not.toContain(wrong);
      expect(bad.logs.join('\n')).not.toContain(wrong);
    } finally {
      await bad.dispose();
      delete process.env.RUNBOOK_TEST_ETCD_PASSWORD;
    }
  }, 60_000);
});

describe('TLS cluster', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ members: 1, tls: true, name: 'tls' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('talks to members with cacert/cert/key from the inventory', async () => {
    const inv = cluster.inventory();
    expect(inv.members[0]!.clientURL).toMatch(/^https:/);
    const t = makeActionContext(inv);
    try {
      const pre = await preflight.impl.run(t.step('preflight'), preflight.input({ expectAlarms: ['NOSPACE'] }));
      expect(pre.members[0]).toMatchObject({ reachable: true, isLeader: true });
      const w = await writeProbe.impl.run(t.step('write'), writeProbe.input({ key: '/runbook/tls-canary' }));
      expect(w.revision).toBeGreaterThan(0);
      const h = await clusterHealthy.impl.run(t.step('healthy'), clusterHealthy.input({ waitFor: '5s' }));
      expect(h.voters).toEqual([inv.members[0]!.name]);
    } finally {
      await t.dispose();
    }
  }, 60_000);

  it('fails with an invalid-input error when the client certificate is missing', async () => {
    const { cert: _c, key: _k, ...caOnly } = cluster.tls!;
    const t = makeActionContext(cluster.inventory({ tls: caOnly, requestTimeoutMs: 2000 }));
    try {
      const err = await stepError(writeProbe.impl.run(t.ctx, writeProbe.input({})));
      expect(err.kind).toBe('invalid');
      // etcd 3.4 sends "bad certificate", 3.5 "certificate required" (TLS 1.3)
      expect(err.message).toMatch(new RegExp(`^no voter answers: ${cluster.members[0]!.name}: .*(bad certificate|certificate required)`));
      expect(err.hint).toMatch(/TLS files/);
    } finally {
      await t.dispose();
    }
  }, 30_000);
});
