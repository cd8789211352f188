/**
 * nospace-prevention through the real CLI against a real 3-member cluster whose history fills it (auto-compaction off,
 * as the test clusters run): what it leaves behind (smaller dbs, recent history kept, writes accepted, the leader
 * defragmented last) and what it refuses (a cluster that already has an alarm: that is nospace-recovery's job).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/events/types.ts';
import { readJournal } from '../../src/store/journal.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
let cluster: TestCluster | undefined;
let stateDir = '';

afterEach(async () => {
  await cluster?.teardown();
  cluster = undefined;
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

function cli(args: string[]) {
  return runCli(args, { timeout: 120_000 });
}

function journalOf(runId: string): JournalRecord[] {
  return readJournal(path.join(stateDir, 'runs', runId, 'journal.jsonl')).records;
}

/** Overwrite a few keys until the history alone is about half the quota. */
async function fillHistory(c: TestCluster): Promise<number> {
  const client = c.client();
  const value = Buffer.alloc(64 * 1024, 0x62);
  let revision = 0;
  for (let i = 0; i < 120; i++) revision = Number((await client.put(`/hist/${i % 4}`).value(value).exec()).header.revision);
  return revision;
}

describe('nospace-prevention (real cluster, real CLI)', () => {
  it('compacts keeping recent history, defragments every member (the leader last), and leaves the cluster writable', async () => {
    cluster = await startCluster({ members: 3 });
    const c = cluster;
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-state-'));
    const revision = await fillHistory(c);
    const before = await Promise.all(c.members.map((m) => c.status(m.name)));
    const leaderId = before[0]!.leader;

    const r = await cli(['run', 'nospace-prevention', '-i', c.writeInventory(), '--state-dir', stateDir, '-p', 'keepRevisions=20']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);

    const client = c.client();
    // the last 20 revisions are still readable, the one before them is compacted
    expect((await client.get('/hist/0').revision(revision - 19).exec()).kvs).toHaveLength(1);
    await expect(client.get('/hist/0').revision(revision - 21).exec()).rejects.toThrow(/compacted/);
    for (const [i, m] of c.members.entries()) {
      const st = await c.status(m.name);
      expect(st.dbSize, `${m.name} db size`).toBeLessThan(before[i]!.dbSize / 2);
    }
    expect(await c.alarms()).toEqual([]);
    await client.put('/after').value('ok');
    expect(await client.get('/after').string()).toBe('ok');

    const runs = fs.readdirSync(path.join(stateDir, 'runs'));
    const recs = journalOf(runs[0]!);
    const items = (recs.find((x) => x.type === 'step.items' && x.stepId === 'defrag') as Extract<JournalRecord, { type: 'step.items' }>).items;
    const leaderName = c.members[before.findIndex((s) => s.memberId === leaderId)]!.name;
    expect(items).toHaveLength(3);
    expect(items.at(-1)).toBe(leaderName);
    // no step of this runbook touches alarms or the quota
    expect(recs.some((x) => x.type === 'step.started' && /disarm|quota/.test(x.stepId))).toBe(false);
  });

  it('refuses a cluster that already has a NOSPACE alarm, changing nothing (that is nospace-recovery)', async () => {
    cluster = await startCluster({ members: 3 });
    const c = cluster;
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-state-'));
    await c.fillToNospace();
    const r = await cli(['run', 'nospace-prevention', '-i', c.writeInventory(), '--state-dir', stateDir]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/unexpected NOSPACE alarm/);
    expect((await c.alarms()).map((a) => a.alarm)).toContain('NOSPACE');
    const recs = journalOf(fs.readdirSync(path.join(stateDir, 'runs'))[0]!);
    expect(recs.some((x) => x.type === 'step.started' && x.stepId === 'compact')).toBe(false);
  });
});
