/**
 * The membership actions called directly against real clusters, for what the end-to-end runs do not cover:
 * picking the one unhealthy member, refusals (a learner exists, a 2-member cluster) that change nothing, member
 * ids in etcdctl's spellings, a member without a driver, and a replacement whose old data dir was not moved
 * aside (it must start on a fresh dir, the old data left as it was).
 */
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { catalog } from '../../src/actions/catalog.ts';
import { actions } from '../support/actions.ts';
import type { ActionImpl, StepRecord } from '../../src/actions/types.ts';
import { driverFor } from '../../src/drivers/index.ts';
import type { Inventory } from '../../src/inventory/types.ts';
import { relocatedPath } from '../../src/actions/membership-data-dir.ts';
import { StepError } from '../../src/util/errors.ts';
import { freePorts, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { makeActionContext, stepError } from '../support/action-context.ts';
import { killIfStill } from '../support/child-processes.ts';

type Name = 'etcd.replacement-preflight' | 'etcd.member-remove' | 'etcd.member-add' | 'etcd.member-promote' | 'members.start-replacement';

function action(name: Name): { impl: ActionImpl; input: (raw?: Record<string, unknown>) => any } {
  return { impl: actions[name]!, input: (raw = {}) => catalog[name].input.parse(raw) };
}

const preflight = action('etcd.replacement-preflight');
const remove = action('etcd.member-remove');
const add = action('etcd.member-add');
const start = action('members.start-replacement');
const promote = action('etcd.member-promote');


const etcdctlBin = process.env.ETCD_BIN_DIR ? `${process.env.ETCD_BIN_DIR}/etcdctl` : 'etcdctl';
async function etcdctl(endpoint: string, args: string[]): Promise<string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ETCDCTL_')) env[k] = v;
  const r = await execa(etcdctlBin, ['--endpoints', endpoint, ...args], { env, extendEnv: false, reject: false, timeout: 30_000, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function memberIds(endpoint: string): Promise<string[]> {
  return (await etcdctl(endpoint, ['member', 'list', '-w', 'simple'])).trim().split('\n').map((l) => l.split(', ')[0]!).sort();
}

describe('membership actions: guards (3 members)', () => {
  let cluster: TestCluster;
  let inv: Inventory;
  // A cluster per test: the replacement test leaves m2 replaced and stopped, the first one stops a member.
  beforeEach(async () => {
    cluster = await startCluster({ members: 3, name: 'guards' });
    inv = cluster.inventory({ snapshots: undefined });
  }, 60_000);
  afterEach(async () => {
    await cluster?.teardown();
  });

  it('without a member named: the one unhealthy member when there is one; refuses to guess otherwise', async () => {
    const t = makeActionContext(inv);
    try {
      const healthy = await stepError(preflight.impl.run(t.ctx, preflight.input()));
      expect(healthy.kind).toBe('invalid');
      expect(healthy.message).toMatch(/every member of guards is healthy \(.*\): name the member to replace/);

      const { memberId } = await cluster.status('m3');
      await cluster.kill('m3');
      const out = await preflight.impl.run(t.step('preflight'), preflight.input());
      expect(out.member).toMatchObject({ name: 'm3', id: memberId, alive: false, inCluster: true });
      expect(out.dataDirExisted).toBe(true);
    } finally {
      await t.dispose();
      await cluster.start('m3');
      await cluster.waitHealthy(30_000);
    }
  }, 90_000);

  it('member ids in etcdctl\'s spellings (space-padded hex, decimal, 0x) name the same member', async () => {
    const t = makeActionContext(inv);
    try {
      const { memberId } = await cluster.status('m2');
      for (const ref of [` ${memberId.padStart(16, '0')}`, BigInt(`0x${memberId}`).toString(10), `0x${memberId.toUpperCase()}`, cluster.members[1]!.peerURL]) {
        const out = await preflight.impl.run(t.step('preflight'), preflight.input({ member: ref }));
        expect(out.member, ref).toMatchObject({ name: 'm2', id: memberId, alive: true });
      }
    } finally {
      await t.dispose();
    }
  }, 60_000);

  it('refuses while a learner exists, and changes nothing', async () => {
    const t = makeActionContext(inv);
    const ep = cluster.members[0]!.clientURL;
    const [port] = await freePorts(1);
    // Right after m3 came back, etcd answers "unhealthy cluster" for a few seconds (strict reconfiguration check).
    let out = '';
    for (let i = 0; !out; i++) {
      try {
        out = await etcdctl(ep, ['member', 'add', 'm9', '--learner', `--peer-urls=http://127.0.0.1:${port}`]);
      } catch (err) {
        if (i >= 30 || !/unhealthy cluster/.test((err as Error).message)) throw err;
        await sleep(500);
      }
    }
    const learnerId = /Member\s+([0-9a-f]+)\s+added/.exec(out)![1]!;
    try {
      const before = await memberIds(ep);
      const err = await stepError(preflight.impl.run(t.ctx, preflight.input({ member: 'm2' })));
      expect(err.kind).toBe('precondition');
      expect(err.message).toContain(`not replacing m2: a learner already exists (${learnerId} (not started, http://127.0.0.1:${port}))`);
      expect(err.hint).toMatch(/runbook resume/);
      // etcd itself refuses a second learner; the add action reports it as a precondition, not a retry
      const [port2] = await freePorts(1);
      const second = await stepError(add.impl.run(t.step('add'), add.input({ name: 'm8', peerURL: `http://127.0.0.1:${port2}` })));
      expect(second.kind).toBe('precondition');
      expect(second.message).toMatch(/second learner/);
      expect(await memberIds(ep)).toEqual(before);
    } finally {
      await etcdctl(ep, ['member', 'remove', learnerId]);
      await t.dispose();
    }
  }, 90_000);

  it('replaces a member whose old data dir is still there (not moved aside) on a fresh dir, leaving the old data as it was; driver none gets the flags to type', async () => {
    const steps: Record<string, StepRecord> = {};
    const t = makeActionContext(inv, { steps });
    const m2 = inv.members.find((m) => m.name === 'm2')!;
    const oldDb = `${m2.dataDir}/member/snap/db`;
    let replacementPid: number | undefined;
    try {
      await cluster.client('m1').put('guards/key').value('v').exec();
      await cluster.kill('m2');
      const pre = await preflight.impl.run(t.step('preflight'), preflight.input({ member: 'm2' }));
      steps.preflight = { status: 'succeeded', output: pre };
      const oldBytes = readFileSync(oldDb);

      const removed = await remove.impl.run(t.step('remove'), remove.input({ member: pre.member.id }));
      expect(removed).toMatchObject({ id: pre.member.id, removed: true });
      const again = await remove.impl.probe!(t.step('remove'), remove.input({ member: pre.member.id }));
      expect(again.done).toBe(true);

      const added = await add.impl.run(t.step('add'), add.input({ name: 'm2', peerURL: m2.peerURL }));
      expect(added).toMatchObject({ name: 'm2', isLearner: true, added: true });
      // the same add again: the member with that peer URL is found, not added twice
      expect(await add.impl.run(t.step('add'), add.input({ name: 'm2', peerURL: m2.peerURL }))).toMatchObject({ id: added.id, added: false });

      const noDriver: Inventory = { ...inv, members: inv.members.map((m) => (m.name === 'm2' ? { ...m, driver: { type: 'none' } } : m)) };
      const byHand = makeActionContext(noDriver, { steps });
      try {
        const err = await stepError(start.impl.run(byHand.ctx, start.input({ member: 'm2' })));
        expect(err.hint).toContain('--initial-cluster-state=existing');
        expect(err.hint).toContain(`--initial-advertise-peer-urls=${m2.peerURL}`);
        expect(err.hint).toMatch(/--initial-cluster=[^ ]*m2=http/);
      } finally {
        await byHand.dispose();
      }

      const started = await start.impl.run(t.step('start'), start.input({ member: 'm2' }));
      replacementPid = started.pid;
      expect(started).toMatchObject({ memberId: added.id, dataDir: relocatedPath(m2.dataDir!, added.id), isLearner: true });
      expect(started.inventoryChanges).toEqual([`dataDir: ${m2.dataDir} → ${relocatedPath(m2.dataDir!, added.id)}`, expect.stringMatching(/argv\.json/)]);
      expect(readFileSync(oldDb).equals(oldBytes)).toBe(true);
      expect(t.logs.some((l) => /the old data dir .* is still there/.test(l))).toBe(true);
      // resumed start: it runs and answers as the new member
      expect((await start.impl.probe!(t.step('start'), start.input({ member: 'm2' }))).done).toBe(true);

      const promoted = await promote.impl.run(t.step('promote'), promote.input({ member: added.id }));
      expect(promoted).toMatchObject({ id: added.id, promoted: true });
      expect(promoted.verified.voters.sort()).toEqual(['m1', 'm2', 'm3']);
      expect((await promote.impl.probe!(t.step('promote'), promote.input({ member: added.id }))).done).toBe(true);
      expect(existsSync(oldDb)).toBe(true);
    } finally {
      await t.dispose();
      // The harness knows m2 by its old data dir: stop the replacement through the driver (its flags are in the sidecar).
      await driverFor(m2).stop({ force: true });
      killIfStill(replacementPid, dirname(m2.dataDir!)); // the cluster's own temp dir is in the replacement's argv
    }
  }, 120_000);
});

describe('membership actions: the replacement\'s peer port (3 members)', () => {
  let cluster: TestCluster;
  beforeEach(async () => {
    cluster = await startCluster({ members: 3, name: 'peerport' });
  }, 60_000);
  afterEach(async () => {
    await cluster?.teardown();
  });

  it('refuses to start the replacement while something else holds its peer port; once free, starts it (until: peer-listening) and the promote waits out its catch-up', async () => {
    const inv = cluster.inventory({ snapshots: undefined });
    const steps: Record<string, StepRecord> = {};
    const t = makeActionContext(inv, { steps });
    const m2 = inv.members.find((m) => m.name === 'm2')!;
    const peer = new URL(m2.peerURL);
    const squatter = createServer((sock) => sock.destroy());
    let replacementPid: number | undefined;
    try {
      const c = cluster.client('m1');
      for (let i = 0; i < 32; i++) await c.put(`peerport/${i}`).value('v'.repeat(32 * 1024)).exec();
      await cluster.kill('m2');
      const pre = await preflight.impl.run(t.step('preflight'), preflight.input({ member: 'm2' }));
      steps.preflight = { status: 'succeeded', output: pre };
      await remove.impl.run(t.step('remove'), remove.input({ member: pre.member.id }));
      const added = await add.impl.run(t.step('add'), add.input({ name: 'm2', peerURL: m2.peerURL }));

      await new Promise<void>((resolve) => squatter.listen(Number(peer.port), peer.hostname, resolve));
      const err = await stepError(start.impl.run(t.step('start'), start.input({ member: 'm2', until: 'peer-listening' })));
      expect(err.kind).toBe('precondition');
      expect(err.message).toContain(`something already listens on its peer URL ${m2.peerURL}`);
      expect((await driverFor(m2).status()).running).toBe(false); // nothing was started
      await new Promise<void>((resolve) => squatter.close(() => resolve()));

      const started = await start.impl.run(t.step('start'), start.input({ member: 'm2', until: 'peer-listening' }));
      replacementPid = started.pid;
      expect(started).toMatchObject({ memberId: added.id, isLearner: true });
      expect(t.logs.some((l) => /listens on .* and catches up from the leader now/.test(l))).toBe(true);
      const promoted = await promote.impl.run(t.step('promote'), promote.input({ member: added.id }));
      expect(promoted).toMatchObject({ id: added.id, promoted: true });
      expect(promoted.verified.voters.sort()).toEqual(['m1', 'm2', 'm3']);
      // The replacement serves the data it caught up on.
      const r = await cluster.client('m2').get('peerport/31').string();
      expect(r).toHaveLength(32 * 1024);
    } finally {
      squatter.close();
      await t.dispose();
      await driverFor(m2).stop({ force: true }).catch(() => {});
      killIfStill(replacementPid, dirname(m2.dataDir!));
    }
  }, 120_000);
});

describe('membership actions: a 2-member cluster', () => {
  let cluster: TestCluster;
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('refuses to replace a member of a 2-member cluster, and says why', async () => {
    cluster = await startCluster({ members: 2, name: 'pair' });
    const ep = cluster.members[0]!.clientURL;
    const before = await memberIds(ep);
    await cluster.kill('m2');
    const t = makeActionContext(cluster.inventory({ snapshots: undefined }));
    try {
      const err = await stepError(preflight.impl.run(t.ctx, preflight.input({ member: 'm2' })));
      expect(err.kind).toBe('precondition');
      expect(err.message).toMatch(/not replacing m2: the cluster has 2 voters: removing m2 leaves a single voter/);
    } finally {
      await t.dispose();
    }
    await cluster.start('m2');
    await cluster.waitHealthy(30_000);
    expect(await memberIds(ep)).toEqual(before);
  }, 90_000);
});
