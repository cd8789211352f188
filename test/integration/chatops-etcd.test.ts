/**
 * Chat-ops against a real 3-member etcd filled to NOSPACE: a signed Slack command starts nospace-recovery, the run
 * pauses before its first change, a Deny ends it with the cluster untouched, the requester cannot approve their
 * own run, another approver's Approve lets it finish, and the NOSPACE alarm is gone (checked with the etcd3 client).
 * Progress goes to a loopback stand-in of the Slack Web API: one message per run, edited, with a final summary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlarmAction } from 'etcd3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadChatopsConfig, resolveSecrets } from '../../src/chatops/config.ts';
import { ROUTES, startChatopsServer, type ChatopsServer } from '../../src/chatops/server.ts';
import { readJournal } from '../../src/store/journal.ts';
import { files, listRunIds, runDir } from '../../src/store/run-dir.ts';
import { foldJournal } from '../../src/execute/state.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { blockActionBody, sendSlack, slashCommandBody, startSlackStandin, type SlackStandin } from '../support/slack-standin.ts';

const SIGNING = 'signing-secret-2b7d9f1e3c5a';
const BOT = 'xoxb-bot-token-8e6c4a2f0d1b';
const REQUESTER = 'U0ONCALL1';
const APPROVER = 'U0SRE2';
const CHANNEL = 'C0INCIDENT';

let dir: string;
let cluster: TestCluster;
let standin: SlackStandin;
let server: ChatopsServer;
let stateDir: string;

const slack = (route: string, body: string) => sendSlack(`${server.url}${route}`, body, { secret: SIGNING });
const state = (runId: string) => foldJournal(readJournal(files.journal(runDir(stateDir, runId))).records);

async function startFromChat(): Promise<string> {
  const before = new Set(listRunIds(stateDir));
  // Acknowledged without waiting for the run or Slack's API (whose answers are held until the ack is in; the
  // response time is in BENCHMARKS.md, not asserted here).
  const slackApi = standin.hold('chat.postMessage');
  try {
    const r = await slack(ROUTES.slackCommands, slashCommandBody({ text: 'run nospace-recovery cluster=etcd-test', user_id: REQUESTER, channel_id: CHANNEL }));
    expect(r.status).toBe(200);
    expect(r.json.text).toMatch(/Starting \*nospace-recovery\*/);
    await slackApi.arrived;
  } finally {
    slackApi.release();
  }
  const runId = await standin.waitFor(() => listRunIds(stateDir).find((id) => !before.has(id)), 15_000, 'the run to start');
  await standin.waitFor(() => state(runId).status === 'awaiting-approval' || ['failed', 'succeeded'].includes(state(runId).status), 60_000, 'the run to pause for approval');
  expect(state(runId).status).toBe('awaiting-approval');
  return runId;
}

const click = (user: string, action: 'runbook_approve' | 'runbook_deny', runId: string, stepId: string) =>
  slack(ROUTES.slackInteractions, blockActionBody({ user_id: user, channel_id: CHANNEL, action_id: action, value: `${runId} ${stepId}` }));

async function nospaceAlarms(): Promise<string[]> {
  const c = cluster.client();
  const r = await c.maintenance.alarm({ action: AlarmAction.Get });
  return r.alarms.map((a) => String(a.alarm).toUpperCase());
}

function messageOf(runId: string) {
  const posted = standin.calls.filter((c) => c.method === 'chat.postMessage' && String(c.args.text).includes(runId));
  const msg = [...standin.messages.values()].find((m) => m.text.includes(runId));
  return { posted, msg };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-chatops-etcd-'));
  stateDir = path.join(dir, 'state');
  [cluster, standin] = await Promise.all([
    startCluster({ members: 3, name: 'etcd-test' }),
    startSlackStandin({ token: BOT }),
  ]);
  await cluster.fillToNospace();
  const inventory = cluster.writeInventory(path.join(dir, 'cluster.yaml'));
  const file = path.join(dir, 'chatops.yaml');
  fs.writeFileSync(file, `
stateDir: ./state
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
  const env = { SIGNING, BOT };
  const config = loadChatopsConfig(file, env);
  server = await startChatopsServer({ config, secrets: resolveSecrets(config, env), listen: { host: '127.0.0.1', port: 0 }, updateIntervalMs: 200, log: () => {} });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await standin?.close();
  await cluster?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('nospace-recovery from Slack on a real NOSPACE cluster', () => {
  // Each test starts from NOSPACE (a test that recovers the cluster leaves it writable: fill it again).
  beforeEach(async () => {
    if (!(await nospaceAlarms()).includes('NOSPACE')) await cluster.fillToNospace();
    expect(await nospaceAlarms()).toContain('NOSPACE');
  }, 120_000);

  it('pauses for approval; a Deny ends it and changes nothing', async () => {
    expect(await nospaceAlarms()).toContain('NOSPACE');
    const runId = await startFromChat();
    const st = state(runId);
    // the read-only preflight ran; the first change (compact) waits
    expect(st.steps.get('preflight')?.status).toBe('succeeded');
    expect(st.steps.get('compact')?.status).toBe('awaiting-approval');

    const r = await click(APPROVER, 'runbook_deny', runId, 'compact');
    expect(r.status).toBe(200);
    await standin.waitFor(() => state(runId).status === 'denied', 15_000, 'the run to end denied');
    await server.runs.settled(runId);
    expect(await nospaceAlarms()).toContain('NOSPACE');
    const { posted, msg } = messageOf(runId);
    expect(posted).toHaveLength(1);
    expect(msg!.text).toMatch(/was denied/);
    expect(msg!.text).toMatch(/Summary:\*? denied/);
  });

  it('refuses the requester\'s own approval; another approver lets it finish and NOSPACE is gone', async () => {
    const runId = await startFromChat();
    const callsFrom = standin.calls.length;
    expect(await click(REQUESTER, 'runbook_approve', runId, 'compact')).toMatchObject({ status: 200 });
    await standin.waitFor(() => standin.calls.slice(callsFrom).some((c) => c.method === 'chat.postEphemeral' && c.args.user === REQUESTER && /another approver/.test(c.args.text)), 5000, 'the refusal');
    expect(state(runId).status).toBe('awaiting-approval');

    expect(await click(APPROVER, 'runbook_approve', runId, 'compact')).toMatchObject({ status: 200 });
    await standin.waitFor(() => ['succeeded', 'failed', 'denied', 'cancelled'].includes(state(runId).status), 120_000, 'the run to end');
    await server.runs.settled(runId);
    const st = state(runId);
    if (st.status !== 'succeeded') throw new Error(`run ended ${st.status}: ${JSON.stringify(st.finished?.error)}`);
    expect(st.steps.get('compact')?.approval).toMatchObject({ status: 'granted', by: `slack:${APPROVER}` });
    expect(st.steps.get('defrag')?.status).toBe('succeeded');

    expect(await nospaceAlarms()).toEqual([]);
    await cluster.client().put('runbook-test/after-chatops').value('ok').exec();

    const { posted, msg } = messageOf(runId);
    expect(posted).toHaveLength(1);
    expect(msg!.updates).toBeGreaterThanOrEqual(2);
    expect(msg!.text).toMatch(/succeeded/);
    expect(msg!.text).toMatch(/Summary:\*? succeeded/);
    expect(JSON.stringify(msg!.blocks)).toContain('defrag');

    await server.audit.flush();
    const audit = fs.readFileSync(server.audit.file, 'utf8');
    expect(audit).toMatch(new RegExp(`"event":"approval.refused".*"runId":"${runId}".*another approver`));
    expect(audit).toMatch(new RegExp(`"event":"run.finished".*"runId":"${runId}".*"outcome":"succeeded"`));
    expect(audit).not.toContain(SIGNING);
    expect(audit).not.toContain(BOT);
  });
});
