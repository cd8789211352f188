/**
 * Fleet acceptance, real processes and real etcd: two `runbook serve --store etcd://…` replicas share a management
 * etcd. A nospace recovery is started from chat on replica A and approved by a click on replica B (approvals live
 * in the store). A is SIGKILLed during the defrag step, after a member's defragment took effect and before it was
 * journaled (RUNBOOK_FAILPOINT). B takes the run over once A's lease expires, probes the step left in doubt, and
 * finishes: one continuous journal, no step's effect applied twice, the NOSPACE alarm gone.
 */
import { type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlarmAction } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/chatops/server.ts';
import { foldJournal } from '../../src/execute/state.ts';
import type { JournalRecord } from '../../src/events/types.ts';
import { freePorts, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { defragsInLog } from '../support/etcd-log.ts';
import { blockActionBody, sendSlack, slashCommandBody, startSlackStandin, type SlackStandin } from '../support/slack-standin.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const SIGNING = 'signing-secret-7c1e5a9b3d2f';
const BOT = 'xoxb-bot-token-4a6c8e0f2b1d';
const REQUESTER = 'U0ONCALL1';
const APPROVER = 'U0SRE2';
const CHANNEL = 'C0INCIDENT';
const TTL = 3;

let dir = '';
let mgmt: TestCluster;
let target: TestCluster;
let standin: SlackStandin;
const replicas: { name: string; url: string; proc: ResultPromise; stderr: () => string }[] = [];

/** Poll until `pick` gives a value; a predicate that throws is retried, and its last error is in the timeout's message. */
async function waitUntil<T>(what: string, ms: number, pick: () => Promise<T | undefined | false>): Promise<T> {
  const until = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    const v = await pick().catch((err: unknown) => {
      lastError = err;
      return undefined;
    });
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message ?? String(lastError)})` : ''}`, { cause: lastError });
    await sleep(200);
  }
}

async function runIds(): Promise<string[]> {
  const keys = await mgmt.client().getAll().prefix('/runbook/v1/runs/').keys();
  return [...new Set(keys.map((k) => k.split('/')[4]!).filter(Boolean))];
}

async function journal(runId: string): Promise<JournalRecord[]> {
  const kvs = await mgmt.client().getAll().prefix(`/runbook/v1/runs/${runId}/journal/`).strings();
  return Object.keys(kvs).sort().map((k) => JSON.parse(kvs[k]!) as JournalRecord);
}

async function startReplica(name: string, env: Record<string, string> = {}) {
  const [port] = await freePorts(1);
  const proc = runCli(['serve', '-c', path.join(dir, `chatops-${name}.yaml`), '--listen', `127.0.0.1:${port}`,
    '--store', `etcd://${mgmt.endpoints[0]!.replace(/^https?:\/\//, '')}`, '--replica-id', `replica-${name}`], {
    env: { SIGNING, BOT, RUNBOOK_STORE_LEASE_TTL: String(TTL), ...env }, timeout: 240_000,
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitUntil(`replica ${name} to listen`, 30_000, async () => /listening on/.test(err)).catch((e: Error) => { throw new Error(`${e.message}:\n${err}`); });
  const r = { name, url: `http://127.0.0.1:${port}`, proc, stderr: () => err };
  replicas.push(r);
  return r;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-fleet-'));
  [mgmt, target, standin] = await Promise.all([
    startCluster({ members: 1, name: 'mgmt' }),
    startCluster({ members: 3, name: 'etcd-test' }),
    startSlackStandin({ token: BOT }),
  ]);
  await target.fillToNospace();
  const inventory = target.writeInventory(path.join(dir, 'cluster.yaml'));
  for (const name of ['a', 'a2', 'a3', 'b']) {
    fs.writeFileSync(path.join(dir, `chatops-${name}.yaml`), `
stateDir: ./state-${name}
secrets:
  slackSigningSecret: { env: SIGNING }
  slackBotToken: { env: BOT }
slack: { apiUrl: "${standin.apiUrl}", channel: ${CHANNEL} }
clusters:
  etcd-test: ${inventory}
runbooks:
  nospace-recovery:
    users: [${REQUESTER}, ${APPROVER}]
    channels: [${CHANNEL}]
    approvers: [${REQUESTER}, ${APPROVER}]
approvalTimeout: 5m
`);
  }
}, 120_000);

afterAll(async () => {
  for (const r of replicas) {
    try { r.proc.kill('SIGKILL'); } catch { /* gone */ }
    await r.proc.catch(() => {});
  }
  await standin?.close();
  await target?.teardown();
  await mgmt?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('two serve replicas on a management etcd', () => {
  it('the executing replica is SIGKILLed mid-defrag; the other takes the run over and finishes it without repeating an effect', async () => {
    await target.fillToNospace(); // whatever ran before (an earlier test may have recovered the cluster)
    const a = await startReplica('a', { RUNBOOK_FAILPOINT: 'journal-before:step.succeeded:defrag' });
    const b = replicas.find((r) => r.name === 'b') ?? await startReplica('b');
    const known = new Set(await runIds());

    const cmd = await sendSlack(`${a.url}${ROUTES.slackCommands}`, slashCommandBody({ text: 'run nospace-recovery cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(cmd.status).toBe(200);
    const runId = await waitUntil('the run in the store', 20_000, async () => (await runIds()).find((id) => !known.has(id)));
    await waitUntil('the approval request', 60_000, async () => foldJournal(await journal(runId)).status === 'awaiting-approval');

    // The approval is clicked on the other replica: it goes to the store, and replica A (the runner) sees it.
    const click = await sendSlack(`${b.url}${ROUTES.slackInteractions}`, blockActionBody({ user_id: APPROVER, channel_id: CHANNEL, action_id: 'runbook_approve', value: `${runId} compact` }), { secret: SIGNING });
    expect(click.status).toBe(200);

    const ra = await a.proc;
    const killedAt = Date.now();
    expect(ra.signal, a.stderr()).toBe('SIGKILL');
    const before = await journal(runId);
    const inDoubt = before.filter((r) => r.type === 'step.started' && r.stepId === 'defrag');
    expect(inDoubt.length).toBeGreaterThan(0); // A was inside the defrag step
    expect(before.some((r) => r.type === 'run.finished')).toBe(false);

    const records = await waitUntil('replica B to finish the run', 90_000, async () => {
      const j = await journal(runId);
      return j.some((r) => r.type === 'run.finished') ? j : undefined;
    });
    const resumed = records.find((r) => r.type === 'run.resumed')!;
    if (process.env.FLEET_DEBUG) console.log(records.map((r) => [r.seq, r.type, (r as any).stepId ?? '', (r as any).item ?? '', (r as any).via ?? (r as any).pid ?? '', (r as any).status ?? '', r.ts.slice(11)].join(' ')).join('\n'), '\nkilled at', new Date(killedAt).toISOString());
    expect(resumed).toBeDefined();
    // (How soon B takes over, about the lease TTL plus a scan, is a speed: not asserted here, it failed under load.)
    expect(records.at(-1), JSON.stringify(records.at(-1)).slice(0, 2000)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1)); // one continuous journal
    expect(records.filter((r) => r.type === 'run.started')).toHaveLength(1);
    expect(records.filter((r) => r.type === 'run.resumed')).toHaveLength(1);

    // No effect twice: each compact/defrag item started at most once; the in-doubt member was probed, not re-run.
    const starts = new Map<string, number>();
    for (const r of records) {
      if (r.type === 'step.started' && (r.stepId === 'compact' || r.stepId === 'defrag')) {
        const k = `${r.stepId}[${(r as { item?: string }).item ?? ''}]`;
        starts.set(k, (starts.get(k) ?? 0) + 1);
      }
    }
    expect([...starts.values()].every((n) => n === 1), JSON.stringify([...starts])).toBe(true);
    const doubtItem = (inDoubt[0] as { item?: string }).item;
    const afterResume = records.slice(records.indexOf(resumed));
    expect(afterResume.find((r) => r.type === 'step.succeeded' && r.stepId === 'defrag' && (r as { item?: string }).item === doubtItem)).toMatchObject({ via: 'probe' });
    // The report counts what A's defragment of that member reclaimed (B's probe only saw it already small).
    const space = ((records.at(-1) as { report?: { space?: { member: string; reclaimedBytes: number; skipped?: boolean }[] } }).report?.space ?? []).find((x) => x.member === doubtItem);
    expect(space, JSON.stringify(space)).toBeDefined();
    expect(space!.skipped).toBeUndefined();
    expect(space!.reclaimedBytes).toBeGreaterThan(0);

    const alarms = await target.client().maintenance.alarm({ action: AlarmAction.Get });
    expect(alarms.alarms).toEqual([]);
    expect(b.stderr()).toMatch(/taken over/);
    // the audit of every replica is in the store too
    const audit = Object.values(await mgmt.client().getAll().prefix('/runbook/v1/audit/').strings()).map((v) => JSON.parse(v));
    expect(audit).toContainEqual(expect.objectContaining({ event: 'run.takeover', runId, replica: 'replica-b' }));
    expect(audit).toContainEqual(expect.objectContaining({ event: 'approval.granted', runId, replica: 'replica-b', user: `slack:${APPROVER}` }));
    expect(audit).toContainEqual(expect.objectContaining({ event: 'run.started', runId, replica: 'replica-a' }));
    // the lock is released when the run ends
    await waitUntil('the lock to be released', 10_000, async () => (await mgmt.client().getAll().prefix('/runbook/v1/locks/').keys()).length === 0);
    // status from any replica reads the store
    const st = await sendSlack(`${b.url}${ROUTES.slackCommands}`, slashCommandBody({ text: `status ${runId}`, user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(st.json.text).toMatch(new RegExp(`run \`${runId}\`: \\*nospace-recovery\\* on \\*etcd-test\\* — succeeded`));
  }, 240_000);

  it('a replica killed from outside while a defragment runs: the other finishes; every member defragmented exactly once', async () => {
    await target.fillToNospace();
    // etcd's own count of defragmentations per member, before the run (earlier tests defragmented this cluster too).
    const defragsBefore = Object.fromEntries(target.members.map((m) => [m.name, defragsInLog(m.logFile)]));
    const a2 = await startReplica('a2');
    const b = replicas.find((r) => r.name === 'b') ?? await startReplica('b');
    const known = new Set(await runIds());
    const cmd = await sendSlack(`${a2.url}${ROUTES.slackCommands}`, slashCommandBody({ text: 'run nospace-recovery cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(cmd.status).toBe(200);
    const runId = await waitUntil('the run in the store', 20_000, async () => (await runIds()).find((id) => !known.has(id)));
    await waitUntil('the approval request', 60_000, async () => foldJournal(await journal(runId)).status === 'awaiting-approval');
    await sendSlack(`${b.url}${ROUTES.slackInteractions}`, blockActionBody({ user_id: APPROVER, channel_id: CHANNEL, action_id: 'runbook_approve', value: `${runId} compact` }), { secret: SIGNING });
    // SIGKILL as soon as the first defragment is journaled as started (it runs right after: the record is durable first)
    const until = Date.now() + 60_000;
    let started: JournalRecord | undefined;
    while (!started && Date.now() < until) {
      started = (await journal(runId)).find((r) => r.type === 'step.started' && r.stepId === 'defrag');
      if (!started) await sleep(20);
    }
    expect(started, 'the defrag step never started').toBeDefined();
    a2.proc.kill('SIGKILL');
    const ra = await a2.proc;
    expect(ra.signal).toBe('SIGKILL');
    const killedAt = Date.now();

    const records = await waitUntil('replica B to finish the run', 90_000, async () => {
      const j = await journal(runId);
      return j.some((r) => r.type === 'run.finished') ? j : undefined;
    });
    const resumed = records.find((r) => r.type === 'run.resumed')!;
    if (process.env.FLEET_DEBUG) console.log(records.filter((r) => (r as any).stepId === 'defrag' || r.type.startsWith('run.')).map((r) => [r.seq, r.type, (r as any).item ?? '', (r as any).via ?? (r as any).done ?? '', (r as any).message ?? '', r.ts.slice(11)].join(' ')).join('\n'), '\nkilled at', new Date(killedAt).toISOString());
    expect(resumed, 'the run was never taken over').toBeDefined();
    expect(records.at(-1), JSON.stringify(records.at(-1)).slice(0, 2000)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    // every member's defragment succeeded exactly once; only the one in doubt may have been started twice, and
    // then only because its probe (after the takeover) found it not done
    const doubt = (started as { item?: string }).item;
    const items = (records.find((r) => r.type === 'step.items' && r.stepId === 'defrag') as { items: string[] }).items;
    for (const m of items) {
      const done = records.filter((r) => r.type === 'step.succeeded' && r.stepId === 'defrag' && (r as { item?: string }).item === m);
      expect(done, m).toHaveLength(1);
      const starts = records.filter((r) => r.type === 'step.started' && r.stepId === 'defrag' && (r as { item?: string }).item === m);
      if (m !== doubt) expect(starts, m).toHaveLength(1);
      else if (starts.length > 1) {
        const probe = records.slice(records.indexOf(resumed)).find((r) => r.type === 'step.probe' && r.stepId === 'defrag' && (r as { item?: string }).item === m);
        expect(probe).toMatchObject({ done: false });
      }
      // The same from etcd's side, in the member's own log: exactly one defragmentation, finished; the in-doubt
      // member at least one and no more than the journal started (the killed replica may have died before its RPC).
      const member = target.members.find((x) => x.name === m)!;
      const now = defragsInLog(member.logFile);
      const was = defragsBefore[m]!;
      const inLog = { started: now.started - was.started, finished: now.finished - was.finished };
      if (m !== doubt) expect(inLog, `${m}: defragmentations in its etcd log`).toEqual({ started: 1, finished: 1 });
      else {
        expect(inLog.finished, `${m} (in doubt): defragmentations finished in its etcd log`).toBeGreaterThanOrEqual(1);
        expect(inLog.finished, `${m} (in doubt): no more than the journal started`).toBeLessThanOrEqual(starts.length);
        expect(inLog.started, `${m} (in doubt): every one started finished`).toBe(inLog.finished);
      }
    }
    const alarms = await target.client().maintenance.alarm({ action: AlarmAction.Get });
    expect(alarms.alarms).toEqual([]);
  }, 240_000);

  it('a replica stopped with SIGTERM hands its run over: another replica resumes it, and an approval there finishes it', async () => {
    await target.fillToNospace();
    const a3 = await startReplica('a3');
    const b = replicas.find((r) => r.name === 'b') ?? await startReplica('b');
    const known = new Set(await runIds());
    await sendSlack(`${a3.url}${ROUTES.slackCommands}`, slashCommandBody({ text: 'run nospace-recovery cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    const runId = await waitUntil('the run in the store', 20_000, async () => (await runIds()).find((id) => !known.has(id)));
    await waitUntil('the approval request', 60_000, async () => foldJournal(await journal(runId)).status === 'awaiting-approval');
    const lockOwners = async () => Object.values(await mgmt.client().getAll().prefix('/runbook/v1/locks/').strings()).map((v) => (JSON.parse(v) as { owner?: string }).owner);
    expect(await lockOwners()).toContain('replica-a3');
    a3.proc.kill('SIGTERM');
    const r = await a3.proc;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/handed over to another replica/);
    // The lock was released on the way out, not left to expire: the moment A3 has exited, no lock is held by it
    // (B may already hold the run's lock again).
    expect(await lockOwners()).not.toContain('replica-a3');
    await waitUntil('replica B to take the run over', 20_000, async () => (await journal(runId)).some((x) => x.type === 'run.resumed'))
      .catch(async (e: Error) => { throw new Error(`${e.message}\n${(await journal(runId)).slice(-6).map((x) => JSON.stringify(x).slice(0, 200)).join('\n')}\n${b.stderr()}`); });
    await waitUntil('the approval request on B', 20_000, async () => foldJournal(await journal(runId)).steps.get('compact')?.status === 'awaiting-approval');
    const click = await sendSlack(`${b.url}${ROUTES.slackInteractions}`, blockActionBody({ user_id: APPROVER, channel_id: CHANNEL, action_id: 'runbook_approve', value: `${runId} compact` }), { secret: SIGNING });
    expect(click.status).toBe(200);
    const records = await waitUntil('the run to finish', 90_000, async () => {
      const j = await journal(runId);
      return j.at(-1)?.type === 'run.finished' ? j : undefined;
    });
    expect(records.at(-1), JSON.stringify(records.at(-1)).slice(0, 2000)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    // the stopping replica wrote nothing after it was told to stop: one run, one end, resumed once
    expect(records.filter((x) => x.type === 'run.finished')).toHaveLength(1);
    expect(records.filter((x) => x.type === 'run.resumed')).toHaveLength(1);
    expect(records.map((x) => x.seq)).toEqual(records.map((_, i) => i + 1));
    expect(records.filter((x) => x.type === 'step.started' && (x as { stepId?: string }).stepId === 'compact')).toHaveLength(1);
    const alarms = await target.client().maintenance.alarm({ action: AlarmAction.Get });
    expect(alarms.alarms).toEqual([]);
  }, 240_000);
});
