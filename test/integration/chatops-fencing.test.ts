/**
 * One voice per run, real processes and real etcd: two `runbook serve` replicas on a management etcd 
 * Replica A runs a chat-started run; while a change is running A is frozen (SIGSTOP) past its lease (TTL 5 s); replica B takes
 * the run over and finishes it; then A is thawed (SIGCONT). A must say nothing more about that run: the shared audit
 * log and the chat show ONE ending, the successful one, A's own audit file has no ending and its metrics no failed
 * run, and A says on stderr that it lost the run's lock.
 */
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/chatops/server.ts';
import { foldJournal } from '../../src/execute/state.ts';
import type { JournalRecord } from '../../src/events/types.ts';
import { freePorts, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { blockActionBody, sendSlack, slashCommandBody, startSlackStandin, type SlackStandin } from '../support/slack-standin.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const SIGNING = 'signing-secret-3e1c9a7f5d2b';
const BOT = 'xoxb-bot-token-6d4b2f0e8c1a';
const REQUESTER = 'U0ONCALL1';
const APPROVER = 'U0SRE2';
const CHANNEL = 'C0INCIDENT';
// Long enough that a loaded CI machine does not lose a lease by itself (the freeze is what must outlast it).
const TTL = 5;

let dir = '';
let mgmt: TestCluster;
let target: TestCluster;
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

interface Replica { name: string; url: string; proc: ResultPromise; stderr: () => string; stateDir: string }

async function startReplica(name: string): Promise<Replica> {
  const [port] = await freePorts(1);
  const proc = execa(process.execPath, [bin, 'serve', '-c', path.join(dir, `chatops-${name}.yaml`), '--listen', `127.0.0.1:${port}`,
    '--store', `etcd://${mgmt.endpoints[0]!.replace(/^https?:\/\//, '')}`, '--replica-id', `replica-${name}`], {
    reject: false, env: { NO_COLOR: '1', SIGNING, BOT, RUNBOOK_STORE_LEASE_TTL: String(TTL) }, timeout: 240_000,
  });
  procs.push(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitUntil(`replica ${name} to listen`, 30_000, () => /listening on/.test(err)).catch((e: Error) => { throw new Error(`${e.message}:\n${err}`); });
  return { name, url: `http://127.0.0.1:${port}`, proc, stderr: () => err, stateDir: path.join(dir, `state-${name}`) };
}

async function storeJournal(runId: string): Promise<JournalRecord[]> {
  const kvs = await mgmt.client().getAll().prefix(`/runbook/v1/runs/${runId}/journal/`).strings();
  return Object.keys(kvs).sort().map((k) => JSON.parse(kvs[k]!) as JournalRecord);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-fencing-'));
  [mgmt, target, standin] = await Promise.all([
    startCluster({ members: 1, name: 'fencing-mgmt' }),
    startCluster({ members: 1, name: 'fencing-target' }),
    startSlackStandin({ token: BOT }),
  ]);
  target.writeInventory(path.join(dir, 'cluster.yaml'));
  fs.writeFileSync(path.join(dir, 'slow-change.yaml'), `apiVersion: runbook/v1
name: slow-change
summary: a read-only wait, then a change that takes a few seconds, then another
steps:
  - id: look
    action: wait
    with: { duration: 50ms }
  - id: change
    action: exec
    with: { argv: [sleep, "6"], idempotent: true }
  - id: change-again
    action: exec
    with: { argv: ["true"], idempotent: true }
`);
  for (const name of ['a', 'b']) {
    fs.writeFileSync(path.join(dir, `chatops-${name}.yaml`), `
stateDir: ./state-${name}
secrets:
  slackSigningSecret: { env: SIGNING }
  slackBotToken: { env: BOT }
slack: { apiUrl: "${standin.apiUrl}", channel: ${CHANNEL} }
clusters:
  etcd-test: ./cluster.yaml
runbooks:
  slow-change:
    file: ./slow-change.yaml
    users: [${REQUESTER}]
    channels: [${CHANNEL}]
    approvers: [${APPROVER}]
approvalTimeout: 5m
`);
  }
}, 120_000);

afterAll(async () => {
  for (const p of procs) {
    try { p.kill('SIGCONT'); p.kill('SIGKILL'); } catch { /* gone */ }
    await p.catch(() => {});
  }
  await standin?.close();
  await target?.teardown();
  await mgmt?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('a replica frozen past its lease, thawed after the other finished its run', () => {
  it('says nothing more about the run: one ending (the successful one) in the audit log and the chat', async () => {
    const a = await startReplica('a');
    const b = await startReplica('b');
    const cmd = await sendSlack(`${a.url}${ROUTES.slackCommands}`, slashCommandBody({ text: 'run slow-change cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }), { secret: SIGNING });
    expect(cmd.status).toBe(200);
    const runId = await waitUntil('the run in the store', 20_000, async () => (await mgmt.client().getAll().prefix('/runbook/v1/index/').keys())[0]?.split('/').at(-1));
    await waitUntil('the approval request', 30_000, async () => foldJournal(await storeJournal(runId)).status === 'awaiting-approval');
    await sendSlack(`${b.url}${ROUTES.slackInteractions}`, blockActionBody({ user_id: APPROVER, channel_id: CHANNEL, action_id: 'runbook_approve', value: `${runId} change` }), { secret: SIGNING });
    await waitUntil('A to start the change', 20_000, async () => (await storeJournal(runId)).some((r) => r.type === 'step.started' && r.stepId === 'change'));

    a.proc.kill('SIGSTOP');
    const records = await waitUntil('B to take the run over and finish it', 90_000, async () => {
      const j = await storeJournal(runId);
      return j.some((r) => r.type === 'run.finished') ? j : undefined;
    });
    const journalText = () => records.map((r) => `${r.ts} ${r.seq} ${r.type} ${(r as { stepId?: string }).stepId ?? ''} ${(r as { pid?: number }).pid ?? ''}`).join('\n');
    expect(records.at(-1), journalText()).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    // A ran it until the freeze (one run.started by A's pid), B resumed it once
    expect(records.filter((r) => r.type === 'run.resumed'), `${journalText()}\nA:\n${a.stderr()}\nB:\n${b.stderr()}`).toHaveLength(1);
    expect((records.find((r) => r.type === 'run.started') as { pid?: number }).pid).toBe(a.proc.pid);
    expect(b.stderr()).toMatch(new RegExp(`run ${runId}: taken over`));

    // B's last word in chat: the run's one message shows the success
    await waitUntil('B to show the ending in chat', 30_000, () => [...standin.messages.values()].some((m) => m.text.includes(runId) && /succeeded/.test(m.text)));
    const shownAt = standin.calls.length;

    a.proc.kill('SIGCONT');
    const line = await waitUntil('A to say it lost the run', 60_000, () => a.stderr().split('\n').find((l) => l.includes(`run ${runId}`) && /lost the run's lock/.test(l)));
    expect(line).toMatch(/says nothing more about it/);
    const metricsA = await (await fetch(`${a.url}${ROUTES.metrics}`)).text();
    expect(metricsA).not.toMatch(/runbook_runs_total\{[^}]*outcome="failed"/);
    // Stop both: after that nothing more can be written, so the logs below are complete.
    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    await Promise.all([a.proc, b.proc]);

    // The store's journal kept one ending; A's thaw appended nothing to it.
    const after = await storeJournal(runId);
    expect(after).toEqual(records);
    // The shared audit log (every replica writes there): one ending, B's, succeeded.
    const audit = Object.values(await mgmt.client().getAll().prefix('/runbook/v1/audit/').strings()).map((v) => JSON.parse(v));
    const endings = audit.filter((x) => x.event === 'run.finished' && x.runId === runId);
    expect(endings).toEqual([expect.objectContaining({ outcome: 'succeeded', replica: 'replica-b' })]);
    expect(audit.filter((x) => x.runId === runId && x.replica === 'replica-a' && Date.parse(x.ts) > Date.parse(records.at(-1)!.ts))).toEqual([]);
    // A's own audit file has no ending for it either.
    const localA = fs.readFileSync(path.join(a.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(localA.filter((x) => x.event === 'run.finished' && x.runId === runId)).toEqual([]);
    // The chat: one message for the run, showing the success; no post or edit ever showed a failure.
    const calls = standin.calls.filter((c) => String(c.args.text ?? '').includes(runId));
    expect(calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(1);
    expect(calls.filter((c) => /failed|❌/.test(String(c.args.text)))).toEqual([]);
    const msg = [...standin.messages.values()].find((m) => m.text.includes(runId))!;
    const story = () => [
      ...calls.map((c) => `${new Date(c.at).toISOString()} ${c.method} ${String(c.args.text).split('\n')[0]}`),
      `A:\n${a.stderr()}`, `B:\n${b.stderr()}`,
      ...records.map((r) => `${r.ts} ${r.seq} ${r.type} ${(r as { stepId?: string }).stepId ?? ''}`),
    ].join('\n');
    expect(msg.text, story()).toMatch(/succeeded/);
    // nothing after B's ending showed anything else (the thawed A edited nothing)
    expect(standin.calls.slice(shownAt).filter((c) => String(c.args.text ?? '').includes(runId) && !/succeeded/.test(String(c.args.text))).map((c) => String(c.args.text).split('\n')[0]), story()).toEqual([]);
  }, 240_000);
});
