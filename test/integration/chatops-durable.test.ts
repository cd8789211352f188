/**
 * Chat-ops state that survives `runbook serve` restarts, with real serve processes and real etcd:
 * - the same Alertmanager notification before and after a restart starts one run (state dir), and replicas on a
 *   management etcd share dedupe and cooldown;
 * - a run interrupted by a restart between its approval and its end is resumed by the next serve: one run, its
 *   later change covered by the first approval (no second ask), the same chat message edited to its ending;
 * - serve refuses, before writing anything, a --store that is a cluster of its own config;
 * - with chat unreachable, the log names the run, the step and the terminal command; `runbook approve --reason`
 *   from that terminal is in the audit log with its source and reason.
 * The runbook is harmless (a read-only wait, then two argv commands) against a real one-member cluster; the chat
 * is the loopback Slack stand-in.
 */
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/chatops/server.ts';
import { readJournal } from '../../src/store/journal.ts';
import { files, listRunIds, runDir } from '../../src/store/run-dir.ts';
import { foldJournal } from '../../src/execute/state.ts';
import type { JournalRecord } from '../../src/events/types.ts';
import { freePorts, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { blockActionBody, post, sendSlack, slashCommandBody, startSlackStandin, type SlackStandin } from '../support/slack-standin.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const SIGNING = 'signing-secret-5d3b1f9e7c2a';
const BOT = 'xoxb-bot-token-1f3e5d7c9b2a';
const AM = 'am-bearer-token-8c6a4e2f0d9b';
const REQUESTER = 'U0ONCALL1';
const APPROVER = 'U0SRE2';
const CHANNEL = 'C0INCIDENT';

let dir = '';
let target: TestCluster;
let mgmt: TestCluster;
let standin: SlackStandin;
const procs: ResultPromise[] = [];

async function waitUntil<T>(what: string, ms: number, pick: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await Promise.resolve().then(pick).catch((err: unknown) => { last = err; return undefined; });
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function writeConfig(name: string, opts: { apiUrl?: string; stateDir?: string } = {}): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `
stateDir: ${opts.stateDir ?? `./state-${name}`}
secrets:
  slackSigningSecret: { env: SIGNING }
  slackBotToken: { env: BOT }
  alertmanagerToken: { env: AM }
slack: { apiUrl: "${opts.apiUrl ?? standin.apiUrl}", channel: ${CHANNEL} }
clusters:
  etcd-test: ./cluster.yaml
runbooks:
  chatops-durable:
    file: ./durable.yaml
    users: [${REQUESTER}, ${APPROVER}]
    channels: [${CHANNEL}]
    approvers: [${REQUESTER}, ${APPROVER}]
alerts:
  etcdNoSpace: { runbook: chatops-durable, clusterLabel: cluster }
cooldown: 30m
approvalTimeout: 5m
`);
  return file;
}

interface Serve { url: string; proc: ResultPromise; stderr: () => string }

async function startServe(config: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Serve> {
  const [port] = await freePorts(1);
  const proc = execa(process.execPath, [bin, 'serve', '-c', config, '--listen', `127.0.0.1:${port}`, ...extra], {
    reject: false, env: { NO_COLOR: '1', SIGNING, BOT, AM, ...env }, timeout: 240_000,
  });
  procs.push(proc);
  let err = '';
  let exited = false;
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  void proc.then(() => { exited = true; });
  await waitUntil('serve to listen', 30_000, () => /listening on/.test(err) || exited).catch((e: Error) => { throw new Error(`${e.message}:\n${err}`); });
  if (!/listening on/.test(err)) throw new Error(`serve exited:\n${err}`);
  return { url: `http://127.0.0.1:${port}`, proc, stderr: () => err };
}

async function stop(s: Serve): Promise<void> {
  s.proc.kill('SIGTERM');
  await s.proc;
}

const journalOf = (stateDir: string, runId: string): JournalRecord[] => readJournal(files.journal(runDir(stateDir, runId))).records;
const auditOf = (stateDir: string): any[] => {
  try {
    return fs.readFileSync(path.join(stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};

const notification = (startsAt = '2026-12-07T10:00:00Z') => JSON.stringify({
  version: '4', groupKey: '{}:{alertname="etcdNoSpace"}', status: 'firing', receiver: 'runbook',
  alerts: [{ status: 'firing', labels: { alertname: 'etcdNoSpace', cluster: 'etcd-test' }, startsAt, fingerprint: 'a1b2c3d4e5f60718' }],
});
const alert = (s: Serve, body = notification()) => post(`${s.url}${ROUTES.alertmanager}`, body, { 'Content-Type': 'application/json', Authorization: `Bearer ${AM}` });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-durable-'));
  [target, mgmt, standin] = await Promise.all([
    startCluster({ members: 1, name: 'durable-target' }),
    startCluster({ members: 1, name: 'durable-mgmt' }),
    startSlackStandin({ token: BOT }),
  ]);
  target.writeInventory(path.join(dir, 'cluster.yaml'));
  fs.writeFileSync(path.join(dir, 'durable.yaml'), `apiVersion: runbook/v1
name: chatops-durable
summary: a read-only wait, then two harmless changes (the second covered by the approval of the first)
steps:
  - id: look
    action: wait
    with: { duration: 50ms }
  - id: change
    action: exec
    with: { argv: [sleep, "3"], idempotent: true }
  - id: change-again
    action: exec
    with: { argv: ["true"], idempotent: true }
`);
}, 120_000);

afterAll(async () => {
  for (const p of procs) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
    await p.catch(() => {});
  }
  await standin?.close();
  await target?.teardown();
  await mgmt?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('alert dedupe and cooldown survive a restart and are shared', () => {
  it('state dir: the same notification after a serve restart is a duplicate, a new one for the cluster is in cooldown: one run', async () => {
    const config = writeConfig('alerts');
    const stateDir = path.join(dir, 'state-alerts');
    const first = await startServe(config);
    const r1 = await alert(first);
    expect(r1.json.results).toEqual([expect.objectContaining({ outcome: 'started', cluster: 'etcd-test' })]);
    await waitUntil('the alert-started run', 20_000, () => listRunIds(stateDir).length === 1);
    await stop(first);

    const second = await startServe(config);
    const r2 = await alert(second);
    expect(r2.json.results).toEqual([expect.objectContaining({ outcome: 'duplicate' })]);
    const r3 = await alert(second, notification('2026-12-07T10:08:00Z'));
    expect(r3.json.results).toEqual([expect.objectContaining({ outcome: 'cooldown', cluster: 'etcd-test' })]);
    expect(listRunIds(stateDir)).toHaveLength(1);
    // The restarted server resumed the interrupted run (it waits for approval again): deny it, so it ends here.
    const runId = listRunIds(stateDir)[0]!;
    await waitUntil('the resumed run to wait for approval', 30_000, () => {
      const j = journalOf(stateDir, runId);
      return j.some((r) => r.type === 'run.resumed') && foldJournal(j).status === 'awaiting-approval';
    });
    // (by slash command this time: the same checks and audit as a button)
    const denied = await sendSlack(`${second.url}${ROUTES.slackCommands}`, slashCommandBody({ text: `deny ${runId} change`, user_id: APPROVER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(denied.json.text).toMatch(/Denied step "change"/);
    await waitUntil('the run to end denied', 20_000, () => foldJournal(journalOf(stateDir, runId)).status === 'denied');
    await stop(second);
    expect(auditOf(stateDir)).toContainEqual(expect.objectContaining({ event: 'approval.denied', runId, source: 'slack', via: 'slack command', reason: expect.stringMatching(/denied in chat/) }));
  }, 120_000);

  it('management etcd: two replicas share it; one restarted replica remembers it', async () => {
    const store = ['--store', `etcd://${mgmt.endpoints[0]!.replace(/^https?:\/\//, '')}`];
    const a = await startServe(writeConfig('alerts-a'), [...store, '--replica-id', 'alerts-a']);
    const b = await startServe(writeConfig('alerts-b'), [...store, '--replica-id', 'alerts-b']);
    const body = notification('2026-12-07T11:00:00Z');
    // Alertmanager in HA sends the same notification to both
    const [ra, rb] = await Promise.all([alert(a, body), alert(b, body)]);
    const outcomes = [...ra.json.results, ...rb.json.results].map((r: { outcome: string }) => r.outcome).sort();
    expect(outcomes).toEqual(['duplicate', 'started']);
    await waitUntil('the run in the store', 20_000, async () => (await mgmt.client().getAll().prefix('/runbook/v1/index/').keys()).length === 1);
    await stop(a);
    const a2 = await startServe(writeConfig('alerts-a'), [...store, '--replica-id', 'alerts-a']);
    expect((await alert(a2, body)).json.results).toEqual([expect.objectContaining({ outcome: 'duplicate' })]);
    expect((await alert(a2, notification('2026-12-07T11:09:00Z'))).json.results).toEqual([expect.objectContaining({ outcome: 'cooldown' })]);
    const runs = await mgmt.client().getAll().prefix('/runbook/v1/index/').keys();
    expect(runs).toHaveLength(1);
    // End that run (it waits for approval in one of the replicas) so the next tests find the cluster unlocked.
    const runId = runs[0]!.split('/').at(-1)!;
    const storeJournal = async () => Object.entries(await mgmt.client().getAll().prefix(`/runbook/v1/runs/${runId}/journal/`).strings()).sort(([x], [y]) => x.localeCompare(y)).map(([, v]) => JSON.parse(v) as JournalRecord);
    await waitUntil('the run to wait for approval', 30_000, async () => foldJournal(await storeJournal()).status === 'awaiting-approval');
    const deny = await execa(process.execPath, [bin, 'deny', runId, 'change', ...store, '--reason', 'test cleanup'], { reject: false });
    expect(deny.exitCode, deny.stderr).toBe(0);
    await waitUntil('the run to end denied', 30_000, async () => foldJournal(await storeJournal()).status === 'denied');
    await stop(a2);
    await stop(b);
  }, 120_000);
});

describe('a run interrupted by a serve restart', () => {
  it('between its approval and its end: the next serve resumes the same run, coverage kept, same message; no second run', async () => {
    const config = writeConfig('restart');
    const stateDir = path.join(dir, 'state-restart');
    const first = await startServe(config);
    const cmd = await sendSlack(`${first.url}${ROUTES.slackCommands}`, slashCommandBody({ text: 'run chatops-durable cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(cmd.status).toBe(200);
    const runId = await waitUntil('the run', 20_000, () => listRunIds(stateDir)[0]);
    await waitUntil('the approval request', 30_000, () => foldJournal(journalOf(stateDir, runId)).status === 'awaiting-approval');
    const click = await sendSlack(`${first.url}${ROUTES.slackInteractions}`, blockActionBody({ user_id: APPROVER, channel_id: CHANNEL, action_id: 'runbook_approve', value: `${runId} change` }), { secret: SIGNING });
    expect(click.status).toBe(200);
    await waitUntil('the change to start', 20_000, () => journalOf(stateDir, runId).some((r) => r.type === 'step.started' && r.stepId === 'change'));
    await stop(first);
    const interrupted = foldJournal(journalOf(stateDir, runId));
    expect(interrupted.status).toBe('cancelled');

    const second = await startServe(config);
    const records = await waitUntil('the run to finish', 60_000, () => {
      const j = journalOf(stateDir, runId);
      return j.at(-1)?.type === 'run.finished' && foldJournal(j).status !== 'cancelled' ? j : undefined;
    });
    expect(foldJournal(records).status, second.stderr()).toBe('succeeded');
    expect(listRunIds(stateDir)).toEqual([runId]); // the same run, not a second one
    expect(records.filter((r) => r.type === 'run.started')).toHaveLength(1);
    expect(records.some((r) => r.type === 'run.resumed')).toBe(true);
    // change-again was covered by the approval of change, after the resume: no second human ask
    const again = records.filter((r) => r.type === 'approval.granted' && r.stepId === 'change-again');
    expect(again).toEqual([expect.objectContaining({ by: `slack:${APPROVER}`, via: 'covered by the approval of change' })]);
    // one message for the run, edited by the second server to its ending
    const posted = standin.calls.filter((c) => c.method === 'chat.postMessage' && String(c.args.text).includes(runId));
    expect(posted).toHaveLength(1);
    const msg = await waitUntil('the message to show the ending', 10_000, () => [...standin.messages.values()].find((m) => m.text.includes(runId) && /succeeded/.test(m.text)));
    expect(msg.text).toMatch(/resumed by/);
    await stop(second);
    const audit = auditOf(stateDir);
    expect(audit).toContainEqual(expect.objectContaining({ event: 'run.resumed', runId }));
    expect(audit.filter((a) => a.event === 'run.finished' && a.runId === runId).map((a) => a.outcome)).toEqual(['cancelled', 'succeeded']);
    expect(audit).toContainEqual(expect.objectContaining({ event: 'approval.granted', runId, stepId: 'change', source: 'slack', reason: expect.stringMatching(/approved in chat/) }));
    expect(audit).toContainEqual(expect.objectContaining({ event: 'approval.granted', runId, stepId: 'change-again', source: 'coverage' }));
  }, 180_000);
});

describe('serve and its store', () => {
  it('refuses, before writing anything, a --store that is a cluster of its config', async () => {
    const stateDir = path.join(dir, 'state-self');
    const r = await execa(process.execPath, [bin, 'serve', '-c', writeConfig('self'), '--listen', '127.0.0.1:0', '--store', `etcd://${target.endpoints[0]!.replace(/^https?:\/\//, '')}`], {
      reject: false, env: { NO_COLOR: '1', SIGNING, BOT, AM }, timeout: 60_000,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/clusters\.etcd-test: .*is the cluster being recovered/);
    expect(r.stderr).not.toMatch(/listening on/);
    expect(await target.client().getAll().prefix('/runbook/').keys()).toEqual([]);
    expect(fs.existsSync(stateDir)).toBe(false);
  }, 60_000);
});

describe('chat unreachable', () => {
  it('the log names the run, the step and the terminal command; that approval is audited with its source and reason', async () => {
    const stateDir = path.join(dir, 'state-nochat');
    const [closed] = await freePorts(1);
    const s = await startServe(writeConfig('nochat', { apiUrl: `http://127.0.0.1:${closed}/api/` }));
    const cmd = await sendSlack(`${s.url}${ROUTES.slackCommands}`, slashCommandBody({ text: 'run chatops-durable cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(cmd.status).toBe(200);
    const runId = await waitUntil('the run', 20_000, () => listRunIds(stateDir)[0]);
    const line = await waitUntil('the log line', 30_000, () => s.stderr().split('\n').find((l) => l.includes(`run ${runId}`) && /waits for approval/.test(l)));
    expect(line).toMatch(/chat is unreachable/);
    expect(line).toContain(`runbook approve ${runId} change --state-dir ${stateDir}`);

    const approve = await execa(process.execPath, [bin, 'approve', runId, 'change', '--state-dir', stateDir, '--reason', 'checked the cluster by hand'], { reject: false, env: { NO_COLOR: '1', USER: 'oncall' } });
    expect(approve.exitCode, approve.stderr).toBe(0);
    await waitUntil('the run to finish', 60_000, () => foldJournal(journalOf(stateDir, runId)).status === 'succeeded');
    await stop(s);
    expect(auditOf(stateDir)).toContainEqual(expect.objectContaining({ event: 'approval.granted', runId, stepId: 'change', source: 'cli', via: 'cli', reason: 'checked the cluster by hand' }));
  }, 120_000);
});
