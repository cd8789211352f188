/**
 * etcd.snapshot-save after a crash between its effect and its checkpoint (RUNBOOK_FAILPOINT kills the CLI with
 * SIGKILL just before `step.succeeded` is journaled), as in member-replacement's pre-change snapshot: the resume's
 * probe finds the complete snapshot + manifest and records the step done (no second snapshot, no stop for a
 * human); a snapshot whose bytes no longer match its manifest is not taken for done. Real etcd, real CLI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env, stdin: 'ignore', timeout: 90_000 });
}
type Rec = { type: string; stepId?: string; done?: boolean; inDoubt?: boolean; via?: string; detail?: string; output?: { sha256?: string } };
const journal = (stateDir: string, runId: string): Rec[] =>
  fs.readFileSync(path.join(stateDir, 'runs', runId, 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
const dbFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.db'));

describe('snapshot-save probe after a kill', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ name: 'snapprobe' });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  async function killedAfterSnapshot(label: string) {
    const dir = path.join(cluster.dir, label);
    const snapshots = path.join(dir, 'snapshots');
    fs.mkdirSync(snapshots, { recursive: true });
    const rb = path.join(dir, 'rb.yaml');
    fs.writeFileSync(rb, [
      'apiVersion: runbook/v1', 'name: snap-then-change', 'summary: a snapshot before a change',
      'steps:', '  - id: snapshot', '    action: etcd.snapshot-save', '  - id: after', '    action: exec', '    with: { argv: ["true"], idempotent: true }',
    ].join('\n'));
    const inv = cluster.writeInventory(path.join(dir, 'cluster.yaml'), { snapshots: { dirs: [snapshots] } });
    const stateDir = path.join(dir, 'state');
    const first = await cli(['run', rb, '-i', inv, '--state-dir', stateDir], { RUNBOOK_FAILPOINT: 'journal-before:step.succeeded:snapshot' });
    expect(first.signal ?? first.exitCode, first.stdout + first.stderr).toBe('SIGKILL');
    const [runId] = fs.readdirSync(path.join(stateDir, 'runs'));
    expect(dbFiles(snapshots)).toHaveLength(1); // the effect happened; its checkpoint did not
    return { snapshots, stateDir, runId: runId! };
  }

  it('a complete, intact snapshot + manifest is recognised by the probe: done, not repeated', async () => {
    const { snapshots, stateDir, runId } = await killedAfterSnapshot('intact');
    const [file] = dbFiles(snapshots);
    const manifest = JSON.parse(fs.readFileSync(path.join(snapshots, `${file}.json`), 'utf8')) as { sha256: string };
    const r = await cli(['resume', runId, '--state-dir', stateDir]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(dbFiles(snapshots)).toEqual([file]);
    const recs = journal(stateDir, runId);
    expect(recs.find((x) => x.type === 'step.probe' && x.stepId === 'snapshot' && x.inDoubt)).toMatchObject({ done: true });
    expect(recs.filter((x) => x.type === 'step.succeeded' && x.stepId === 'snapshot')).toEqual([expect.objectContaining({ via: 'probe', output: expect.objectContaining({ sha256: manifest.sha256 }) })]);
  });

  it('a snapshot whose bytes no longer match its manifest is not taken for done: the resume stops for a human', async () => {
    const { snapshots, stateDir, runId } = await killedAfterSnapshot('damaged');
    const [file] = dbFiles(snapshots);
    const p = path.join(snapshots, file!);
    const fd = fs.openSync(p, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, 100);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, 100);
    fs.closeSync(fd);
    const r = await cli(['resume', runId, '--state-dir', stateDir]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/not safe to repeat/);
    expect(journal(stateDir, runId).find((x) => x.type === 'step.probe' && x.stepId === 'snapshot' && x.inDoubt)).toMatchObject({ done: false });
    expect(dbFiles(snapshots)).toEqual([file]);
  });
});
