/**
 * Run state in a management etcd (`--store etcd://…`), through real CLI processes and real etcd:
 * a run and its approval from another process, history/status from the store; fencing (a runner frozen past its
 * lease, then thawed, cannot append after another took the run over, and no step's effect happens twice);
 * `--store` pointed at the cluster being recovered is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli, type CliRun } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const TTL = 2;
let mgmt: TestCluster;
let storeURL = '';
let dir = '';

beforeAll(async () => {
  mgmt = await startCluster({ members: 1, name: 'mgmt' });
  storeURL = `etcd://${mgmt.endpoints[0]!.replace(/^https?:\/\//, '')}`;
}, 60_000);
afterAll(async () => {
  await mgmt?.teardown();
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-store-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], ttl = TTL): CliRun {
  return runCli(args, { env: { RUNBOOK_STORE_LEASE_TTL: String(ttl), RUNBOOK_STATE_DIR: path.join(dir, 'state') }, timeout: 90_000 });
}

function effects(): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'effects'), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function waitForText(p: { stdout?: NodeJS.ReadableStream | null }, re: RegExp, ms = 30_000): Promise<string> {
  let buf = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got:\n${buf}`)), ms);
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(t);
        resolve(buf);
      }
    });
  });
}

function runIdOf(text: string): string {
  const m = /run (\d{8}-\d{6}-[a-z0-9-]+-[0-9a-f]{6})/.exec(text);
  if (!m) throw new Error(`no run id in:\n${text}`);
  return m[1]!;
}

/** The journal as the store holds it: one key per record. */
async function storedJournal(runId: string): Promise<{ seq: number; type: string; stepId?: string; pid?: number; status?: string }[]> {
  const kvs = await mgmt.client().getAll().prefix(`/runbook/v1/runs/${runId}/journal/`).strings();
  return Object.keys(kvs).sort().map((k) => JSON.parse(kvs[k]!));
}

const common = () => ['--store', storeURL, '--endpoints', 'http://127.0.0.1:9', '-p', `dir=${dir}`];

describe('--store etcd:// (real CLI processes, real management etcd)', () => {
  it('a run keeps its journal, approvals and history in the store; an approval from another process is seen', async () => {
    const rb = path.join(root, 'test/fixtures/valid/slow-steps.yaml');
    const p = cli(['run', rb, ...common(), '-p', 'pause=1s', '--wait-for-approval']);
    const out = await waitForText(p, /waiting for approval/);
    const runId = runIdOf(out);
    const approve = await cli(['approve', runId, 'confirm', '--store', storeURL]);
    expect(approve.exitCode, approve.stderr).toBe(0);
    const r = await p;
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
    expect(fs.existsSync(path.join(dir, 'state', 'runs', runId))).toBe(false); // nothing in the local state dir

    const journal = await storedJournal(runId);
    expect(journal.map((r) => r.seq)).toEqual(journal.map((_, i) => i + 1));
    expect(journal.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    expect(journal.find((r) => r.type === 'approval.granted')).toMatchObject({ via: 'cli' });

    const history = await cli(['history', '--store', storeURL, '--json']);
    expect(history.exitCode, history.stderr).toBe(0);
    expect(JSON.parse(history.stdout)).toContainEqual(expect.objectContaining({ runId, status: 'succeeded', runbook: 'slow-steps' }));
    const status = await cli(['status', runId, '--store', storeURL, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ runId, status: 'succeeded' });
    // the lock was released: the lease is revoked, the key gone
    const locks = await mgmt.client().getAll().prefix('/runbook/v1/locks/').keys();
    expect(locks).toEqual([]);
  }, 90_000);

  it('fencing: a runner frozen past its lease cannot append after another runner took the run over; no effect twice', async () => {
    const rb = path.join(dir, 'fenced.yaml');
    fs.writeFileSync(rb, [
      'apiVersion: runbook/v1', 'name: fenced', 'summary: exec, wait, exec, exec',
      'params:', '  dir: { type: string }',
      'steps:',
      ...['one', 'pause', 'two', 'three'].flatMap((id) => id === 'pause'
        ? ['  - id: pause', '    action: wait', '    with: { duration: 10s }']
        : [`  - id: ${id}`, '    action: exec', '    with:', `      argv: [sh, -c, 'echo ${id} >> "$0/effects"', '\${{ params.dir }}']`]),
      '',
    ].join('\n'));
    // A's lease (4 s) outlives the start of the refused attempt below even on a loaded machine
    const a = cli(['run', rb, ...common(), '--yes'], 4);
    const out = await waitForText(a, /… pause/);
    const runId = runIdOf(out);
    process.kill(a.pid!, 'SIGSTOP');
    try {
      // While A's lease lives, B is refused (exit 4, naming the holder); once it expired, B takes the run over.
      let b: Awaited<ReturnType<typeof cli>> | undefined;
      let bRun: ReturnType<typeof cli> | undefined;
      const refused = await cli(['resume', runId, '--store', storeURL, '--yes']);
      expect(refused.exitCode, refused.stdout + refused.stderr).toBe(4);
      expect(refused.stderr).toContain(`locked by run ${runId}`);
      for (let i = 0; i < 20 && !bRun; i++) {
        await sleep(1000);
        const attempt = cli(['resume', runId, '--store', storeURL, '--yes']);
        const first = await Promise.race([waitForText(attempt, /resumed/i, 15_000).then(() => 'resumed'), attempt.then(() => 'exited')]);
        if (first === 'resumed') bRun = attempt;
        else {
          b = await attempt;
          expect(b.exitCode, b.stdout + b.stderr).toBe(4);
        }
      }
      expect(bRun, 'B never took the run over').toBeDefined();
      // Thaw A while B runs: A's wait is over, it tries to go on and must be fenced off.
      process.kill(a.pid!, 'SIGCONT');
      const ra = await a;
      expect(ra.exitCode, ra.stdout + ra.stderr).toBe(1);
      expect(ra.stdout + ra.stderr).toMatch(/lost the run lock/);
      const rb2 = await bRun!;
      expect(rb2.exitCode, rb2.stdout + rb2.stderr).toBe(0);
    } finally {
      try { process.kill(a.pid!, 'SIGCONT'); } catch { /* gone */ }
    }
    expect(effects()).toEqual(['one', 'two', 'three']);
    const journal = await storedJournal(runId);
    expect(journal.map((r) => r.seq)).toEqual(journal.map((_, i) => i + 1)); // one continuous journal
    expect(journal.filter((r) => r.type === 'run.started')).toHaveLength(1);
    expect(journal.filter((r) => r.type === 'run.resumed')).toHaveLength(1);
    expect(journal.filter((r) => r.type === 'run.finished')).toEqual([expect.objectContaining({ status: 'succeeded' })]);
    for (const id of ['one', 'two', 'three']) {
      expect(journal.filter((r) => r.type === 'step.started' && r.stepId === id), id).toHaveLength(1);
    }
    // nothing A wrote after B resumed
    const resumedAt = journal.findIndex((r) => r.type === 'run.resumed');
    expect(journal.slice(resumedAt).filter((r) => r.type === 'run.started')).toEqual([]);
  }, 120_000);

  it('refuses a --store that is the cluster being recovered', async () => {
    const target = await startCluster({ members: 3, name: 'target' });
    try {
      const rb = path.join(root, 'test/fixtures/valid/minimal.yaml');
      const [m1, m2, m3] = target.endpoints;
      const self = `etcd://${m1!.replace(/^https?:\/\//, '')}`;
      // the same URL as a member
      const same = await cli(['run', rb, '--store', self, '--endpoints', target.endpoints.join(','), '--yes']);
      expect(same.exitCode, same.stdout + same.stderr).toBe(2);
      expect(same.stderr).toMatch(/is the cluster being recovered/);
      // another member of the same cluster: found by cluster id
      const byId = await cli(['run', rb, '--store', self, '--endpoints', `${m2},${m3}`, '--yes']);
      expect(byId.exitCode, byId.stdout + byId.stderr).toBe(2);
      expect(byId.stderr).toMatch(/is the cluster being recovered \(both have cluster id [0-9a-f]+\)/);
      const keys = await target.client().getAll().prefix('/runbook/').keys();
      expect(keys).toEqual([]);
    } finally {
      await target.teardown();
    }
  }, 90_000);
});
