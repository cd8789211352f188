/**
 * A guard inside `runbook serve` (a cluster's `guard:` entry in chatops.yaml) against a real 3-member cluster whose
 * history grows without auto-compaction: it runs nospace-prevention by itself, says so and what it finds in the
 * configured channel (a loopback stand-in of the Slack Web API), and shows its decisions on the server's /metrics and
 * in the audit log. A bad rule in the config is refused at file:line:col before anything starts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadChatopsConfig, resolveSecrets } from '../../src/chatops/config.ts';
import { startChatopsServer, type ChatopsServer } from '../../src/chatops/server.ts';
import { readJournal } from '../../src/store/journal.ts';
import { files, listRunIds, runDir } from '../../src/store/run-dir.ts';
import { UserError, formatDiagnostic } from '../../src/util/errors.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.ts';

const SIGNING = 'signing-secret-2b7d9f1e3c5a';
const BOT = 'xoxb-bot-token-8e6c4a2f0d1b';
const CHANNEL = 'C0ETCDOPS';

let dir = '';
let cluster: TestCluster | undefined;
let standin: SlackStandin | undefined;
let server: ChatopsServer | undefined;

afterEach(async () => {
  await server?.close();
  await standin?.close();
  await cluster?.teardown();
  server = undefined;
  standin = undefined;
  cluster = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function config(inventory: string, standinUrl: string, rule: string): string {
  return `
stateDir: ./state
secrets:
  slackSigningSecret: { env: SIGNING }
  slackBotToken: { env: BOT }
slack: { apiUrl: "${standinUrl}", channel: ${CHANNEL} }
clusters:
  prod:
    inventory: ${inventory}
    guard:
      interval: 500ms
      cooldown: 1h
      params: { keepRevisions: 10 }
      rules:
        quota-use: false
        fragmentation: false
        history: ${JSON.stringify(rule)}
runbooks: {}
`;
}

describe('guards inside runbook serve', () => {
  it('runs nospace-prevention when a rule holds, says it and its findings in chat, on /metrics and in the audit log', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-serve-'));
    [cluster, standin] = await Promise.all([startCluster({ members: 3, name: 'prod' }), startSlackStandin({ token: BOT })]);
    const client = cluster.client();
    for (let i = 0; i < 80; i++) await client.put(`/hist/${i % 4}`).value(`v${i}`);
    const file = path.join(dir, 'chatops.yaml');
    fs.writeFileSync(file, config(cluster.writeInventory(path.join(dir, 'cluster.yaml')), standin.apiUrl, 'cluster.history > 50'));
    const env = { SIGNING, BOT };
    const cfg = loadChatopsConfig(file, env);
    server = await startChatopsServer({ config: cfg, secrets: resolveSecrets(cfg, env), listen: { host: '127.0.0.1', port: 0 }, log: () => {} });

    const stateDir = path.join(dir, 'state');
    const s = standin;
    const texts = () => [...s.messages.values()].map((m) => m.text);
    const started = await s.waitFor(() => texts().find((t) => /history holds: started nospace-prevention/.test(t)), 30_000, 'a chat line saying the guard started a run');
    const runId = /run (\S+?)\)/.exec(started)![1]!;
    await s.waitFor(() => texts().find((t) => t.includes(`run ${runId} succeeded`)), 60_000, 'a chat line saying the run succeeded');
    expect(listRunIds(stateDir)).toEqual([runId]);
    const recs = readJournal(files.journal(runDir(stateDir, runId))).records;
    expect(recs.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    expect(texts().some((t) => /auto-compaction is off/.test(t))).toBe(true);
    // the history was compacted down to the 10 kept revisions
    const rev = Number((await client.get('/hist/0').exec()).header.revision);
    await expect(client.get('/hist/0').revision(rev - 12).exec()).rejects.toThrow(/compacted/);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/runbook_guard_decisions_total\{cluster="prod",decision="started"\} 1/);
    expect(metrics).toMatch(/runbook_guard_runs_total\{cluster="prod",outcome="succeeded"\} 1/);
    expect(metrics).toMatch(/runbook_guard_finding\{cluster="prod",code="auto-compaction-off",member="",severity="warning"\} 1/);
    expect(metrics).toMatch(/runbook_guard_requests_total\{cluster="prod",member="m1",kind="metrics",outcome="ok"\} \d+/);
    await server.audit.flush();
    const audit = fs.readFileSync(path.join(stateDir, 'audit.jsonl'), 'utf8');
    expect(audit).toContain(`"event":"guard.decision","outcome":"started"`);
    expect(audit).toContain(`"runId":"${runId}"`);
  });

  it('a rule that does not parse is refused at its place in chatops.yaml', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-guard-serve-'));
    const inv = path.join(dir, 'cluster.yaml');
    fs.writeFileSync(inv, 'name: prod\nmembers:\n  - { name: m1, clientURL: "http://127.0.0.1:1", peerURL: "http://127.0.0.1:2" }\n');
    const file = path.join(dir, 'chatops.yaml');
    fs.writeFileSync(file, config(inv, 'http://127.0.0.1:9/api/', 'members.exists(m, '));
    let err: unknown;
    try {
      loadChatopsConfig(file, { SIGNING, BOT });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const lines = (err as UserError).diagnostics.map(formatDiagnostic);
    expect(lines.join('\n')).toMatch(/chatops\.yaml:\d+:\d+: .*clusters\.prod\.guard\.rules history/);
  });
});
