/**
 * How fast `runbook serve` acknowledges chat commands: Slack gives a slash command 3 s before it tells the user
 * it failed. The chat-ops tests assert what is answered (and that the ack waits for neither the run nor Slack's
 * API); the time is measured here, on a loopback server and a Slack stand-in (test/support/slack-standin.ts):
 *   - a `run` command (the run starts in the background and pauses at its approval gate; denied afterwards);
 *   - a `list` command while 200 badly signed / unauthenticated requests arrive at once.
 * Target: every ack under 3 s. Exit 1 when missed.
 *
 *   node bench/chatops-load.ts                  # 20 reps of each
 *   node bench/chatops-load.ts --reps 50 --out bench/results/chatops.json
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadChatopsConfig, resolveSecrets } from '../src/chatops/config.ts';
import { ROUTES, startChatopsServer } from '../src/chatops/server.ts';
import { readJournal } from '../src/store/journal.ts';
import { files, listRunIds, runDir } from '../src/store/run-dir.ts';
import { foldJournal } from '../src/execute/state.ts';
import { blockActionBody, post, sendSlack, slashCommandBody, startSlackStandin } from '../test/support/slack-standin.ts';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '20' }, out: { type: 'string' } } });
const REPS = Number(args.reps);
const TARGET_MS = 3000;
const ROOT = path.resolve(import.meta.dirname, '..');
const SECRETS = { SLACK_SIGNING_SECRET: 'bench-signing-secret-0123456789', SLACK_BOT_TOKEN: 'xoxb-bench-0123456789', AM_TOKEN: 'am-bench-0123456789' };
const USER = 'U0BENCH1';
const APPROVER = 'U0BENCH2';
const CHANNEL = 'C0BENCH';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-bench-chatops-'));
const standin = await startSlackStandin({ token: SECRETS.SLACK_BOT_TOKEN });
fs.writeFileSync(path.join(dir, 'cluster.yaml'), 'name: bench\nmembers:\n  - { name: m1, clientURL: "http://127.0.0.1:1", peerURL: "http://127.0.0.1:2", driver: { type: none } }\n');
fs.writeFileSync(path.join(dir, 'chatops.yaml'), `
listen: 127.0.0.1:0
stateDir: ./state
secrets:
  slackSigningSecret: { env: SLACK_SIGNING_SECRET }
  slackBotToken: { env: SLACK_BOT_TOKEN }
  alertmanagerToken: { env: AM_TOKEN }
slack: { apiUrl: ${standin.apiUrl}, channel: ${CHANNEL} }
clusters: { bench: ./cluster.yaml }
runbooks:
  chatops-smoke:
    file: ${path.join(ROOT, 'test/fixtures/valid/chatops-smoke.yaml')}
    users: [${USER}, ${APPROVER}]
    channels: [${CHANNEL}]
    approvers: [${USER}, ${APPROVER}]
approvalTimeout: 10m
`);
const config = loadChatopsConfig(path.join(dir, 'chatops.yaml'), SECRETS);
const server = await startChatopsServer({ config, secrets: resolveSecrets(config, SECRETS), listen: { host: '127.0.0.1', port: 0 }, updateIntervalMs: 100, log: () => {} });
const stateDir = path.join(dir, 'state');
const slack = (route: string, body: string, secret = SECRETS.SLACK_SIGNING_SECRET) => sendSlack(`${server.url}${route}`, body, { secret });
const status = (runId: string) => foldJournal(readJournal(files.journal(runDir(stateDir, runId))).records).status;

const runAck: number[] = [];
const loadedAck: number[] = [];
try {
  for (let i = 0; i < REPS; i++) {
    // A run command: acknowledged, then (outside the measurement) let it reach its gate and deny it.
    const before = new Set(listRunIds(stateDir));
    const r = await slack(ROUTES.slackCommands, slashCommandBody({ text: 'run chatops-smoke cluster=bench pause=1ms', user_id: USER, channel_id: CHANNEL }));
    if (r.status !== 200) throw new Error(`run command: HTTP ${r.status} ${r.text}`);
    runAck.push(r.ms);
    const runId = await standin.waitFor(() => listRunIds(stateDir).find((id) => !before.has(id)), 20_000, 'the run');
    await standin.waitFor(() => status(runId) === 'awaiting-approval', 20_000, 'the gate');
    await slack(ROUTES.slackInteractions, blockActionBody({ user_id: APPROVER, channel_id: CHANNEL, action_id: 'runbook_deny', value: `${runId} change` }));
    await standin.waitFor(() => status(runId) === 'denied', 20_000, 'the denial');
    await server.runs.settled(runId);

    // A list command amid 200 bad requests sent at once.
    const bad = Array.from({ length: 200 }, (_, j) =>
      j % 2
        ? slack(ROUTES.slackCommands, slashCommandBody({ text: `list ${j}`, user_id: USER, channel_id: CHANNEL }), `wrong-${j}`).catch(() => ({ status: 0 }))
        : post(`${server.url}${ROUTES.alertmanager}`, '{}', { 'Content-Type': 'application/json', Authorization: `Bearer bad-${j}` }).catch(() => ({ status: 0 })),
    );
    const good = await slack(ROUTES.slackCommands, slashCommandBody({ text: 'list', user_id: USER, channel_id: CHANNEL }));
    if (good.status !== 200) throw new Error(`list under load: HTTP ${good.status}`);
    loadedAck.push(good.ms);
    const answers = await Promise.all(bad);
    if (!answers.every((a) => a.status === 401)) throw new Error('a bad request was not refused with 401');
  }
} finally {
  await server.close();
  await standin.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!, max: s.at(-1)! };
};
const rows = [['run command ack', stats(runAck)], ['list ack amid 200 bad requests', stats(loadedAck)]] as const;
console.log(`chat-ops acknowledgments (${REPS} reps, Node ${process.versions.node}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
console.log('| request | median ms | p95 ms | max ms |');
console.log('|---|---:|---:|---:|');
for (const [name, s] of rows) console.log(`| ${name} | ${s.median} | ${s.p95} | ${s.max} |`);
const missed = rows.filter(([, s]) => s.max >= TARGET_MS).map(([name, s]) => `${name}: max ${s.max} ms >= ${TARGET_MS} ms`);
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify({ at: new Date().toISOString(), reps: REPS, node: process.versions.node, runAckMs: runAck, loadedAckMs: loadedAck, missed }, null, 2)}\n`);
if (missed.length) {
  console.log(`missed:\n  ${missed.join('\n  ')}`);
  process.exitCode = 1;
}
